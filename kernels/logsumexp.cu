// logsumexp over the middle axis of a contiguous (outer, size, inner) block, as cpu::logsumexp
// (src/cpu/reduce.cpp): m = the NaN-propagating max in the compute type (float for f32/f16/bf16,
// double for f64); shift = m when finite, else 0 (so a row with NaN gives NaN, a row with +inf
// gives +inf, a row of -inf and an empty row give -inf); s = the sum of exp(x - shift), each
// exp in the compute type, summed in double; result log(s) + shift in double, rounded to the
// input's type (16-bit types through float, as the CPU's to_out).
//
// Layouts as kernels/scan.cu (scan_by_rows): one block per row (inner == 1, size > 32), else
// one thread per column. Long rows or columns are cut into `splits` chunks: a first kernel
// writes each chunk's max, a second the chunk's sum of exp(x - shift) with the shift taken from
// all the chunk maxima of its row, and a third combines the chunk sums in order.
#include <type_traits>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kLseThreads = 256;

template <class C>
__device__ __forceinline__ C lse_shift(C m) {
  return isfinite(m) ? m : C(0);
}

template <class T>
__device__ __forceinline__ T lse_finish(double s, acc_t<T> shift) {
  const double v = log(s) + static_cast<double>(shift);
  if constexpr (std::is_same_v<T, double>)
    return v;
  else
    return narrow<T>(static_cast<float>(v));  // f32: the float; 16-bit: through float, RNE
}

/// exp(x - shift) in the compute type, widened to double for the sum.
template <class T>
__device__ __forceinline__ double exp_shifted(T x, acc_t<T> shift) {
  return static_cast<double>(exp(widen(x) - shift));
}

/// Max over pmax[(o * splits + j) * inner + i] for j < splits (NaN propagates).
template <class C>
__device__ __forceinline__ C max_of_chunks(const C* pmax, int64_t o, int64_t i, int64_t inner, int64_t splits) {
  C m = -plus_inf<C>();
  for (int64_t j = 0; j < splits; ++j) m = nan_max(m, pmax[(o * splits + j) * inner + i]);
  return m;
}

// ---- one chunk per row or column (splits == 1)

template <class T>
__global__ void __launch_bounds__(kLseThreads)
    lse_rows(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size) {
  using C = acc_t<T>;
  __shared__ C cscratch[32];
  __shared__ double dscratch[32];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* x = in + row * size;
    C m = -plus_inf<C>();
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) m = nan_max(m, widen(x[k]));
    const C shift = lse_shift(block_reduce(m, true, cscratch));
    double s = 0.0;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) s += exp_shifted(x[k], shift);
    s = block_reduce(s, false, dscratch);
    if (threadIdx.x == 0) out[row] = lse_finish<T>(s, shift);
  }
}

template <class T>
__global__ void lse_columns(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size,
                            int64_t inner) {
  using C = acc_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const T* x = in + (t / inner) * size * inner + t % inner;
    C m = -plus_inf<C>();
    for (int64_t k = 0; k < size; ++k) m = nan_max(m, widen(x[k * inner]));
    const C shift = lse_shift(m);
    double s = 0.0;
    for (int64_t k = 0; k < size; ++k) s += exp_shifted(x[k * inner], shift);
    out[t] = lse_finish<T>(s, shift);
  }
}

// ---- chunked (splits > 1); partials at (o * splits + chunk) * inner + i

/// Pass 1, rows: block (row, chunk) -> pmax[blk].
template <class T>
__global__ void __launch_bounds__(kLseThreads)
    lse_rows_max(acc_t<T>* __restrict__ pmax, const T* __restrict__ in, int64_t outer, int64_t size, int64_t splits) {
  using C = acc_t<T>;
  __shared__ C cscratch[32];
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    C m = -plus_inf<C>();
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) m = nan_max(m, widen(x[k]));
    m = block_reduce(m, true, cscratch);
    if (threadIdx.x == 0) pmax[blk] = m;
  }
}

/// Pass 2, rows: block (row, chunk) -> psum[blk], shifted by the row's max over all chunks.
template <class T>
__global__ void __launch_bounds__(kLseThreads)
    lse_rows_sum(double* __restrict__ psum, const acc_t<T>* __restrict__ pmax, const T* __restrict__ in, int64_t outer,
                 int64_t size, int64_t splits) {
  using C = acc_t<T>;
  __shared__ C cscratch[32];
  __shared__ double dscratch[32];
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    C m = -plus_inf<C>();
    for (int64_t j = threadIdx.x; j < splits; j += blockDim.x) m = nan_max(m, pmax[row * splits + j]);
    const C shift = lse_shift(block_reduce(m, true, cscratch));
    double sum = 0.0;
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) sum += exp_shifted(x[k], shift);
    sum = block_reduce(sum, false, dscratch);
    if (threadIdx.x == 0) psum[blk] = sum;
  }
}

/// Pass 1, columns: thread (o, chunk, i) -> pmax[t].
template <class T>
__global__ void lse_columns_max(acc_t<T>* __restrict__ pmax, const T* __restrict__ in, int64_t outer, int64_t size,
                                int64_t inner, int64_t splits) {
  using C = acc_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t t = global_thread(); t < outer * splits * inner; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    C m = -plus_inf<C>();
    for (int64_t k = begin; k < end; ++k) m = nan_max(m, widen(x[k * inner]));
    pmax[t] = m;
  }
}

/// Pass 2, columns: thread (o, chunk, i) -> psum[t].
template <class T>
__global__ void lse_columns_sum(double* __restrict__ psum, const acc_t<T>* __restrict__ pmax, const T* __restrict__ in,
                                int64_t outer, int64_t size, int64_t inner, int64_t splits) {
  using C = acc_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t t = global_thread(); t < outer * splits * inner; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    const C shift = lse_shift(max_of_chunks(pmax, o, i, inner, splits));
    double sum = 0.0;
    for (int64_t k = begin; k < end; ++k) sum += exp_shifted(x[k * inner], shift);
    psum[t] = sum;
  }
}

/// Pass 3: thread (o, i) adds its chunk sums in order and writes the result.
template <class T>
__global__ void lse_finish_chunks(T* __restrict__ out, const acc_t<T>* __restrict__ pmax,
                                  const double* __restrict__ psum, int64_t outer, int64_t inner, int64_t splits) {
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    const auto shift = lse_shift(max_of_chunks(pmax, o, i, inner, splits));
    double s = 0.0;
    for (int64_t j = 0; j < splits; ++j) s += psum[(o * splits + j) * inner + i];
    out[t] = lse_finish<T>(s, shift);
  }
}

template <class T>
cudaError_t launch_logsumexp(void* out_v, const void* in_v, int64_t outer, int64_t size, int64_t inner, int64_t splits,
                             void* workspace, cudaStream_t stream) {
  using C = acc_t<T>;
  auto* out = static_cast<T*>(out_v);
  const auto* in = static_cast<const T*>(in_v);
  const bool rows = scan_by_rows(size, inner);
  if (splits == 1) {
    if (rows) return launch_blocks(lse_rows<T>, outer, kLseThreads, 0, stream, out, in, outer, size);
    return launch(lse_columns<T>, outer * inner, kThreads, 0, stream, out, in, outer, size, inner);
  }
  if (workspace == nullptr) return cudaErrorInvalidValue;
  // Workspace: the chunk maxima (8-byte slots, C is float or double), then the chunk sums.
  const int64_t parts = outer * splits * inner;
  auto* pmax = static_cast<C*>(workspace);
  auto* psum = reinterpret_cast<double*>(static_cast<char*>(workspace) + parts * 8);
  cudaError_t e;
  if (rows) {
    e = launch_blocks(lse_rows_max<T>, parts, kLseThreads, 0, stream, pmax, in, outer, size, splits);
    if (e == cudaSuccess)
      e = launch_blocks(lse_rows_sum<T>, parts, kLseThreads, 0, stream, psum, static_cast<const C*>(pmax), in, outer,
                        size, splits);
  } else {
    e = launch(lse_columns_max<T>, parts, kThreads, 0, stream, pmax, in, outer, size, inner, splits);
    if (e == cudaSuccess)
      e = launch(lse_columns_sum<T>, parts, kThreads, 0, stream, psum, static_cast<const C*>(pmax), in, outer, size,
                 inner, splits);
  }
  if (e != cudaSuccess) return e;
  return launch(lse_finish_chunks<T>, outer * inner, kThreads, 0, stream, out, static_cast<const C*>(pmax),
                static_cast<const double*>(psum), outer, inner, splits);
}

}  // namespace

int64_t logsumexp_workspace_bytes(int64_t outer, int64_t inner, int64_t splits) {
  return splits > 1 ? outer * splits * inner * 16 : 0;
}

cudaError_t logsumexp(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                      int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (splits < 1) return cudaErrorInvalidValue;
  return by_type(t, [&]<class T>() {
    return launch_logsumexp<T>(out, in, outer, size, inner, splits, workspace, stream);
  });
}

}  // namespace ember::cuda_backend::kernels
