// Fill and same-dtype strided copy on one CUDA device. Both move bits, not values, so one
// kernel per element width (1, 2, 4, 8 bytes) serves every dtype: the host converts the fill
// value to the destination dtype first. Grid-stride loops with int64 indices (index arithmetic
// in 32 bits when the element count allows), 16-byte stores for contiguous fills.
#include <cstring>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

/// Contiguous fill: kVec<W> copies of the value per 16-byte store when dst is aligned.
template <class W>
__global__ void fill_contiguous_kernel(W* __restrict__ dst, W value, int64_t n, bool vectorised) {
  constexpr int V = kVec<W>;
  const int64_t nvec = vectorised ? n / V : 0;
  Vec<W, V> pattern;
#pragma unroll
  for (int k = 0; k < V; ++k) pattern.v[k] = value;
  for (int64_t i = global_thread(); i < nvec; i += grid_threads()) reinterpret_cast<Vec<W, V>*>(dst)[i] = pattern;
  for (int64_t i = nvec * V + global_thread(); i < n; i += grid_threads()) dst[i] = value;
}

template <class W>
__global__ void fill_strided_kernel(W* __restrict__ dst, W value, int64_t n, StridedGeometry g) {
  const bool idx32 = fits_index32(n);
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t od = 0;
    dim_indices(i, idx32, g.ndim, g.sizes, [&](int d, int64_t r) { od += r * g.dst_strides[d]; });
    dst[od] = value;
  }
}

template <class W>
__global__ void strided_copy_kernel(W* __restrict__ dst, const W* __restrict__ src, int64_t n, StridedGeometry g) {
  const bool idx32 = fits_index32(n);
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t od, os;
    copy_offsets(i, idx32, g, od, os);
    dst[od] = src[os];
  }
}

bool is_contiguous(const StridedGeometry& g) {
  int64_t expected = 1;
  for (int d = g.ndim - 1; d >= 0; --d) {
    if (g.sizes[d] != 1 && g.dst_strides[d] != expected) return false;
    expected *= g.sizes[d];
  }
  return true;
}

template <class W>
cudaError_t launch_fill(void* dst, uint64_t pattern, int64_t n, const StridedGeometry& g, cudaStream_t stream) {
  W value;
  static_assert(sizeof(W) <= sizeof(pattern));
  std::memcpy(&value, &pattern, sizeof(W));  // the low bytes (little-endian host and device)
  if (is_contiguous(g)) {
    const bool vec = reinterpret_cast<uintptr_t>(dst) % 16 == 0;
    return launch(fill_contiguous_kernel<W>, vec ? (n + kVec<W> - 1) / kVec<W> : n, kThreads, 0, stream,
                  static_cast<W*>(dst), value, n, vec);
  }
  return launch(fill_strided_kernel<W>, n, kThreads, 0, stream, static_cast<W*>(dst), value, n, g);
}

template <class W>
cudaError_t launch_copy(void* dst, const void* src, int64_t n, const StridedGeometry& g, cudaStream_t stream) {
  return launch(strided_copy_kernel<W>, n, kThreads, 0, stream, static_cast<W*>(dst), static_cast<const W*>(src), n,
                g);
}

}  // namespace

cudaError_t fill(void* dst, int element_size, uint64_t pattern, int64_t numel, const StridedGeometry& g,
                 cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  switch (element_size) {
    case 1: return launch_fill<uint8_t>(dst, pattern, numel, g, stream);
    case 2: return launch_fill<uint16_t>(dst, pattern, numel, g, stream);
    case 4: return launch_fill<uint32_t>(dst, pattern, numel, g, stream);
    case 8: return launch_fill<uint64_t>(dst, pattern, numel, g, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t strided_copy(void* dst, const void* src, int element_size, int64_t numel, const StridedGeometry& g,
                         cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  switch (element_size) {
    case 1: return launch_copy<uint8_t>(dst, src, numel, g, stream);
    case 2: return launch_copy<uint16_t>(dst, src, numel, g, stream);
    case 4: return launch_copy<uint32_t>(dst, src, numel, g, stream);
    case 8: return launch_copy<uint64_t>(dst, src, numel, g, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace ember::cuda_backend::kernels
