// cuDNN loading, per-device handles, descriptor RAII and the status check behind
// EMBER_CUDNN_CHECK (src/cuda/check.hpp). See src/cuda/cudnn.hpp for why libcudnn is opened
// with dlopen rather than linked. The status check is defined in every CUDA build (with or
// without cuDNN) so that the macro and its test link everywhere.
#include <cuda_runtime.h>

#include <string>

#include "cuda/check.hpp"
#include "ember/core/error.hpp"

#if EMBER_HAVE_CUDNN
#include <dlfcn.h>

#include <array>
#include <vector>

#include "cuda/cudnn.hpp"
#include "cuda/runtime.hpp"
#endif

namespace ember::cuda_backend {

#if EMBER_HAVE_CUDNN
namespace cudnn {

namespace {

struct Loaded {
  Api api;
  bool ok = false;
  std::string why;
};

template <class F>
bool resolve(void* lib, const char* name, F& fn, std::string& why) {
  void* p = dlsym(lib, name);
  if (p == nullptr) {
    why = ember::detail::str_cat("symbol ", name, " is missing from libcudnn.so.9");
    return false;
  }
  fn = reinterpret_cast<F>(p);
  return true;
}

Loaded load() {
  Loaded l;
  // The loader's search path first (LD_LIBRARY_PATH, libember's RUNPATH, ld.so.cache), then
  // the directory CMake found cuDNN in.
  std::vector<std::string> names = {"libcudnn.so.9"};
#ifdef EMBER_CUDNN_LIBRARY_DIR
  names.push_back(std::string(EMBER_CUDNN_LIBRARY_DIR) + "/libcudnn.so.9");
#endif
  void* lib = nullptr;
  std::string errors;
  for (const std::string& n : names) {
    lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib != nullptr) break;
    const char* e = dlerror();
    errors += ember::detail::str_cat(errors.empty() ? "" : "; ", e != nullptr ? e : n.c_str());
  }
  if (lib == nullptr) {
    l.why = "cuDNN 9 could not be loaded (" + errors +
            "); install cuDNN 9 or add the directory holding libcudnn.so.9 to LD_LIBRARY_PATH";
    return l;
  }
  Api& a = l.api;
  // The library stays open for the life of the process.
  if (!resolve(lib, "cudnnGetVersion", a.GetVersion, l.why) ||
      !resolve(lib, "cudnnGetErrorString", a.GetErrorString, l.why) ||
      !resolve(lib, "cudnnGetLastErrorString", a.GetLastErrorString, l.why) ||
      !resolve(lib, "cudnnCreate", a.Create, l.why) || !resolve(lib, "cudnnSetStream", a.SetStream, l.why) ||
      !resolve(lib, "cudnnBackendCreateDescriptor", a.BackendCreateDescriptor, l.why) ||
      !resolve(lib, "cudnnBackendDestroyDescriptor", a.BackendDestroyDescriptor, l.why) ||
      !resolve(lib, "cudnnBackendSetAttribute", a.BackendSetAttribute, l.why) ||
      !resolve(lib, "cudnnBackendGetAttribute", a.BackendGetAttribute, l.why) ||
      !resolve(lib, "cudnnBackendFinalize", a.BackendFinalize, l.why) ||
      !resolve(lib, "cudnnBackendExecute", a.BackendExecute, l.why))
    return l;
  const size_t v = a.GetVersion();  // 9.19.0 -> 91900
  if (v < 90000 || v >= 100000) {
    l.why = ember::detail::str_cat("libcudnn.so.9 reports version ", v, "; cuDNN 9 is needed");
    return l;
  }
  l.ok = true;
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const Api* try_api(std::string* why) {
  const Loaded& l = loaded();
  if (!l.ok && why != nullptr) *why = l.why;
  return l.ok ? &l.api : nullptr;
}

const Api& api() {
  const Loaded& l = loaded();
  if (!l.ok) EMBER_THROW(DeviceError, "conv2d on CUDA: ", l.why);
  return l.api;
}

std::mutex& device_mutex(int device) {
  static std::array<std::mutex, kMaxDevices> mutexes;
  EMBER_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuDNN: device index ", device, " out of range");
  return mutexes[static_cast<size_t>(device)];
}

cudnnHandle_t handle(int device, cudaStream_t stream) {
  static std::array<cudnnHandle_t, kMaxDevices> handles{};  // leaked on purpose (as the cuBLASLt handles)
  const Api& a = api();
  cudnnHandle_t& h = handles[static_cast<size_t>(device)];
  if (h == nullptr) EMBER_CUDNN_CHECK(a.Create(&h));
  EMBER_CUDNN_CHECK(a.SetStream(h, stream));
  return h;
}

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  EMBER_CUDNN_CHECK(api().BackendCreateDescriptor(type, &d_));
}

Descriptor::~Descriptor() {
  if (d_ == nullptr) return;
  if (const Api* a = try_api()) a->BackendDestroyDescriptor(d_);
}

Descriptor& Descriptor::operator=(Descriptor&& o) noexcept {
  if (this != &o) {
    if (d_ != nullptr)
      if (const Api* a = try_api()) a->BackendDestroyDescriptor(d_);
    d_ = std::exchange(o.d_, nullptr);
  }
  return *this;
}

void Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                     const void* values) {
  const cudnnStatus_t st = api().BackendSetAttribute(d_, name, type, count, values);
  if (st != CUDNN_STATUS_SUCCESS) {
    // Name the attribute (cudnnBackendAttributeName_t's number): the call text alone says little.
    const std::string call = ember::detail::str_cat("cudnnBackendSetAttribute(attribute ", static_cast<int>(name), ")");
    detail::throw_cudnn_error(static_cast<int>(st), call.c_str(), __FILE__, __LINE__);
  }
}

void Descriptor::set(cudnnBackendAttributeName_t name, const Descriptor& value) {
  cudnnBackendDescriptor_t v = value.get();
  set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v);
}

void Descriptor::finalize() { EMBER_CUDNN_CHECK(api().BackendFinalize(d_)); }

cudnnStatus_t Descriptor::try_finalize() { return api().BackendFinalize(d_); }

std::string status_string(int status) {
  const Api* a = try_api();
  if (a == nullptr) return "cuDNN status " + std::to_string(status);
  return std::string(a->GetErrorString(static_cast<cudnnStatus_t>(status))) + " (" + std::to_string(status) + ")";
}

}  // namespace cudnn
#endif  // EMBER_HAVE_CUDNN

namespace detail {

void throw_cudnn_error(int status, const char* call, const char* file, int line) {
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess) cudaGetLastError();
  std::string what;
  std::string last;
#if EMBER_HAVE_CUDNN
  what = cudnn::status_string(status);
  if (const cudnn::Api* a = cudnn::try_api()) {
    char buf[512] = {};
    a->GetLastErrorString(buf, sizeof(buf));  // also clears it
    last = buf;
  }
#else
  what = "cuDNN status " + std::to_string(status);
#endif
  std::string msg = ember::detail::str_cat("cuDNN error: ", call, " failed at ", file, ":", line, " on ",
                                           dev >= 0 ? "cuda:" + std::to_string(dev) : std::string("unknown device"),
                                           ": ", what, last.empty() ? "" : ": ", last);
  // CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED (4003), _DEVICE_ALLOCATION_FAILED (4004).
  if (status == 4003 || status == 4004) throw OutOfMemory(msg);
  throw DeviceError(msg);
}

}  // namespace detail

}  // namespace ember::cuda_backend
