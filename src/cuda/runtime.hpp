// Internal to src/cuda: device checks, the device guard, the per-thread current stream and
// scratch memory from the caching allocator.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ember/core/tensor.hpp"

namespace ember::cuda_backend {

/// Most devices the per-thread current-stream table holds.
inline constexpr int kMaxDevices = 64;

/// Throws DeviceError unless `index` names a usable device; `what` names the caller.
void check_device(int index, const char* what);

/// The calling thread's current stream on `device` (nullptr = the legacy default stream).
cudaStream_t current_stream(int device);
/// Sets it (the stream must belong to `device`).
void set_current_stream(int device, cudaStream_t stream);
/// Makes the legacy default stream current again on `device` (never throws).
void clear_current_stream(int device) noexcept;

/// Makes `index` the current device for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

/// `bytes` of scratch memory on `device` from the caching allocator, tied to the current
/// stream: keep the returned tensor alive until the kernels using it are enqueued.
Tensor scratch(int device, int64_t bytes);

}  // namespace ember::cuda_backend
