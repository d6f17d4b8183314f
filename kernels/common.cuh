// Device helpers shared by the kernels/*.cu files: the one launch helper, the FloatType switch,
// strided offsets, 16-bit float conversions, NaN-propagating max/min and block reductions. Free
// of Ember headers (cuda/kernels.hpp is too) so that nvcc stays fast.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {

inline constexpr int kThreads = 256;
// Enough blocks to fill an H100/H200 many times over; grid-stride loops do the rest.
inline constexpr int64_t kMaxGrid = 65535;

/// The one launch helper for 1-d grid-stride kernels: nothing to do for n == 0, at most
/// kMaxGrid blocks, and the launch status (bad configuration, no device) is returned.
template <class... KArgs, class... Args>
cudaError_t launch(void (*kernel)(KArgs...), int64_t work_items, int threads, size_t shared, cudaStream_t stream,
                   Args... args) {
  if (work_items <= 0) return cudaSuccess;
  const int64_t blocks = std::min<int64_t>((work_items + threads - 1) / threads, kMaxGrid);
  kernel<<<static_cast<unsigned>(blocks), threads, shared, stream>>>(args...);
  return cudaGetLastError();
}

/// Launch with an explicit number of blocks (one block per row and the like); same checks.
template <class... KArgs, class... Args>
cudaError_t launch_blocks(void (*kernel)(KArgs...), int64_t blocks, int threads, size_t shared, cudaStream_t stream,
                          Args... args) {
  if (blocks <= 0) return cudaSuccess;
  kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks, kMaxGrid)), threads, shared, stream>>>(args...);
  return cudaGetLastError();
}

/// Runs f.template operator()<T>() for the element type of t (float, double, __half, __nv_bfloat16).
template <class F>
cudaError_t by_type(FloatType t, F&& f) {
  switch (t) {
    case FloatType::f32: return f.template operator()<float>();
    case FloatType::f64: return f.template operator()<double>();
    case FloatType::f16: return f.template operator()<__half>();
    case FloatType::bf16: return f.template operator()<__nv_bfloat16>();
  }
  return cudaErrorInvalidValue;
}

__device__ __forceinline__ int64_t global_thread() { return blockIdx.x * int64_t{blockDim.x} + threadIdx.x; }
__device__ __forceinline__ int64_t grid_threads() { return int64_t{gridDim.x} * blockDim.x; }

/// Calls visit(d, r) with the index r in dimension d of linear element i (row-major over
/// sizes[0, ndim)), innermost dimension first. idx32 (the element count is below 2^32, so every
/// index and size fits): 32-bit arithmetic, as a 64-bit division costs several times a 32-bit
/// one. The outermost index needs no division (i < the product of the sizes).
template <class Sizes, class F>
__device__ __forceinline__ void dim_indices(int64_t i, bool idx32, int ndim, const Sizes& sizes, F&& visit) {
  if (idx32) {
    auto j = static_cast<uint32_t>(i);
    for (int d = ndim - 1; d > 0; --d) {
      const auto size = static_cast<uint32_t>(sizes[d]);
      const uint32_t q = j / size;
      visit(d, static_cast<int64_t>(j - q * size));
      j = q;
    }
    if (ndim > 0) visit(0, static_cast<int64_t>(j));
  } else {
    int64_t j = i;
    for (int d = ndim - 1; d > 0; --d) {
      const int64_t q = j / sizes[d];
      visit(d, j - q * sizes[d]);
      j = q;
    }
    if (ndim > 0) visit(0, j);
  }
}

/// Whether n elements can be indexed in 32 bits (dim_indices' idx32).
__host__ __device__ __forceinline__ bool fits_index32(int64_t n) { return n <= int64_t{0xffffffff}; }

/// Offsets of linear element i of n (row-major over c.sizes) for the first K operands of c.
template <int K>
__device__ __forceinline__ void strided_offsets(int64_t i, int64_t n, const OffsetCalc& c, int64_t (&off)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) off[k] = 0;
  dim_indices(i, fits_index32(n), c.ndim, c.sizes, [&](int d, int64_t r) {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] += r * c.strides[k][d];
  });
}

/// Destination and source offsets of linear element i (row-major over g.sizes; idx32 as in
/// dim_indices) for a strided copy or conversion.
__device__ __forceinline__ void copy_offsets(int64_t i, bool idx32, const StridedGeometry& g, int64_t& od,
                                             int64_t& os) {
  od = 0;
  os = 0;
  dim_indices(i, idx32, g.ndim, g.sizes, [&](int d, int64_t r) {
    od += r * g.dst_strides[d];
    os += r * g.src_strides[d];
  });
}

// ---- Chunked reductions and scans over the middle axis of a contiguous (outer, size, inner)
// block: each line's `size` elements are cut into `splits` chunks of chunk_length(size, splits);
// chunk s of line (o, i) is work item (o * splits + s) * inner + i, which is also its slot in
// the partials a second kernel combines in order.

/// Elements per chunk when `size` elements are cut into `splits` chunks (the last may be short).
__host__ __device__ __forceinline__ int64_t chunk_length(int64_t size, int64_t splits) {
  return (size + splits - 1) / splits;
}

/// Chunk `s` of row `row` (inner == 1) and its elements [begin, end).
struct RowChunk {
  int64_t row, s, begin, end;
};
/// Work item blk = row * splits + s of rows of `size` elements in chunks of `chunk`.
__device__ __forceinline__ RowChunk row_chunk(int64_t blk, int64_t size, int64_t splits, int64_t chunk) {
  const int64_t row = blk / splits, s = blk % splits;
  const int64_t begin = s * chunk;
  return {row, s, begin, min(size, begin + chunk)};
}

/// Chunk `s` of column (o, i) and its elements [begin, end) along the reduced axis.
struct ColumnChunk {
  int64_t o, s, i, begin, end;
};
/// Work item t = (o * splits + s) * inner + i of columns of `size` elements in chunks of `chunk`.
__device__ __forceinline__ ColumnChunk column_chunk(int64_t t, int64_t size, int64_t inner, int64_t splits,
                                                    int64_t chunk) {
  const int64_t i = t % inner, os = t / inner, s = os % splits, o = os / splits;
  const int64_t begin = s * chunk;
  return {o, s, i, begin, min(size, begin + chunk)};
}

/// x op y for the comparison ops (eq, ne, lt, le, gt, ge); false for any other op.
template <class C>
__device__ __forceinline__ bool apply_compare(BinOp op, C x, C y) {
  switch (op) {
    case BinOp::eq: return x == y;
    case BinOp::ne: return x != y;
    case BinOp::lt: return x < y;
    case BinOp::le: return x <= y;
    case BinOp::gt: return x > y;
    case BinOp::ge: return x >= y;
    default: return false;
  }
}

// Accumulation type: f32 for f32/f16/bf16, f64 for f64.
template <class T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <class T>
using acc_t = typename AccOf<T>::type;

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }
__device__ __forceinline__ float widen(__half x) { return __half2float(x); }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T narrow(acc_t<T> x);
template <>
__device__ __forceinline__ float narrow<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ double narrow<double>(double x) {
  return x;
}
template <>
__device__ __forceinline__ __half narrow<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 narrow<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// NaN-propagating max/min (fmax would drop the NaN).
template <class C>
__device__ __forceinline__ C nan_max(C x, C y) {
  return x != x ? x : (y != y ? y : (x > y ? x : y));
}
template <class C>
__device__ __forceinline__ C nan_min(C x, C y) {
  return x != x ? x : (y != y ? y : (x < y ? x : y));
}

template <class C>
__device__ __forceinline__ C plus_inf() {
  return static_cast<C>(__int_as_float(0x7f800000));
}

/// V elements of T loaded or stored as one aligned vector (16 bytes for kVec<T> elements).
template <class T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

/// Elements per 16-byte vector of T.
template <class T>
constexpr int kVec = 16 / sizeof(T);

/// Sum (is_max false) or NaN-propagating max of v over the 32 lanes of a warp; every lane gets
/// the result. All 32 lanes must call it together.
template <class C>
__device__ __forceinline__ C warp_reduce(C v, bool is_max) {
  for (int o = 16; o > 0; o /= 2) {
    const C w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? nan_max(v, w) : v + w;
  }
  return v;
}

/// Sum (is_max false) or NaN-propagating max of v over the block; every thread gets the result.
/// blockDim.x must be a multiple of 32 (at most 1024); `scratch` holds 32 values.
template <class C>
__device__ C block_reduce(C v, bool is_max, C* scratch) {
  v = warp_reduce(v, is_max);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < warps ? scratch[lane] : (is_max ? -plus_inf<C>() : C(0)), is_max);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace ember::cuda_backend::kernels
