// Reductions (sum/mean/max/min over the middle axis of a contiguous (outer, size, inner) block)
// and softmax / log-softmax with their backward. Accumulation in f32 (f64 for f64).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class C>
__device__ __forceinline__ C identity(RedOp op) {
  return op == RedOp::max ? -plus_inf<C>() : op == RedOp::min ? plus_inf<C>() : C(0);
}

template <class C>
__device__ __forceinline__ C combine(RedOp op, C x, C y) {
  return op == RedOp::max ? nan_max(x, y) : op == RedOp::min ? nan_min(x, y) : x + y;
}

template <class T>
__device__ __forceinline__ T finish(RedOp op, acc_t<T> v, int64_t size) {
  return narrow<T>(op == RedOp::mean ? v / static_cast<acc_t<T>>(size) : v);
}

// Stage 1, inner == 1: block b handles row b / splits, chunk b % splits. With splits == 1 it
// writes the final value, otherwise an accumulator into `partial`.
template <class T>
__global__ void reduce_rows(RedOp op, T* __restrict__ out, acc_t<T>* __restrict__ partial, const T* __restrict__ in,
                            int64_t outer, int64_t size, int64_t splits) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  const int64_t chunk = (size + splits - 1) / splits;
  // min/max reduce with NaN propagation, block_reduce's max mode does that; min is -max(-x).
  const bool as_max = op == RedOp::max || op == RedOp::min;
  const C sign = op == RedOp::min ? C(-1) : C(1);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const int64_t row = blk / splits, s = blk % splits;
    const int64_t begin = s * chunk, end = min(size, begin + chunk);
    const T* p = in + row * size;
    C acc = as_max ? -plus_inf<C>() : C(0);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
      const C v = sign * widen(p[k]);
      acc = as_max ? nan_max(acc, v) : acc + v;
    }
    acc = sign * block_reduce(acc, as_max, scratch);
    if (threadIdx.x == 0) {
      if (splits == 1)
        out[row] = finish<T>(op, acc, size);
      else
        partial[blk] = acc;
    }
  }
}

// Stage 1, inner > 1: one thread per (outer, split, inner); neighbouring threads read
// neighbouring elements.
template <class T>
__global__ void reduce_columns(RedOp op, T* __restrict__ out, acc_t<T>* __restrict__ partial, const T* __restrict__ in,
                               int64_t outer, int64_t size, int64_t inner, int64_t splits) {
  using C = acc_t<T>;
  const int64_t chunk = (size + splits - 1) / splits;
  const int64_t total = outer * splits * inner;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t i = t % inner, os = t / inner, s = os % splits, o = os / splits;
    const int64_t begin = s * chunk, end = min(size, begin + chunk);
    const T* p = in + o * size * inner + i;
    C acc = identity<C>(op);
    for (int64_t k = begin; k < end; ++k) acc = combine(op, acc, widen(p[k * inner]));
    if (splits == 1)
      out[o * inner + i] = finish<T>(op, acc, size);
    else
      partial[t] = acc;
  }
}

// Stage 2: combines the splits of each (outer, inner) output.
template <class T>
__global__ void reduce_finish(RedOp op, T* __restrict__ out, const acc_t<T>* __restrict__ partial, int64_t outer,
                              int64_t size, int64_t inner, int64_t splits) {
  using C = acc_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    C acc = identity<C>(op);
    for (int64_t s = 0; s < splits; ++s) acc = combine(op, acc, partial[(o * splits + s) * inner + i]);
    out[t] = finish<T>(op, acc, size);
  }
}

// One block per row (outer * inner rows); element k of row (o, i) is at (o * size + k) * inner + i.
template <class T>
__global__ void softmax_rows(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size, int64_t inner,
                             bool log) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  for (int64_t row = blockIdx.x; row < outer * inner; row += gridDim.x) {
    const int64_t o = row / inner, i = row % inner;
    const T* x = in + o * size * inner + i;
    T* y = out + o * size * inner + i;
    C m = -plus_inf<C>();
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) m = nan_max(m, widen(x[k * inner]));
    m = block_reduce(m, true, scratch);
    // A row of -inf only gives NaN (exp(-inf - -inf)), as torch does.
    C sum = 0;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) sum += exp(widen(x[k * inner]) - m);
    sum = block_reduce(sum, false, scratch);
    const C lse = log ? m + ::log(sum) : C(0);
    const C inv = C(1) / sum;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
      const C v = widen(x[k * inner]);
      y[k * inner] = narrow<T>(log ? v - lse : exp(v - m) * inv);
    }
  }
}

template <class T>
__global__ void softmax_backward_rows(T* __restrict__ gx, const T* __restrict__ gy, const T* __restrict__ y,
                                      int64_t outer, int64_t size, int64_t inner, bool log) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  for (int64_t row = blockIdx.x; row < outer * inner; row += gridDim.x) {
    const int64_t base = (row / inner) * size * inner + row % inner;
    C dot = 0;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
      const int64_t e = base + k * inner;
      dot += log ? widen(gy[e]) : widen(gy[e]) * widen(y[e]);
    }
    dot = block_reduce(dot, false, scratch);
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
      const int64_t e = base + k * inner;
      const C g = widen(gy[e]), v = widen(y[e]);
      gx[e] = narrow<T>(log ? g - exp(v) * dot : v * (g - dot));
    }
  }
}

// Threads per row-block: a power of two covering the row, 32 to 1024.
int row_threads(int64_t size) {
  int t = 32;
  while (t < 1024 && t < size) t *= 2;
  return t;
}

template <class T>
cudaError_t launch_reduce(RedOp op, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                          int64_t splits, void* workspace, cudaStream_t s) {
  auto* o = static_cast<T*>(out);
  auto* x = static_cast<const T*>(in);
  auto* part = static_cast<acc_t<T>*>(workspace);
  cudaError_t st;
  if (inner == 1 && size > 64) {  // short rows: one thread per row (reduce_columns) wastes less
    st = launch_blocks(reduce_rows<T>, outer * splits, kThreads, 0, s, op, o, part, x, outer, size, splits);
  } else {
    st = launch(reduce_columns<T>, outer * splits * inner, kThreads, 0, s, op, o, part, x, outer, size, inner, splits);
  }
  if (st != cudaSuccess || splits == 1) return st;
  return launch(reduce_finish<T>, outer * inner, kThreads, 0, s, op, o, static_cast<const acc_t<T>*>(part), outer, size,
                inner, splits);
}

}  // namespace

int accumulator_size(FloatType t) { return t == FloatType::f64 ? 8 : 4; }

cudaError_t reduce(RedOp op, FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                   int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (splits < 1 || (splits > 1 && workspace == nullptr)) return cudaErrorInvalidValue;
  switch (t) {
    case FloatType::f32: return launch_reduce<float>(op, out, in, outer, size, inner, splits, workspace, stream);
    case FloatType::f64: return launch_reduce<double>(op, out, in, outer, size, inner, splits, workspace, stream);
    case FloatType::f16: return launch_reduce<__half>(op, out, in, outer, size, inner, splits, workspace, stream);
    case FloatType::bf16:
      return launch_reduce<__nv_bfloat16>(op, out, in, outer, size, inner, splits, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t softmax(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner, bool log,
                    cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  const int th = row_threads(size);
  const int64_t rows = outer * inner;
  switch (t) {
    case FloatType::f32:
      return launch_blocks(softmax_rows<float>, rows, th, 0, stream, static_cast<float*>(out),
                           static_cast<const float*>(in), outer, size, inner, log);
    case FloatType::f64:
      return launch_blocks(softmax_rows<double>, rows, th, 0, stream, static_cast<double*>(out),
                           static_cast<const double*>(in), outer, size, inner, log);
    case FloatType::f16:
      return launch_blocks(softmax_rows<__half>, rows, th, 0, stream, static_cast<__half*>(out),
                           static_cast<const __half*>(in), outer, size, inner, log);
    case FloatType::bf16:
      return launch_blocks(softmax_rows<__nv_bfloat16>, rows, th, 0, stream, static_cast<__nv_bfloat16*>(out),
                           static_cast<const __nv_bfloat16*>(in), outer, size, inner, log);
  }
  return cudaErrorInvalidValue;
}

cudaError_t softmax_backward(FloatType t, void* gx, const void* gy, const void* y, int64_t outer, int64_t size,
                             int64_t inner, bool log, cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  const int th = row_threads(size);
  const int64_t rows = outer * inner;
  switch (t) {
    case FloatType::f32:
      return launch_blocks(softmax_backward_rows<float>, rows, th, 0, stream, static_cast<float*>(gx),
                           static_cast<const float*>(gy), static_cast<const float*>(y), outer, size, inner, log);
    case FloatType::f64:
      return launch_blocks(softmax_backward_rows<double>, rows, th, 0, stream, static_cast<double*>(gx),
                           static_cast<const double*>(gy), static_cast<const double*>(y), outer, size, inner, log);
    case FloatType::f16:
      return launch_blocks(softmax_backward_rows<__half>, rows, th, 0, stream, static_cast<__half*>(gx),
                           static_cast<const __half*>(gy), static_cast<const __half*>(y), outer, size, inner, log);
    case FloatType::bf16:
      return launch_blocks(softmax_backward_rows<__nv_bfloat16>, rows, th, 0, stream, static_cast<__nv_bfloat16*>(gx),
                           static_cast<const __nv_bfloat16*>(gy), static_cast<const __nv_bfloat16*>(y), outer, size,
                           inner, log);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
