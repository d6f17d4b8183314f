// Host launchers for the kernels in kernels/*.cu. They take raw pointers and geometry, never
// validate user input (src/ops and src/cuda/runtime.cpp do), launch on the given stream and
// return the launch status for the caller to check with EMBER_CUDA_CHECK. Kept free of Ember
// headers so that nvcc compiles the .cu files quickly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda_backend::kernels {

/// Most dimensions a strided kernel accepts (tensors with more are rejected by the caller).
inline constexpr int kMaxDims = 12;

/// Sizes and element strides of an N-d iteration; src strides may be 0 (broadcast).
struct StridedGeometry {
  int32_t ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t dst_strides[kMaxDims] = {};
  int64_t src_strides[kMaxDims] = {};
};

/// Writes `pattern` (the bit pattern of one element, element_size 1, 2, 4 or 8 bytes) to every
/// element of dst (geometry: sizes and dst_strides).
cudaError_t fill(void* dst, int element_size, uint64_t pattern, int64_t numel, const StridedGeometry& g,
                 cudaStream_t stream);

/// dst[i] = src[i] for elements of element_size bytes (same dtype), any strides.
cudaError_t strided_copy(void* dst, const void* src, int element_size, int64_t numel, const StridedGeometry& g,
                         cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels
