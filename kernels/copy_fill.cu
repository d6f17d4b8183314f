// Fill and same-dtype strided copy on one CUDA device. Both move bits, not values, so one
// kernel per element width (1, 2, 4, 8 bytes) serves every dtype: the host converts the fill
// value to the destination dtype first. Grid-stride loops with int64 indices.
#include <algorithm>
#include <cstring>

#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kThreads = 256;
// Enough blocks to fill an H100/H200 several times over; the grid-stride loop does the rest.
constexpr int64_t kMaxBlocks = 65535;

int64_t blocks_for(int64_t n) { return std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks); }

// Element offset of linear index i (row-major over g.sizes) with the given strides.
__device__ __forceinline__ int64_t offset_of(int64_t i, const StridedGeometry& g, const int64_t* strides) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t size = g.sizes[d];
    off += (i % size) * strides[d];
    i /= size;
  }
  return off;
}

template <class W>
__global__ void fill_contiguous_kernel(W* __restrict__ dst, W value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = value;
  }
}

template <class W>
__global__ void fill_strided_kernel(W* __restrict__ dst, W value, int64_t n, StridedGeometry g) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    dst[offset_of(i, g, g.dst_strides)] = value;
  }
}

template <class W>
__global__ void strided_copy_kernel(W* __restrict__ dst, const W* __restrict__ src, int64_t n, StridedGeometry g) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    dst[offset_of(i, g, g.dst_strides)] = src[offset_of(i, g, g.src_strides)];
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
    fill_contiguous_kernel<W><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<W*>(dst), value, n);
  } else {
    fill_strided_kernel<W><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<W*>(dst), value, n, g);
  }
  return cudaGetLastError();
}

template <class W>
cudaError_t launch_copy(void* dst, const void* src, int64_t n, const StridedGeometry& g, cudaStream_t stream) {
  strided_copy_kernel<W>
      <<<blocks_for(n), kThreads, 0, stream>>>(static_cast<W*>(dst), static_cast<const W*>(src), n, g);
  return cudaGetLastError();
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
