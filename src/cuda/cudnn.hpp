// Internal to src/cuda: cuDNN 9 for the convolutions (src/cuda/conv.cpp). Only compiled when
// CMake found cuDNN's headers and library (EMBER_HAVE_CUDNN).
//
// libcudnn.so.9 is opened at first use (dlopen), not linked: libember then loads, and every
// other CUDA op works, on a machine without cuDNN (or with it only in a Python wheel that is
// not on the library path yet); conv2d on CUDA tensors throws a DeviceError naming the library
// and the loader's message there. Only the graph (backend) API is used: cudnnBackend* plus
// handle creation, stream binding and error strings.
#pragma once

#if !EMBER_HAVE_CUDNN
#error "src/cuda/cudnn.hpp needs cuDNN (EMBER_HAVE_CUDNN)"
#endif

#include <cudnn_graph.h>
#include <cuda_runtime.h>

#include <mutex>
#include <string>
#include <utility>

namespace ember::cuda_backend::cudnn {

/// The cuDNN functions Ember calls, resolved from libcudnn.so.9.
struct Api {
  decltype(&::cudnnGetVersion) GetVersion = nullptr;
  decltype(&::cudnnGetErrorString) GetErrorString = nullptr;
  decltype(&::cudnnGetLastErrorString) GetLastErrorString = nullptr;
  decltype(&::cudnnCreate) Create = nullptr;
  decltype(&::cudnnSetStream) SetStream = nullptr;
  decltype(&::cudnnBackendCreateDescriptor) BackendCreateDescriptor = nullptr;
  decltype(&::cudnnBackendDestroyDescriptor) BackendDestroyDescriptor = nullptr;
  decltype(&::cudnnBackendSetAttribute) BackendSetAttribute = nullptr;
  decltype(&::cudnnBackendGetAttribute) BackendGetAttribute = nullptr;
  decltype(&::cudnnBackendFinalize) BackendFinalize = nullptr;
  decltype(&::cudnnBackendExecute) BackendExecute = nullptr;
};

/// The loaded API (loaded once, thread-safe), or nullptr with the reason in `why`.
const Api* try_api(std::string* why = nullptr);
/// The loaded API; throws DeviceError saying why cuDNN could not be loaded.
const Api& api();

/// The lock for `device`'s cuDNN state (its handle and its plan cache). Hold it from handle()
/// until the work is enqueued: one handle per device is shared by all threads.
std::mutex& device_mutex(int device);
/// `device`'s handle (created on first use, never destroyed), bound to `stream`. The caller
/// holds device_mutex(device) and has made `device` current.
cudnnHandle_t handle(int device, cudaStream_t stream);

/// One backend descriptor, destroyed with its owner (never throws on destruction).
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(Descriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Descriptor& operator=(Descriptor&& o) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  /// The address cudnnBackendGetAttribute fills when it hands out a descriptor we created.
  cudnnBackendDescriptor_t* out() { return &d_; }
  /// cudnnBackendSetAttribute, checked.
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values);
  /// Sets one attribute that is another descriptor.
  void set(cudnnBackendAttributeName_t name, const Descriptor& value);
  /// cudnnBackendFinalize, checked.
  void finalize();
  /// cudnnBackendFinalize, returning the status instead of throwing (for trying engine configs).
  cudnnStatus_t try_finalize();

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

/// cuDNN's name for a status ("CUDNN_STATUS_..."), or the number when cuDNN is not loaded.
std::string status_string(int status);

}  // namespace ember::cuda_backend::cudnn
