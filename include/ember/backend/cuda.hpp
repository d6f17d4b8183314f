// CUDA backend entry points used by src/ops (internal). In a build without CUDA these are
// stubs that throw DeviceError, so everything links and CUDA tensors fail with a clear message.
#pragma once

#include "ember/core/tensor.hpp"

namespace ember::cuda_backend {

/// True when the build has CUDA and a device is present.
EMBER_API bool available();
EMBER_API int device_count();
/// Copies between any two devices (at least one of them CUDA), same dtype, both contiguous.
EMBER_API void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking);
/// dst[i] = convert(src[i]) on one CUDA device; src broadcasts to dst.
EMBER_API void copy(const Tensor& dst, const Tensor& src);
EMBER_API void fill(const Tensor& dst, const Scalar& value);

}  // namespace ember::cuda_backend
