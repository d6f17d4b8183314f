#include "ember/backend/cuda.hpp"
#include "ember/cuda.hpp"

namespace ember::cuda {
bool is_available() { return cuda_backend::available(); }
int device_count() { return cuda_backend::device_count(); }
}  // namespace ember::cuda
