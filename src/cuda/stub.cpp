// Used when Ember is built without CUDA: every CUDA entry point reports that clearly.
#include "ember/backend/cuda.hpp"

namespace ember::cuda_backend {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  EMBER_THROW(DeviceError, what, ": this build of Ember has no CUDA support (configure with -DEMBER_WITH_CUDA=ON)");
}
}  // namespace

bool available() { return false; }
int device_count() { return 0; }
void copy_across(const Tensor&, const Tensor&, bool) { no_cuda("copy to/from a CUDA tensor"); }
void copy(const Tensor&, const Tensor&) { no_cuda("copy on a CUDA tensor"); }
void fill(const Tensor&, const Scalar&) { no_cuda("fill on a CUDA tensor"); }

}  // namespace ember::cuda_backend
