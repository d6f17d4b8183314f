// Reductions beyond reduce.cu's floating sum/mean/max/min: integer and bool sums, products, max
// and min (int64 accumulation), floating products and norms (double accumulation, as the CPU),
// argmax/argmin with values, variance / standard deviation (two passes in double) and the scatter
// that routes a max/min gradient back to its index. The input is a contiguous (outer, size, inner)
// block reduced over its middle axis; one block per output when inner == 1 and rows are long,
// else one thread per output; reduce_ext, reduce_arg and variance split long reductions into
// chunks whose partials a second kernel combines in order (deterministic), like reduce.cu.
#include <type_traits>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

// Storage type -> accumulator: double for floating types, int64 for integers and bool.
template <class T>
using wide_t = std::conditional_t<std::is_integral_v<T>, int64_t, double>;

template <class T>
__device__ __forceinline__ wide_t<T> load_wide(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<int64_t>(v);
  else
    return static_cast<double>(widen(v));
}

/// A double accumulator as O. 16-bit types round through float, as the CPU's to_out does
/// (src/cpu/reduce_util.hpp): a direct double rounding differs in the last bit now and then.
template <class O>
__device__ __forceinline__ O store_from(double v) {
  if constexpr (std::is_same_v<O, __half>)
    return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<O, __nv_bfloat16>)
    return __float2bfloat16_rn(static_cast<float>(v));
  else
    return static_cast<O>(v);
}
template <class O>
__device__ __forceinline__ O store_from(int64_t v) {
  if constexpr (std::is_same_v<O, bool>)
    return v != 0;
  else
    return static_cast<O>(v);
}

template <class A>
__device__ __forceinline__ A lowest_of() {
  if constexpr (std::is_integral_v<A>)
    return INT64_MIN;
  else
    return -plus_inf<A>();
}
template <class A>
__device__ __forceinline__ A highest_of() {
  if constexpr (std::is_integral_v<A>)
    return INT64_MAX;
  else
    return plus_inf<A>();
}

template <class A>
__device__ __forceinline__ A identity(ExtRedOp op) {
  switch (op) {
    case ExtRedOp::prod: return A(1);
    case ExtRedOp::max: return lowest_of<A>();
    case ExtRedOp::min:
    case ExtRedOp::norm_neg_inf: return highest_of<A>();
    default: return A(0);  // sums, norm_inf (|x| >= 0, as the CPU starts from 0)
  }
}

template <class A>
__device__ __forceinline__ A combine(ExtRedOp op, A x, A y) {
  switch (op) {
    case ExtRedOp::prod:
      if constexpr (std::is_integral_v<A>)
        return static_cast<A>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
      else
        return x * y;
    case ExtRedOp::max:
    case ExtRedOp::norm_inf: return nan_max(x, y);
    case ExtRedOp::min:
    case ExtRedOp::norm_neg_inf: return nan_min(x, y);
    default:
      if constexpr (std::is_integral_v<A>)
        return static_cast<A>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y));
      else
        return x + y;
  }
}

/// The value an element contributes (|x|, x^2, ... for the norms; floating types only).
template <class A>
__device__ __forceinline__ A contribution(ExtRedOp op, A x, double p) {
  if constexpr (std::is_integral_v<A>) {
    return x;
  } else {
    switch (op) {
      case ExtRedOp::norm0: return x != 0.0 ? 1.0 : 0.0;
      case ExtRedOp::norm1:
      case ExtRedOp::norm_inf:
      case ExtRedOp::norm_neg_inf: return fabs(x);
      case ExtRedOp::norm2: return x * x;
      case ExtRedOp::norm_p: return ::pow(fabs(x), p);
      default: return x;
    }
  }
}

template <class A>
__device__ __forceinline__ A finish(ExtRedOp op, A a, double p) {
  if constexpr (std::is_integral_v<A>) {
    return a;
  } else {
    if (op == ExtRedOp::norm2) return sqrt(a);
    if (op == ExtRedOp::norm_p) return ::pow(a, 1.0 / p);
    return a;
  }
}

/// Tree reduction of one value per thread over a block of kThreads threads; every thread gets it.
template <class A, class F>
__device__ A block_combine(A v, A* sh, F f) {
  __syncthreads();  // sh may still be read by the previous row
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) sh[threadIdx.x] = f(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  return sh[0];
}

template <class T, class O>
__global__ void ext_rows(ExtRedOp op, O* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size,
                         double p) {
  using A = wide_t<T>;
  __shared__ A sh[kThreads];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* x = in + row * size;
    A acc = identity<A>(op);
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) acc = combine(op, acc, contribution(op, load_wide(x[k]), p));
    acc = block_combine(acc, sh, [op](A u, A v) { return combine(op, u, v); });
    if (threadIdx.x == 0) out[row] = store_from<O>(finish(op, acc, p));
  }
}

template <class T, class O>
__global__ void ext_cols(ExtRedOp op, O* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size,
                         int64_t inner, double p) {
  using A = wide_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    const T* x = in + o * size * inner + i;
    A acc = identity<A>(op);
    for (int64_t k = 0; k < size; ++k) acc = combine(op, acc, contribution(op, load_wide(x[k * inner]), p));
    out[t] = store_from<O>(finish(op, acc, p));
  }
}

// Long reductions in two stages (splits > 1): stage 1 writes the accumulator of each chunk of
// ceil(size / splits) elements (before finish) to `partial` (outer, splits, inner), ext_finish
// combines the splits of each output in order (deterministic).

/// Stage 1, inner == 1: block b reduces chunk b % splits of row b / splits.
template <class T>
__global__ void ext_rows_part(ExtRedOp op, wide_t<T>* __restrict__ partial, const T* __restrict__ in, int64_t outer,
                              int64_t size, int64_t splits, double p) {
  using A = wide_t<T>;
  __shared__ A sh[kThreads];
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    A acc = identity<A>(op);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x)
      acc = combine(op, acc, contribution(op, load_wide(x[k]), p));
    acc = block_combine(acc, sh, [op](A u, A v) { return combine(op, u, v); });
    if (threadIdx.x == 0) partial[blk] = acc;
  }
}

/// Stage 1, inner > 1 (or short rows): one thread per (outer, split, inner).
template <class T>
__global__ void ext_cols_part(ExtRedOp op, wide_t<T>* __restrict__ partial, const T* __restrict__ in, int64_t outer,
                              int64_t size, int64_t inner, int64_t splits, double p) {
  using A = wide_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t t = global_thread(); t < outer * splits * inner; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    A acc = identity<A>(op);
    for (int64_t k = begin; k < end; ++k) acc = combine(op, acc, contribution(op, load_wide(x[k * inner]), p));
    partial[t] = acc;
  }
}

/// Stage 2: combines the splits of each (outer, inner) output and finishes it.
template <class A, class O>
__global__ void ext_finish(ExtRedOp op, O* __restrict__ out, const A* __restrict__ partial, int64_t outer,
                           int64_t inner, int64_t splits, double p) {
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    A acc = identity<A>(op);
    for (int64_t s = 0; s < splits; ++s) acc = combine(op, acc, partial[(o * splits + s) * inner + i]);
    out[t] = store_from<O>(finish(op, acc, p));
  }
}

bool use_rows(int64_t size, int64_t inner) { return inner == 1 && size > 64; }

template <class T, class O>
cudaError_t launch_ext(ExtRedOp op, void* out, const void* in, int64_t outer, int64_t size, int64_t inner, double p,
                       int64_t splits, void* workspace, cudaStream_t s) {
  auto* o = static_cast<O*>(out);
  auto* x = static_cast<const T*>(in);
  if (splits == 1) {
    if (use_rows(size, inner)) return launch_blocks(ext_rows<T, O>, outer, kThreads, 0, s, op, o, x, outer, size, p);
    return launch(ext_cols<T, O>, outer * inner, kThreads, 0, s, op, o, x, outer, size, inner, p);
  }
  using A = wide_t<T>;
  auto* part = static_cast<A*>(workspace);
  const cudaError_t st =
      use_rows(size, inner)
          ? launch_blocks(ext_rows_part<T>, outer * splits, kThreads, 0, s, op, part, x, outer, size, splits, p)
          : launch(ext_cols_part<T>, outer * splits * inner, kThreads, 0, s, op, part, x, outer, size, inner, splits, p);
  if (st != cudaSuccess) return st;
  return launch(ext_finish<A, O>, outer * inner, kThreads, 0, s, op, o, static_cast<const A*>(part), outer, inner,
                splits, p);
}

template <class T>
cudaError_t ext_int(ExtRedOp op, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                    int64_t splits, void* workspace, cudaStream_t s) {
  switch (op) {
    case ExtRedOp::sum:
    case ExtRedOp::prod: return launch_ext<T, int64_t>(op, out, in, outer, size, inner, 0.0, splits, workspace, s);
    case ExtRedOp::max:
    case ExtRedOp::min: return launch_ext<T, T>(op, out, in, outer, size, inner, 0.0, splits, workspace, s);
    default: return cudaErrorInvalidValue;
  }
}

// ---- argmax / argmin

template <class A>
struct Cand {
  A v;
  int64_t i;  // -1: no candidate yet
};

/// The better of two candidates: the extreme value (NaN counts as the extreme), the lower index
/// on ties. Associative and commutative, so any combination order gives the CPU's first index.
template <class A>
__device__ __forceinline__ Cand<A> pick(Cand<A> a, Cand<A> b, bool is_max) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) {
    if (an && bn) return a.i < b.i ? a : b;
    return an ? a : b;
  }
  if (a.v == b.v) return a.i < b.i ? a : b;
  return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
}

template <class T>
__global__ void arg_rows(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ in,
                         int64_t outer, int64_t size, bool is_max) {
  using A = wide_t<T>;
  __shared__ Cand<A> sh[kThreads];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* x = in + row * size;
    Cand<A> c{A(0), -1};
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) c = pick(c, Cand<A>{load_wide(x[k]), k}, is_max);
    c = block_combine(c, sh, [is_max](Cand<A> u, Cand<A> v) { return pick(u, v, is_max); });
    if (threadIdx.x == 0) {
      indices[row] = c.i;
      if (values) values[row] = x[c.i];
    }
  }
}

template <class T>
__global__ void arg_cols(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ in,
                         int64_t outer, int64_t size, int64_t inner, bool is_max) {
  using A = wide_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    const T* x = in + o * size * inner + i;
    Cand<A> c{A(0), -1};
    for (int64_t k = 0; k < size; ++k) c = pick(c, Cand<A>{load_wide(x[k * inner]), k}, is_max);
    indices[t] = c.i;
    if (values) values[t] = x[c.i * inner];
  }
}

// Long arg reductions in two stages (splits > 1): stage 1 writes the best candidate of each
// chunk (value and index in the reduced axis, -1 for an empty chunk) to `partial` (outer,
// splits, inner); arg_finish picks among the splits of each output in order. pick() is
// associative, so the result is the CPU's (first index on ties, first NaN wins).

/// Stage 1, inner == 1: block b reduces chunk b % splits of row b / splits.
template <class T>
__global__ void arg_rows_part(Cand<wide_t<T>>* __restrict__ partial, const T* __restrict__ in, int64_t outer,
                              int64_t size, int64_t splits, bool is_max) {
  using A = wide_t<T>;
  __shared__ Cand<A> sh[kThreads];
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    Cand<A> c{A(0), -1};
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) c = pick(c, Cand<A>{load_wide(x[k]), k}, is_max);
    c = block_combine(c, sh, [is_max](Cand<A> u, Cand<A> v) { return pick(u, v, is_max); });
    if (threadIdx.x == 0) partial[blk] = c;
  }
}

/// Stage 1, inner > 1 (or short rows): one thread per (outer, split, inner).
template <class T>
__global__ void arg_cols_part(Cand<wide_t<T>>* __restrict__ partial, const T* __restrict__ in, int64_t outer,
                              int64_t size, int64_t inner, int64_t splits, bool is_max) {
  using A = wide_t<T>;
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t t = global_thread(); t < outer * splits * inner; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    Cand<A> c{A(0), -1};
    for (int64_t k = begin; k < end; ++k) c = pick(c, Cand<A>{load_wide(x[k * inner]), k}, is_max);
    partial[t] = c;
  }
}

/// Stage 2: picks among the splits of each (outer, inner) output in order; the value is read
/// back from the input at the winning index (the storage type, as arg_rows does).
template <class T>
__global__ void arg_finish(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ in,
                           const Cand<wide_t<T>>* __restrict__ partial, int64_t outer, int64_t size, int64_t inner,
                           int64_t splits, bool is_max) {
  using A = wide_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    Cand<A> c{A(0), -1};
    for (int64_t s = 0; s < splits; ++s) c = pick(c, partial[(o * splits + s) * inner + i], is_max);
    indices[t] = c.i;
    if (values) values[t] = in[(o * size + c.i) * inner + i];
  }
}

template <class T>
cudaError_t launch_arg(void* values, int64_t* indices, const void* in, int64_t outer, int64_t size, int64_t inner,
                       bool is_max, int64_t splits, void* workspace, cudaStream_t s) {
  auto* v = static_cast<T*>(values);
  auto* x = static_cast<const T*>(in);
  if (splits == 1) {
    if (use_rows(size, inner))
      return launch_blocks(arg_rows<T>, outer, kThreads, 0, s, v, indices, x, outer, size, is_max);
    return launch(arg_cols<T>, outer * inner, kThreads, 0, s, v, indices, x, outer, size, inner, is_max);
  }
  auto* part = static_cast<Cand<wide_t<T>>*>(workspace);
  const cudaError_t st =
      use_rows(size, inner)
          ? launch_blocks(arg_rows_part<T>, outer * splits, kThreads, 0, s, part, x, outer, size, splits, is_max)
          : launch(arg_cols_part<T>, outer * splits * inner, kThreads, 0, s, part, x, outer, size, inner, splits,
                   is_max);
  if (st != cudaSuccess) return st;
  return launch(arg_finish<T>, outer * inner, kThreads, 0, s, v, indices, x, part, outer, size, inner, splits, is_max);
}

// ---- variance

template <class T>
__global__ void var_rows(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size, double denom,
                         bool take_sqrt) {
  __shared__ double sh[kThreads];
  auto add = [](double u, double v) { return u + v; };
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* x = in + row * size;
    double s = 0;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) s += load_wide(x[k]);
    const double mean = block_combine(s, sh, add) / static_cast<double>(size);
    double m2 = 0;
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
      const double d = load_wide(x[k]) - mean;
      m2 += d * d;
    }
    m2 = block_combine(m2, sh, add);
    if (threadIdx.x == 0) {
      const double v = m2 / denom;
      out[row] = store_from<T>(take_sqrt ? sqrt(v) : v);
    }
  }
}

template <class T>
__global__ void var_cols(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size, int64_t inner,
                         double denom, bool take_sqrt) {
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    const T* x = in + o * size * inner + i;
    double s = 0;
    for (int64_t k = 0; k < size; ++k) s += load_wide(x[k * inner]);
    const double mean = s / static_cast<double>(size);
    double m2 = 0;
    for (int64_t k = 0; k < size; ++k) {
      const double d = load_wide(x[k * inner]) - mean;
      m2 += d * d;
    }
    const double v = m2 / denom;
    out[t] = store_from<T>(take_sqrt ? sqrt(v) : v);
  }
}

// Long variances in stages (splits > 1), the CPU's two passes in double: per-chunk sums of x
// (mean == null) or of (x - mean)^2 go to `partial` (outer, splits, inner); var_finish adds
// the splits of each output in order and writes the mean (first pass, to `mean`) or the result.

/// Stage 1 of either pass, inner == 1: block b sums chunk b % splits of row b / splits.
template <class T>
__global__ void var_rows_part(double* __restrict__ partial, const T* __restrict__ in, const double* __restrict__ mean,
                              int64_t outer, int64_t size, int64_t splits) {
  __shared__ double sh[kThreads];
  auto add = [](double u, double v) { return u + v; };
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
    const T* x = in + row * size;
    double acc = 0;
    if (mean == nullptr) {
      for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) acc += load_wide(x[k]);
    } else {
      const double m = mean[row];
      for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
        const double d = load_wide(x[k]) - m;
        acc += d * d;
      }
    }
    acc = block_combine(acc, sh, add);
    if (threadIdx.x == 0) partial[blk] = acc;
  }
}

/// Stage 1 of either pass, inner > 1 (or short rows): one thread per (outer, split, inner).
template <class T>
__global__ void var_cols_part(double* __restrict__ partial, const T* __restrict__ in, const double* __restrict__ mean,
                              int64_t outer, int64_t size, int64_t inner, int64_t splits) {
  const int64_t chunk = chunk_length(size, splits);
  for (int64_t t = global_thread(); t < outer * splits * inner; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
    const T* x = in + o * size * inner + i;
    double acc = 0;
    if (mean == nullptr) {
      for (int64_t k = begin; k < end; ++k) acc += load_wide(x[k * inner]);
    } else {
      const double m = mean[o * inner + i];
      for (int64_t k = begin; k < end; ++k) {
        const double d = load_wide(x[k * inner]) - m;
        acc += d * d;
      }
    }
    partial[t] = acc;
  }
}

/// Stage 2: the splits of each (outer, inner) output added in order; first pass: mean = sum /
/// size into `mean`; second pass: the variance (or its root) into `out`.
template <class T>
__global__ void var_finish(T* __restrict__ out, double* __restrict__ mean, const double* __restrict__ partial,
                           int64_t outer, int64_t size, int64_t inner, int64_t splits, double denom, bool take_sqrt,
                           bool first_pass) {
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    double acc = 0;
    for (int64_t s = 0; s < splits; ++s) acc += partial[(o * splits + s) * inner + i];
    if (first_pass) {
      mean[t] = acc / static_cast<double>(size);
    } else {
      const double v = acc / denom;
      out[t] = store_from<T>(take_sqrt ? sqrt(v) : v);
    }
  }
}

template <class T>
cudaError_t launch_var(void* out, const void* in, int64_t outer, int64_t size, int64_t inner, double denom,
                       bool take_sqrt, int64_t splits, void* workspace, cudaStream_t s) {
  auto* o = static_cast<T*>(out);
  auto* x = static_cast<const T*>(in);
  if (splits == 1) {
    if (use_rows(size, inner))
      return launch_blocks(var_rows<T>, outer, kThreads, 0, s, o, x, outer, size, denom, take_sqrt);
    return launch(var_cols<T>, outer * inner, kThreads, 0, s, o, x, outer, size, inner, denom, take_sqrt);
  }
  auto* part = static_cast<double*>(workspace);
  double* mean = part + outer * splits * inner;
  const bool rows = use_rows(size, inner);
  for (const bool first : {true, false}) {
    const double* m = first ? nullptr : mean;
    cudaError_t st =
        rows ? launch_blocks(var_rows_part<T>, outer * splits, kThreads, 0, s, part, x, m, outer, size, splits)
             : launch(var_cols_part<T>, outer * splits * inner, kThreads, 0, s, part, x, m, outer, size, inner, splits);
    if (st != cudaSuccess) return st;
    st = launch(var_finish<T>, outer * inner, kThreads, 0, s, o, mean, part, outer, size, inner, splits, denom,
                take_sqrt, first);
    if (st != cudaSuccess) return st;
  }
  return cudaSuccess;
}

// ---- scatter of a reduced gradient

template <class W>
__global__ void scatter_reduced_kernel(W* __restrict__ gx, const W* __restrict__ gy, const int64_t* __restrict__ idx,
                                       int64_t outer, int64_t size, int64_t inner) {
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t o = t / inner, i = t % inner;
    gx[(o * size + idx[t]) * inner + i] = gy[t];
  }
}

}  // namespace

cudaError_t reduce_ext(ExtRedOp op, ElemType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                       double p, int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (splits < 1 || (splits > 1 && workspace == nullptr)) return cudaErrorInvalidValue;
  switch (t) {
    case ElemType::i32: return ext_int<int32_t>(op, out, in, outer, size, inner, splits, workspace, stream);
    case ElemType::i64: return ext_int<int64_t>(op, out, in, outer, size, inner, splits, workspace, stream);
    case ElemType::u8: return ext_int<uint8_t>(op, out, in, outer, size, inner, splits, workspace, stream);
    case ElemType::boolean: return ext_int<bool>(op, out, in, outer, size, inner, splits, workspace, stream);
    default: break;
  }
  switch (t) {
    case ElemType::f32: return launch_ext<float, float>(op, out, in, outer, size, inner, p, splits, workspace, stream);
    case ElemType::f64:
      return launch_ext<double, double>(op, out, in, outer, size, inner, p, splits, workspace, stream);
    case ElemType::f16:
      return launch_ext<__half, __half>(op, out, in, outer, size, inner, p, splits, workspace, stream);
    case ElemType::bf16:
      return launch_ext<__nv_bfloat16, __nv_bfloat16>(op, out, in, outer, size, inner, p, splits, workspace, stream);
    default: return cudaErrorInvalidValue;
  }
}

int64_t arg_workspace_bytes(int64_t outer, int64_t inner, int64_t splits) {
  return splits > 1 ? outer * splits * inner * static_cast<int64_t>(sizeof(Cand<double>)) : 0;
}

cudaError_t reduce_arg(ElemType t, void* values, int64_t* indices, const void* in, int64_t outer, int64_t size,
                       int64_t inner, bool is_max, int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (size <= 0 || splits < 1 || (splits > 1 && workspace == nullptr)) return cudaErrorInvalidValue;
  auto run = [&]<class T>() {
    return launch_arg<T>(values, indices, in, outer, size, inner, is_max, splits, workspace, stream);
  };
  switch (t) {
    case ElemType::f32: return run.template operator()<float>();
    case ElemType::f64: return run.template operator()<double>();
    case ElemType::f16: return run.template operator()<__half>();
    case ElemType::bf16: return run.template operator()<__nv_bfloat16>();
    case ElemType::i32: return run.template operator()<int32_t>();
    case ElemType::i64: return run.template operator()<int64_t>();
    case ElemType::u8: return run.template operator()<uint8_t>();
    case ElemType::boolean: return run.template operator()<bool>();
  }
  return cudaErrorInvalidValue;
}

int64_t variance_workspace_bytes(int64_t outer, int64_t inner, int64_t splits) {
  return splits > 1 ? (outer * splits * inner + outer * inner) * static_cast<int64_t>(sizeof(double)) : 0;
}

cudaError_t variance(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                     int64_t correction, bool take_sqrt, int64_t splits, void* workspace, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (splits < 1 || (splits > 1 && workspace == nullptr)) return cudaErrorInvalidValue;
  const double denom = static_cast<double>(size - correction > 0 ? size - correction : 0);
  return by_type(t, [&]<class T>() {
    return launch_var<T>(out, in, outer, size, inner, denom, take_sqrt, splits, workspace, stream);
  });
}

cudaError_t scatter_reduced(FloatType t, void* gx, const void* gy, const int64_t* idx, int64_t outer, int64_t size,
                            int64_t inner, cudaStream_t stream) {
  const int64_t n = outer * inner;
  switch (t) {
    case FloatType::f32:
      return launch(scatter_reduced_kernel<uint32_t>, n, kThreads, 0, stream, static_cast<uint32_t*>(gx),
                    static_cast<const uint32_t*>(gy), idx, outer, size, inner);
    case FloatType::f64:
      return launch(scatter_reduced_kernel<uint64_t>, n, kThreads, 0, stream, static_cast<uint64_t*>(gx),
                    static_cast<const uint64_t*>(gy), idx, outer, size, inner);
    case FloatType::f16:
    case FloatType::bf16:
      return launch(scatter_reduced_kernel<uint16_t>, n, kThreads, 0, stream, static_cast<uint16_t*>(gx),
                    static_cast<const uint16_t*>(gy), idx, outer, size, inner);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
