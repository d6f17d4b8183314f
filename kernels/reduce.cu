// Reductions (sum/mean/max/min over the middle axis of a contiguous (outer, size, inner) block)
// and softmax / log-softmax with their backward. Accumulation in f32 (f64 for f64).
//
// Softmax layouts: rows (inner == 1) of up to kCachedThreads * kCache<T> elements are read once
// into registers (16-byte vectors when aligned; one warp per row for rows of at most
// 32 * kCache<T> elements, else one block), so the max, sum and write passes cost one read and one
// write of memory. Wide columns (inner >= 32 and enough of them) run one thread per column, which
// keeps every load coalesced. Everything else (longer rows, narrow columns) runs one block per
// row with three passes.
#include <initializer_list>

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
  const int64_t chunk = chunk_length(size, splits);
  // min/max reduce with NaN propagation, block_reduce's max mode does that; min is -max(-x).
  const bool as_max = op == RedOp::max || op == RedOp::min;
  const C sign = op == RedOp::min ? C(-1) : C(1);
  for (int64_t blk = blockIdx.x; blk < outer * splits; blk += gridDim.x) {
    const auto [row, s, begin, end] = row_chunk(blk, size, splits, chunk);
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
  const int64_t chunk = chunk_length(size, splits);
  const int64_t total = outer * splits * inner;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const auto [o, s, i, begin, end] = column_chunk(t, size, inner, splits, chunk);
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

// Softmax per element, shared by every layout. Forward: element v of a row with max m,
// log-sum-exp lse and inv = 1 / sum(exp(x - m)). Backward: the row's dot product sums
// softmax_dot_term (gy for log-softmax, gy * y for softmax), then softmax_grad gives each element.
template <class C>
__device__ __forceinline__ C softmax_out(C v, C m, C lse, C inv, bool take_log) {
  return take_log ? v - lse : exp(v - m) * inv;
}
template <class T>
__device__ __forceinline__ acc_t<T> softmax_dot_term(const T* gy, const T* y, int64_t e, bool take_log) {
  return take_log ? widen(gy[e]) : widen(gy[e]) * widen(y[e]);
}
template <class C>
__device__ __forceinline__ C softmax_grad(C g, C y, C dot, bool take_log) {
  return take_log ? g - exp(y) * dot : y * (g - dot);
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
      y[k * inner] = narrow<T>(softmax_out(v, m, lse, inv, log));
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
      dot += softmax_dot_term(gy, y, e, log);
    }
    dot = block_reduce(dot, false, scratch);
    for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
      const int64_t e = base + k * inner;
      const C g = widen(gy[e]), v = widen(y[e]);
      gx[e] = narrow<T>(softmax_grad(g, v, dot, log));
    }
  }
}

// Threads per row-block: a power of two covering the row, 32 to 1024.
int row_threads(int64_t size) {
  int t = 32;
  while (t < 1024 && t < size) t *= 2;
  return t;
}

// ---- Register-cached rows (inner == 1)

// Row elements each thread keeps in registers in the forward with 16-byte vectors: 32 values of
// f32 accumulators, 16 of f64. Scalar loads keep half as many (each needs its own address), the
// backward half as many again of each of its two inputs.
template <class T>
constexpr int kCache = sizeof(T) == 8 ? 16 : 32;
template <class T, int V, bool kBackward>
constexpr int kCached = kCache<T> / (V == 1 ? 2 : 1) / (kBackward ? 2 : 1);
// Most threads of a row block (kCache<T> registers of accumulators each fit at this size).
constexpr int kCachedThreads = 512;
// Rows per block in warp-per-row mode.
constexpr int kWarpsPerBlock = 4;

/// Where a thread of softmax_cached / softmax_backward_cached works: `group` threads share a row
/// (a warp when warp_rows, else the block), `lane` is the thread's place in it, a block holds
/// `per_block` rows and the thread's first row is `first` (then every gridDim.x * per_block).
struct CachedRows {
  int group, lane;
  int64_t per_block, first;
};
__device__ __forceinline__ CachedRows cached_rows(bool warp_rows) {
  const int group = warp_rows ? 32 : static_cast<int>(blockDim.x);
  const int lane = warp_rows ? static_cast<int>(threadIdx.x % 32) : static_cast<int>(threadIdx.x);
  const int64_t per_block = warp_rows ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (warp_rows ? threadIdx.x / 32 : 0);
  return {group, lane, per_block, first};
}

/// Softmax / log-softmax of contiguous rows held in registers: each thread loads N vectors of V
/// elements once (a warp per row when warp_rows, else the block), reduces max and sum from the
/// registers and writes. Rows: size % V == 0 and 16-byte aligned when V > 1; at most
/// group * N * V elements.
template <class T, int V>
__global__ void __launch_bounds__(kCachedThreads)
    softmax_cached(T* __restrict__ out, const T* __restrict__ in, int64_t rows, int64_t size, bool warp_rows,
                   bool take_log) {
  using C = acc_t<T>;
  constexpr int N = kCached<T, V, false> / V;
  __shared__ C scratch[32];
  const auto [group, lane, per_block, first] = cached_rows(warp_rows);
  const int64_t nvec = size / V;
  // The loop bound is uniform over the group (the warp, or the block that block_reduce syncs).
  for (int64_t row = first; row < rows; row += gridDim.x * per_block) {
    const auto* x = reinterpret_cast<const Vec<T, V>*>(in + row * size);
    auto* y = reinterpret_cast<Vec<T, V>*>(out + row * size);
    C v[N][V];
    C m = -plus_inf<C>();
#pragma unroll
    for (int r = 0; r < N; ++r) {
      const int64_t j = lane + int64_t{r} * group;
      if (j < nvec) {
        const Vec<T, V> t = x[j];
#pragma unroll
        for (int k = 0; k < V; ++k) {
          v[r][k] = widen(t.v[k]);
          m = nan_max(m, v[r][k]);
        }
      }
    }
    m = warp_rows ? warp_reduce(m, true) : block_reduce(m, true, scratch);
    // A row of -inf gives NaN (exp(-inf - -inf)), a NaN or +inf anywhere NaN everywhere, as the CPU.
    C sum = 0;
#pragma unroll
    for (int r = 0; r < N; ++r) {
      if (lane + int64_t{r} * group < nvec) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const C e = exp(v[r][k] - m);
          sum += e;
          if (!take_log) v[r][k] = e;
        }
      }
    }
    sum = warp_rows ? warp_reduce(sum, false) : block_reduce(sum, false, scratch);
    const C lse = m + ::log(sum), inv = C(1) / sum;
#pragma unroll
    for (int r = 0; r < N; ++r) {
      const int64_t j = lane + int64_t{r} * group;
      if (j < nvec) {
        Vec<T, V> t;
#pragma unroll
        for (int k = 0; k < V; ++k) t.v[k] = narrow<T>(take_log ? v[r][k] - lse : v[r][k] * inv);
        y[j] = t;
      }
    }
  }
}

/// The backward of softmax_cached's rows (same layouts and limits with N halved): gy and y are
/// read once into registers, the row's dot product reduced, gx written.
template <class T, int V>
__global__ void __launch_bounds__(kCachedThreads)
    softmax_backward_cached(T* __restrict__ gx, const T* __restrict__ gy, const T* __restrict__ y, int64_t rows,
                            int64_t size, bool warp_rows, bool take_log) {
  using C = acc_t<T>;
  constexpr int N = kCached<T, V, true> / V;
  __shared__ C scratch[32];
  const auto [group, lane, per_block, first] = cached_rows(warp_rows);
  const int64_t nvec = size / V;
  for (int64_t row = first; row < rows; row += gridDim.x * per_block) {
    const auto* g = reinterpret_cast<const Vec<T, V>*>(gy + row * size);
    const auto* p = reinterpret_cast<const Vec<T, V>*>(y + row * size);
    auto* o = reinterpret_cast<Vec<T, V>*>(gx + row * size);
    C gv[N][V], yv[N][V];
    C dot = 0;
#pragma unroll
    for (int r = 0; r < N; ++r) {
      const int64_t j = lane + int64_t{r} * group;
      if (j < nvec) {
        const Vec<T, V> a = g[j], b = p[j];
#pragma unroll
        for (int k = 0; k < V; ++k) {
          gv[r][k] = widen(a.v[k]);
          yv[r][k] = widen(b.v[k]);
          dot += take_log ? gv[r][k] : gv[r][k] * yv[r][k];
        }
      }
    }
    dot = warp_rows ? warp_reduce(dot, false) : block_reduce(dot, false, scratch);
#pragma unroll
    for (int r = 0; r < N; ++r) {
      const int64_t j = lane + int64_t{r} * group;
      if (j < nvec) {
        Vec<T, V> t;
#pragma unroll
        for (int k = 0; k < V; ++k) t.v[k] = narrow<T>(softmax_grad(gv[r][k], yv[r][k], dot, take_log));
        o[j] = t;
      }
    }
  }
}

// ---- Wide columns (inner >= 32): one thread per (outer, inner) column, neighbouring threads
// on neighbouring elements of every row.

template <class T>
__global__ void softmax_columns(T* __restrict__ out, const T* __restrict__ in, int64_t outer, int64_t size,
                                int64_t inner, bool take_log) {
  using C = acc_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t base = (t / inner) * size * inner + t % inner;
    const T* x = in + base;
    T* y = out + base;
    C m = -plus_inf<C>();
    for (int64_t k = 0; k < size; ++k) m = nan_max(m, widen(x[k * inner]));
    C sum = 0;
    for (int64_t k = 0; k < size; ++k) sum += exp(widen(x[k * inner]) - m);
    const C lse = m + ::log(sum), inv = C(1) / sum;
    for (int64_t k = 0; k < size; ++k) {
      const C v = widen(x[k * inner]);
      y[k * inner] = narrow<T>(softmax_out(v, m, lse, inv, take_log));
    }
  }
}

template <class T>
__global__ void softmax_backward_columns(T* __restrict__ gx, const T* __restrict__ gy, const T* __restrict__ y,
                                         int64_t outer, int64_t size, int64_t inner, bool take_log) {
  using C = acc_t<T>;
  for (int64_t t = global_thread(); t < outer * inner; t += grid_threads()) {
    const int64_t base = (t / inner) * size * inner + t % inner;
    C dot = 0;
    for (int64_t k = 0; k < size; ++k) {
      const int64_t e = base + k * inner;
      dot += softmax_dot_term(gy, y, e, take_log);
    }
    for (int64_t k = 0; k < size; ++k) {
      const int64_t e = base + k * inner;
      const C g = widen(gy[e]), v = widen(y[e]);
      gx[e] = narrow<T>(softmax_grad(g, v, dot, take_log));
    }
  }
}

/// Columns go to the column kernels when they are wide enough to coalesce and numerous enough
/// to fill the device; otherwise a block per (strided) row does more in parallel.
bool use_columns(int64_t outer, int64_t inner) { return inner >= 32 && outer * inner >= 8192; }

/// How softmax_cached / softmax_backward_cached run a row of `size` elements: vector width
/// (kVec<T> when every pointer is 16-byte aligned and size % kVec<T> == 0, else 1), warp or
/// block per row, threads per block. threads == 0: the row does not fit in registers.
struct CachedPlan {
  bool vectorised = false, warp_rows = false;
  int threads = 0;
};

template <class T, bool kBackward>
CachedPlan cached_plan(int64_t size, std::initializer_list<const void*> ptrs) {
  CachedPlan p;
  p.vectorised = size % kVec<T> == 0;
  for (const void* q : ptrs) p.vectorised = p.vectorised && reinterpret_cast<uintptr_t>(q) % 16 == 0;
  const int cache = p.vectorised ? kCached<T, kVec<T>, kBackward> : kCached<T, 1, kBackward>;
  if (size <= int64_t{32} * cache) {
    p.warp_rows = true;
    p.threads = 32 * kWarpsPerBlock;
  } else if (size <= int64_t{kCachedThreads} * cache) {
    // Enough warps that each thread holds at most `cache` elements.
    const int64_t per_thread = int64_t{32} * cache;
    p.threads = static_cast<int>(32 * ((size + per_thread - 1) / per_thread));
  }
  return p;
}

/// Blocks for a cached launch over `rows` rows.
int64_t cached_blocks(const CachedPlan& p, int64_t rows) {
  return p.warp_rows ? (rows + kWarpsPerBlock - 1) / kWarpsPerBlock : rows;
}

template <class T>
cudaError_t launch_softmax(void* out_v, const void* in_v, int64_t outer, int64_t size, int64_t inner, bool take_log,
                           cudaStream_t s) {
  auto* out = static_cast<T*>(out_v);
  auto* in = static_cast<const T*>(in_v);
  if (inner == 1) {
    const CachedPlan p = cached_plan<T, false>(size, {out, in});
    if (p.threads > 0) {
      const int64_t blocks = cached_blocks(p, outer);
      if (p.vectorised)
        return launch_blocks(softmax_cached<T, kVec<T>>, blocks, p.threads, 0, s, out, in, outer, size, p.warp_rows,
                             take_log);
      return launch_blocks(softmax_cached<T, 1>, blocks, p.threads, 0, s, out, in, outer, size, p.warp_rows, take_log);
    }
  } else if (use_columns(outer, inner)) {
    return launch(softmax_columns<T>, outer * inner, kThreads, 0, s, out, in, outer, size, inner, take_log);
  }
  return launch_blocks(softmax_rows<T>, outer * inner, row_threads(size), 0, s, out, in, outer, size, inner, take_log);
}

template <class T>
cudaError_t launch_softmax_backward(void* gx_v, const void* gy_v, const void* y_v, int64_t outer, int64_t size,
                                    int64_t inner, bool take_log, cudaStream_t s) {
  auto* gx = static_cast<T*>(gx_v);
  auto* gy = static_cast<const T*>(gy_v);
  auto* y = static_cast<const T*>(y_v);
  if (inner == 1) {
    const CachedPlan p = cached_plan<T, true>(size, {gx, gy, y});
    if (p.threads > 0) {
      const int64_t blocks = cached_blocks(p, outer);
      if (p.vectorised)
        return launch_blocks(softmax_backward_cached<T, kVec<T>>, blocks, p.threads, 0, s, gx, gy, y, outer, size,
                             p.warp_rows, take_log);
      return launch_blocks(softmax_backward_cached<T, 1>, blocks, p.threads, 0, s, gx, gy, y, outer, size,
                           p.warp_rows, take_log);
    }
  } else if (use_columns(outer, inner)) {
    return launch(softmax_backward_columns<T>, outer * inner, kThreads, 0, s, gx, gy, y, outer, size, inner,
                  take_log);
  }
  return launch_blocks(softmax_backward_rows<T>, outer * inner, row_threads(size), 0, s, gx, gy, y, outer, size,
                       inner, take_log);
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
  return by_type(t, [&]<class T>() { return launch_softmax<T>(out, in, outer, size, inner, log, stream); });
}

cudaError_t softmax_backward(FloatType t, void* gx, const void* gy, const void* y, int64_t outer, int64_t size,
                             int64_t inner, bool log, cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  return by_type(t,
                 [&]<class T>() { return launch_softmax_backward<T>(gx, gy, y, outer, size, inner, log, stream); });
}

}  // namespace ember::cuda_backend::kernels
