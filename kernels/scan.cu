// cumsum: inclusive prefix sums (suffix sums when reverse) along the middle axis of a contiguous
// (outer, size, inner) block, as cpu::cumsum (src/cpu/reduce.cpp): floating inputs accumulate in
// double and every output is the running double sum rounded to the input's type (16-bit types
// through float, as the CPU's to_out); integers and bool accumulate in int64 (wrapping, kept in
// unsigned arithmetic here) into an int64 output.
//
// Layouts (scan_by_rows in cuda/kernels.hpp):
//  - rows (inner == 1, size > 32): one block per (row, chunk). A block walks its chunk in tiles
//    of kThreads * kItems elements: each thread scans kItems consecutive elements, a block-wide
//    exclusive scan of the thread totals (warp shuffles, then one warp over the warp totals)
//    gives each thread its offset, and the running carry passes from tile to tile.
//  - columns (inner > 1, or short rows): one thread per (outer, chunk, inner) column, a sequential
//    scan; with one chunk this is the CPU's order exactly (bit-identical for every dtype).
// Long rows or columns are cut into `splits` chunks: a first kernel writes each chunk's total
// to the workspace, and each chunk's scan starts from the sum of the totals before it (the
// chunked carry), so a 1M-element row runs on many SMs.
#include <type_traits>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kScanThreads = 256;
constexpr int kItems = 4;  // consecutive elements per thread per tile

// Accumulator: double for floating inputs, unsigned 64-bit for integers and bool (wraps like
// the CPU's int64 sum, without signed overflow).
template <class T>
using scan_acc_t = std::conditional_t<std::is_integral_v<T>, unsigned long long, double>;
// Output element: the input's type for floating inputs, int64 for the others.
template <class T>
using scan_out_t = std::conditional_t<std::is_integral_v<T>, int64_t, T>;

template <class T>
__device__ __forceinline__ scan_acc_t<T> load_acc(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<unsigned long long>(static_cast<long long>(v));
  else
    return static_cast<double>(widen(v));
}

template <class O, class A>
__device__ __forceinline__ O store_out(A v) {
  if constexpr (std::is_same_v<O, int64_t>)
    return static_cast<int64_t>(v);
  else if constexpr (std::is_same_v<O, __half>)
    return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<O, __nv_bfloat16>)
    return __float2bfloat16_rn(static_cast<float>(v));
  else
    return static_cast<O>(v);
}

/// Memory position of the k-th step along an axis of n (suffix sums walk it backwards).
__device__ __forceinline__ int64_t step_pos(int64_t k, int64_t n, bool reverse) { return reverse ? n - 1 - k : k; }

/// Inclusive prefix sum of v over the 32 lanes of a warp (the return value) and the exclusive
/// one in `excl` (0 in lane 0). All 32 lanes must call it together.
template <class A>
__device__ __forceinline__ A warp_inclusive_scan(A v, int lane, A& excl) {
  A incl = v;
  for (int o = 1; o < 32; o *= 2) {
    const A t = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += t;
  }
  excl = __shfl_up_sync(0xffffffffu, incl, 1);
  if (lane == 0) excl = A(0);
  return incl;
}

/// Exclusive prefix sum of v over the threads of the block in threadIdx order, and the block's
/// total in `total`. blockDim.x a multiple of 32; every thread must call it. scratch: 33 slots.
template <class A>
__device__ A block_exclusive_scan(A v, A* scratch, A& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  A excl;
  const A incl = warp_inclusive_scan(v, lane, excl);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    A se;
    const A si = warp_inclusive_scan(lane < warps ? scratch[lane] : A(0), lane, se);
    __syncwarp();
    if (lane < warps) scratch[lane] = se;  // the warp's offset
    if (lane == 31) scratch[32] = si;      // slots past `warps` hold 0, so si of lane 31 is the total
  }
  __syncthreads();
  total = scratch[32];
  return scratch[warp] + excl;
}

// ---- rows (inner == 1)

/// Block (row, chunk) -> partial[row * splits + chunk] = the chunk's sum.
template <class T>
__global__ void __launch_bounds__(kScanThreads)
    scan_row_totals(scan_acc_t<T>* __restrict__ partial, const T* __restrict__ in, int64_t outer, int64_t size,
                    int64_t splits, bool reverse) {
  using A = scan_acc_t<T>;
  __shared__ A scratch[33];
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    A acc = A(0);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) acc += load_acc(x[step_pos(k, size, reverse)]);
    acc = block_reduce(acc, false, scratch);
    if (threadIdx.x == 0) partial[blk] = acc;
  }
}

/// Block (row, chunk) scans its chunk, starting from the totals of the chunks before it.
template <class T>
__global__ void __launch_bounds__(kScanThreads)
    scan_rows(scan_out_t<T>* __restrict__ out, const T* __restrict__ in, const scan_acc_t<T>* __restrict__ partial,
              int64_t outer, int64_t size, int64_t splits, bool reverse) {
  using A = scan_acc_t<T>;
  using O = scan_out_t<T>;
  __shared__ A scratch[33];
  const int64_t chunk = chunk_length(size, splits);
  const int64_t tile = int64_t{blockDim.x} * kItems;
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    O* y = out + row * size;
    A carry = A(0);
    if (s > 0) {  // uniform over the block
      A c = A(0);
      for (int64_t j = threadIdx.x; j < s; j += blockDim.x) c += partial[row * splits + j];
      carry = block_reduce(c, false, scratch);
    }
    for (int64_t t0 = begin; t0 < end; t0 += tile) {  // uniform over the block
      const int64_t k0 = t0 + int64_t{threadIdx.x} * kItems;
      A v[kItems];
#pragma unroll
      for (int j = 0; j < kItems; ++j) {
        const int64_t k = k0 + j;
        v[j] = k < end ? load_acc(x[step_pos(k, size, reverse)]) : A(0);
        if (j > 0) v[j] += v[j - 1];
      }
      A total;
      const A base = carry + block_exclusive_scan(v[kItems - 1], scratch, total);
#pragma unroll
      for (int j = 0; j < kItems; ++j) {
        const int64_t k = k0 + j;
        if (k < end) y[step_pos(k, size, reverse)] = store_out<O>(base + v[j]);
      }
      carry += total;
    }
  }
}

// ---- columns (inner > 1, or short rows)

/// Thread (outer, chunk, inner) -> partial[(o * splits + chunk) * inner + i] = the chunk's sum.
template <class T>
__global__ void scan_column_totals(scan_acc_t<T>* __restrict__ partial, const T* __restrict__ in, int64_t outer,
                                   int64_t size, int64_t inner, int64_t splits, bool reverse) {
  using A = scan_acc_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  const int64_t total = outer * splits * inner;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    A acc = A(0);
    for (int64_t k = begin; k < end; ++k) acc += load_acc(x[step_pos(k, size, reverse) * inner]);
    partial[t] = acc;
  }
}

/// Thread (outer, chunk, inner) scans its chunk of one column sequentially, from the totals of
/// the chunks before it.
template <class T>
__global__ void scan_columns(scan_out_t<T>* __restrict__ out, const T* __restrict__ in,
                             const scan_acc_t<T>* __restrict__ partial, int64_t outer, int64_t size, int64_t inner,
                             int64_t splits, bool reverse) {
  using A = scan_acc_t<T>;
  using O = scan_out_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  const int64_t total = outer * splits * inner;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    O* y = out + o * size * inner + i;
    A acc = A(0);
    for (int64_t j = 0; j < s; ++j) acc += partial[(o * splits + j) * inner + i];
    for (int64_t k = begin; k < end; ++k) {
      const int64_t e = step_pos(k, size, reverse) * inner;
      acc += load_acc(x[e]);
      y[e] = store_out<O>(acc);
    }
  }
}

template <class T>
cudaError_t launch_cumsum(void* out_v, const void* in_v, int64_t outer, int64_t size, int64_t inner, bool reverse,
                          int64_t splits, void* workspace, cudaStream_t stream) {
  using A = scan_acc_t<T>;
  auto* out = static_cast<scan_out_t<T>*>(out_v);
  const auto* in = static_cast<const T*>(in_v);
  auto* partial = static_cast<A*>(workspace);
  if (splits > 1 && partial == nullptr) return cudaErrorInvalidValue;
  if (scan_by_rows(size, inner)) {
    if (splits > 1) {
      const cudaError_t e =
          launch_blocks(scan_row_totals<T>, outer * splits, kScanThreads, 0, stream, partial, in, outer, size, splits,
                        reverse);
      if (e != cudaSuccess) return e;
    }
    return launch_blocks(scan_rows<T>, outer * splits, kScanThreads, 0, stream, out, in,
                         static_cast<const A*>(partial), outer, size, splits, reverse);
  }
  if (splits > 1) {
    const cudaError_t e = launch(scan_column_totals<T>, outer * splits * inner, kThreads, 0, stream, partial, in, outer,
                                 size, inner, splits, reverse);
    if (e != cudaSuccess) return e;
  }
  return launch(scan_columns<T>, outer * splits * inner, kThreads, 0, stream, out, in, static_cast<const A*>(partial),
                outer, size, inner, splits, reverse);
}

}  // namespace

cudaError_t cumsum(ElemType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner, bool reverse,
                   int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * size * inner == 0) return cudaSuccess;
  if (splits < 1) return cudaErrorInvalidValue;
  switch (t) {
    case ElemType::f32: return launch_cumsum<float>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::f64: return launch_cumsum<double>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::f16: return launch_cumsum<__half>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::bf16:
      return launch_cumsum<__nv_bfloat16>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::i32: return launch_cumsum<int32_t>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::i64: return launch_cumsum<int64_t>(out, in, outer, size, inner, reverse, splits, workspace, stream);
    case ElemType::u8:  // bool is stored as one byte holding 0 or 1: read like u8
    case ElemType::boolean:
      return launch_cumsum<uint8_t>(out, in, outer, size, inner, reverse, splits, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
