// Internal to src/cuda: device checks, the device guard, the per-thread current stream and
// scratch memory from the caching allocator.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <optional>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "ember/core/tensor.hpp"

namespace ember::cuda_backend {

/// The kernels' element type for a floating dtype (f32, f64, f16, bf16); nullopt for the others,
/// for the caller to report in its own words.
inline std::optional<kernels::FloatType> kernel_float_type(DType d) {
  switch (d) {
    case DType::f32: return kernels::FloatType::f32;
    case DType::f64: return kernels::FloatType::f64;
    case DType::f16: return kernels::FloatType::f16;
    case DType::bf16: return kernels::FloatType::bf16;
    default: return std::nullopt;
  }
}

/// The kernels' element type for any dtype: kernels::ElemType lists the types in DType's order
/// (the kernels do not include Ember's headers).
inline kernels::ElemType kernel_elem_type(DType d) { return static_cast<kernels::ElemType>(static_cast<int>(d)); }
static_assert(static_cast<int>(DType::f32) == static_cast<int>(kernels::ElemType::f32) &&
              static_cast<int>(DType::bf16) == static_cast<int>(kernels::ElemType::bf16) &&
              static_cast<int>(DType::i64) == static_cast<int>(kernels::ElemType::i64) &&
              static_cast<int>(DType::boolean) == static_cast<int>(kernels::ElemType::boolean));

/// t's data pointer, or nullptr when t is undefined (an optional operand).
inline void* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

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

/// Counts one blocking of the host on a device (cuda::host_sync_count()). Every such call in
/// src/cuda goes through EMBER_CUDA_HOST_SYNC (or calls this right before a call that must not
/// throw).
void count_host_sync() noexcept;
/// The count so far.
uint64_t host_syncs() noexcept;

/// `bytes` of scratch memory on `device` from the caching allocator, tied to the current
/// stream: keep the returned tensor alive until the kernels using it are enqueued.
Tensor scratch(int device, int64_t bytes);

}  // namespace ember::cuda_backend

/// A CUDA runtime call that blocks the host until device work has finished (a synchronize, a
/// device-to-host or pageable host-to-device copy, cudaFree): counted for cuda::host_sync_count()
/// and checked like EMBER_CUDA_CHECK.
#define EMBER_CUDA_HOST_SYNC(call)            \
  do {                                        \
    ::ember::cuda_backend::count_host_sync(); \
    EMBER_CUDA_CHECK(call);                   \
  } while (0)
