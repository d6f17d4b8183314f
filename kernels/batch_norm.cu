// Batch norm on contiguous (n, c, s) data: per-channel moments (two passes: the mean, then the
// squared deviations about it, so |mean| >> std loses nothing), the per-channel gradient sums,
// and elementwise passes for the forward affine map and the input gradient.
//
// Reductions: each channel's n·s elements are cut into `splits` chunks (stat_splits: about
// kTargetBlocks blocks in all, at least kMinChunk elements each), so a layer with few channels
// and a large N·H·W fills the device. A block sums its chunk (per-thread accumulators in
// acc_t<T>, as the CPU sums a row in its compute type, then a block tree in double) into one
// double partial; a second small kernel adds a channel's partials in a fixed order (one warp per
// channel), as the CPU adds its rows in double. No atomics: the results are deterministic. The
// second moment pass derives the mean from the first pass's partials itself (every block of a
// channel adds them in the same order, so all see the same mean).
//
// Elements are walked as units of V elements along s (16- or 8-byte vectors when s % V == 0
// and every pointer is aligned, else single elements) with a plane cursor: one division per
// thread, then additions (no per-element 64-bit division).
#include <algorithm>
#include <initializer_list>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kStatThreads = 256;
// About 8 resident blocks of kStatThreads on each of an H100's 132 SMs.
constexpr int64_t kTargetBlocks = 1024;
// Elements per chunk at least (16 per thread), so that short channels are not cut up for nothing.
constexpr int64_t kMinChunk = 4096;
constexpr int64_t kMaxSplits = 1024;

/// Chunks per channel for the reductions over n·s elements of each of c channels.
int64_t stat_splits(int64_t n, int64_t c, int64_t s) {
  const int64_t count = n * s;
  if (c <= 0 || count <= 0) return 1;
  const int64_t by_blocks = (kTargetBlocks + c - 1) / c;
  const int64_t by_work = (count + kMinChunk - 1) / kMinChunk;
  return std::clamp<int64_t>(std::min(by_blocks, by_work), 1, kMaxSplits);
}

/// The vector width for rows of s elements at the given addresses: kVec<T> (16 bytes) or
/// kVec<T> / 2 when s is a multiple and every pointer is aligned to the vector, else 1.
template <class T>
int vec_width(int64_t s, std::initializer_list<const void*> ptrs) {
  for (int v = kVec<T>; v >= 2 && v >= kVec<T> / 2; v /= 2) {
    bool ok = s % v == 0;
    for (const void* p : ptrs) ok = ok && (p == nullptr || reinterpret_cast<uintptr_t>(p) % (sizeof(T) * v) == 0);
    if (ok) return v;
  }
  return 1;
}

/// Runs f.template operator()<V>() for a width vec_width returned.
template <class T, class F>
cudaError_t with_width(int v, F&& f) {
  constexpr int kFull = kVec<T>, kHalf = kVec<T> / 2;
  if (v == kFull) return f.template operator()<kFull>();
  if constexpr (kHalf > 1) {
    if (v == kHalf) return f.template operator()<kHalf>();
  }
  return f.template operator()<1>();
}

enum class Pass { sum, sq_dev, grad };

/// Calls f(offset) for the units [begin, end) of channel ch (unit j: plane row j / su,
/// position j % su; offset in units of the (n, c, su) tensor), thread t taking begin + t,
/// begin + t + blockDim.x, ...: one division per thread, then a plane cursor.
template <class F>
__device__ __forceinline__ void for_channel_units(int64_t begin, int64_t end, int64_t ch, int64_t c, int64_t su,
                                                  F&& f) {
  int64_t j = begin + threadIdx.x;
  if (j >= end) return;
  int64_t row = j / su, pos = j - row * su;
  const int64_t step = blockDim.x, drow = step / su, dpos = step - drow * su;
  for (; j < end; j += step) {
    f((row * c + ch) * su + pos);
    pos += dpos;
    row += drow;
    if (pos >= su) {
      pos -= su;
      ++row;
    }
  }
}

/// Partial sums of one chunk per block (block b: channel b / splits, chunk b % splits) into
/// part0[b] (and part1[b]): Pass::sum Σx; Pass::sq_dev Σ(x − m)² with m the mean derived from
/// `sums` (the sum pass's partials, count elements per channel), which chunk 0's block also
/// stores in mean_out; Pass::grad Σgy and Σgy·(x − mean_in).
template <class T, int V, Pass P>
__global__ void __launch_bounds__(kStatThreads)
    channel_partials(const T* __restrict__ x, const T* __restrict__ gy, int64_t n, int64_t c, int64_t su,
                     int64_t splits, int64_t count, const double* __restrict__ sums,
                     const acc_t<T>* __restrict__ mean_in, acc_t<T>* __restrict__ mean_out, double* __restrict__ part0,
                     double* __restrict__ part1) {
  using C = acc_t<T>;
  __shared__ double scratch[32];
  const int64_t units = n * su, per = (units + splits - 1) / splits;
  const auto* xv = reinterpret_cast<const Vec<T, V>*>(x);
  const auto* gv = reinterpret_cast<const Vec<T, V>*>(gy);
  for (int64_t b = blockIdx.x; b < c * splits; b += gridDim.x) {  // uniform over the block
    const int64_t ch = b / splits, k = b - ch * splits;
    const int64_t begin = k * per, end = min(units, begin + per);
    C m = 0;
    if constexpr (P == Pass::sq_dev) {
      double t = 0;
      for (int64_t i = threadIdx.x; i < splits; i += blockDim.x) t += sums[ch * splits + i];
      m = static_cast<C>(block_reduce(t, false, scratch) / static_cast<double>(count));
      if (k == 0 && threadIdx.x == 0) mean_out[ch] = m;
    } else if constexpr (P == Pass::grad) {
      m = mean_in[ch];
    }
    C a0 = 0, a1 = 0;
    for_channel_units(begin, end, ch, c, su, [&](int64_t o) {
      const Vec<T, V> xs = xv[o];
      if constexpr (P == Pass::grad) {
        const Vec<T, V> gs = gv[o];
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const C g = widen(gs.v[e]);
          a0 += g;
          a1 += g * (widen(xs.v[e]) - m);
        }
      } else if constexpr (P == Pass::sq_dev) {
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const C d = widen(xs.v[e]) - m;
          a0 += d * d;
        }
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) a0 += widen(xs.v[e]);
      }
    });
    const double r0 = block_reduce(static_cast<double>(a0), false, scratch);
    if constexpr (P == Pass::grad) {
      const double r1 = block_reduce(static_cast<double>(a1), false, scratch);
      if (threadIdx.x == 0) part1[b] = r1;
    }
    if (threadIdx.x == 0) part0[b] = r0;
  }
}

/// The `count` partials at p added in a fixed order by the 32 lanes of a warp (lane l takes
/// l, l + 32, ...; then the shuffle tree); every lane gets the sum.
__device__ __forceinline__ double warp_sum(const double* __restrict__ p, int64_t count) {
  double t = 0;
  for (int64_t i = threadIdx.x % 32; i < count; i += 32) t += p[i];
  return warp_reduce(t, false);
}

/// One warp per channel: var = Σ m2 partials / count, invstd = 1 / sqrt(var + eps) (in double,
/// as the CPU).
template <class C>
__global__ void moments_finish(const double* __restrict__ m2, int64_t c, int64_t splits, int64_t count, double eps,
                               C* __restrict__ var, C* __restrict__ invstd) {
  for (int64_t ch = global_thread() / 32; ch < c; ch += grid_threads() / 32) {  // uniform over the warp
    const double v = warp_sum(m2 + ch * splits, splits) / static_cast<double>(count);
    if (threadIdx.x % 32 == 0) {
      var[ch] = static_cast<C>(v);
      invstd[ch] = static_cast<C>(1.0 / sqrt(v + eps));
    }
  }
}

/// One warp per channel: the gradient sums from their partials.
template <class C>
__global__ void grad_sums_finish(const double* __restrict__ p0, const double* __restrict__ p1, int64_t c,
                                 int64_t splits, C* __restrict__ sum_gy, C* __restrict__ sum_gy_xmu) {
  for (int64_t ch = global_thread() / 32; ch < c; ch += grid_threads() / 32) {
    const double a = warp_sum(p0 + ch * splits, splits), b = warp_sum(p1 + ch * splits, splits);
    if (threadIdx.x % 32 == 0) {
      sum_gy[ch] = static_cast<C>(a);
      sum_gy_xmu[ch] = static_cast<C>(b);
    }
  }
}

template <class C>
__global__ void invstd_kernel(const C* __restrict__ var, double eps, int64_t c, C* __restrict__ invstd) {
  for (int64_t i = global_thread(); i < c; i += grid_threads()) invstd[i] = C(1) / sqrt(var[i] + static_cast<C>(eps));
}

/// The channel of units k, k + stride, ... of a contiguous (n, c, su) tensor of units, kept by
/// additions after one pair of divisions (I: uint32_t when the unit count is below 2^31).
template <class I>
struct UnitChannel {
  I pos, ch, dpos, dch;
  __device__ __forceinline__ UnitChannel(I k, I stride, I su, I c) {
    const I plane = k / su, dplane = stride / su;
    pos = k - plane * su;
    ch = plane % c;
    dpos = stride - dplane * su;
    dch = dplane % c;
  }
  __device__ __forceinline__ void next(I su, I c) {
    pos += dpos;  // < 2·su
    I carry = 0;
    if (pos >= su) {
      pos -= su;
      carry = 1;
    }
    ch += dch + carry;  // < 2·c
    if (ch >= c) ch -= c;
  }
};

// out = x·scale + shift with scale = invstd·w, shift = b − mean·scale (w = 1, b = 0 when absent).
template <class T, int V, class I>
__global__ void apply_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t units, I c, I su,
                             const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ invstd,
                             const T* __restrict__ weight, const T* __restrict__ bias) {
  using C = acc_t<T>;
  const int64_t stride = grid_threads();
  int64_t k = global_thread();
  if (k >= units) return;
  UnitChannel<I> u(static_cast<I>(k), static_cast<I>(stride), su, c);
  const auto* xv = reinterpret_cast<const Vec<T, V>*>(x);
  auto* ov = reinterpret_cast<Vec<T, V>*>(out);
  for (; k < units; k += stride, u.next(su, c)) {
    const I ch = u.ch;
    const C scale = invstd[ch] * (weight ? widen(weight[ch]) : C(1));
    const C shift = (bias ? widen(bias[ch]) : C(0)) - mean[ch] * scale;
    const Vec<T, V> xs = xv[k];
    Vec<T, V> r;
#pragma unroll
    for (int e = 0; e < V; ++e) r.v[e] = narrow<T>(widen(xs.v[e]) * scale + shift);
    ov[k] = r;
  }
}

// Training: gx = w·invstd·(gy − Σgy/count − (x − μ)·invstd²·Σgy(x − μ)/count).
// Evaluation: gx = w·invstd·gy (the statistics are constants).
template <class T, int V, class I>
__global__ void backward_input_kernel(T* __restrict__ gx, const T* __restrict__ gy, const T* __restrict__ x,
                                      int64_t units, I c, I su, int64_t count, const acc_t<T>* __restrict__ mean,
                                      const acc_t<T>* __restrict__ invstd, const T* __restrict__ weight,
                                      const acc_t<T>* __restrict__ sum_gy, const acc_t<T>* __restrict__ sum_gy_xmu,
                                      bool training) {
  using C = acc_t<T>;
  const int64_t stride = grid_threads();
  int64_t k = global_thread();
  if (k >= units) return;
  UnitChannel<I> u(static_cast<I>(k), static_cast<I>(stride), su, c);
  const auto* gv = reinterpret_cast<const Vec<T, V>*>(gy);
  const auto* xv = reinterpret_cast<const Vec<T, V>*>(x);
  auto* ov = reinterpret_cast<Vec<T, V>*>(gx);
  const C inv_count = C(1) / static_cast<C>(count);
  for (; k < units; k += stride, u.next(su, c)) {
    const I ch = u.ch;
    const C is = invstd[ch];
    const C a = (weight ? widen(weight[ch]) : C(1)) * is;
    const Vec<T, V> gs = gv[k];
    Vec<T, V> r;
    if (training) {
      const Vec<T, V> xs = xv[k];
      const C m = mean[ch], sg = sum_gy[ch] * inv_count, kp = is * is * sum_gy_xmu[ch] * inv_count;
#pragma unroll
      for (int e = 0; e < V; ++e) r.v[e] = narrow<T>(a * (widen(gs.v[e]) - sg - (widen(xs.v[e]) - m) * kp));
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) r.v[e] = narrow<T>(a * widen(gs.v[e]));
    }
    ov[k] = r;
  }
}

/// Runs f.template operator()<I>() with I = uint32_t when `units` (and so every unit index,
/// plane size and channel count) is below 2^31 (UnitChannel adds two of them), else int64_t.
template <class F>
cudaError_t with_index(int64_t units, F&& f) {
  if (units <= INT32_MAX) return f.template operator()<uint32_t>();
  return f.template operator()<int64_t>();
}

}  // namespace

int64_t batch_norm_workspace_bytes(int64_t n, int64_t c, int64_t s) {
  return 2 * std::max<int64_t>(c, 0) * stat_splits(n, c, s) * static_cast<int64_t>(sizeof(double));
}

cudaError_t batch_norm_moments(FloatType t, const void* x, int64_t n, int64_t c, int64_t s, double eps, void* mean,
                               void* var, void* invstd, void* workspace, cudaStream_t stream) {
  if (c <= 0 || n * s <= 0) return cudaSuccess;
  if (workspace == nullptr) return cudaErrorInvalidValue;
  const int64_t splits = stat_splits(n, c, s);
  auto* sums = static_cast<double*>(workspace);
  double* m2 = sums + c * splits;
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    auto* xp = static_cast<const T*>(x);
    const cudaError_t st = with_width<T>(vec_width<T>(s, {x}), [&]<int V>() {
      const int64_t su = s / V;
      const cudaError_t e =
          launch_blocks(channel_partials<T, V, Pass::sum>, c * splits, kStatThreads, 0, stream, xp, nullptr, n, c, su,
                        splits, n * s, nullptr, nullptr, nullptr, sums, nullptr);
      if (e != cudaSuccess) return e;
      return launch_blocks(channel_partials<T, V, Pass::sq_dev>, c * splits, kStatThreads, 0, stream, xp, nullptr, n,
                           c, su, splits, n * s, sums, nullptr, static_cast<C*>(mean), m2, nullptr);
    });
    if (st != cudaSuccess) return st;
    return launch(moments_finish<C>, c * 32, kThreads, 0, stream, m2, c, splits, n * s, eps, static_cast<C*>(var),
                  static_cast<C*>(invstd));
  });
}

cudaError_t batch_norm_invstd(bool is_f64, const void* var, double eps, int64_t c, void* invstd, cudaStream_t stream) {
  if (is_f64)
    return launch(invstd_kernel<double>, c, kThreads, 0, stream, static_cast<const double*>(var), eps, c,
                  static_cast<double*>(invstd));
  return launch(invstd_kernel<float>, c, kThreads, 0, stream, static_cast<const float*>(var), eps, c,
                static_cast<float*>(invstd));
}

cudaError_t batch_norm_apply(FloatType t, void* out, const void* x, int64_t n, int64_t c, int64_t s, const void* mean,
                             const void* invstd, const void* weight, const void* bias, cudaStream_t stream) {
  if (n * c * s <= 0) return cudaSuccess;
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return with_width<T>(vec_width<T>(s, {out, x}), [&]<int V>() {
      const int64_t units = n * c * s / V;
      return with_index(units, [&]<class I>() {
        return launch(apply_kernel<T, V, I>, units, kThreads, 0, stream, static_cast<T*>(out),
                      static_cast<const T*>(x), units, static_cast<I>(c), static_cast<I>(s / V),
                      static_cast<const C*>(mean), static_cast<const C*>(invstd), static_cast<const T*>(weight),
                      static_cast<const T*>(bias));
      });
    });
  });
}

cudaError_t batch_norm_grad_sums(FloatType t, const void* gy, const void* x, int64_t n, int64_t c, int64_t s,
                                 const void* mean, void* sum_gy, void* sum_gy_xmu, void* workspace,
                                 cudaStream_t stream) {
  if (c <= 0 || n * s <= 0) return cudaSuccess;
  if (workspace == nullptr) return cudaErrorInvalidValue;
  const int64_t splits = stat_splits(n, c, s);
  auto* p0 = static_cast<double*>(workspace);
  double* p1 = p0 + c * splits;
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    const cudaError_t st = with_width<T>(vec_width<T>(s, {gy, x}), [&]<int V>() {
      return launch_blocks(channel_partials<T, V, Pass::grad>, c * splits, kStatThreads, 0, stream,
                           static_cast<const T*>(x), static_cast<const T*>(gy), n, c, s / V, splits, n * s, nullptr,
                           static_cast<const C*>(mean), nullptr, p0, p1);
    });
    if (st != cudaSuccess) return st;
    return launch(grad_sums_finish<C>, c * 32, kThreads, 0, stream, p0, p1, c, splits, static_cast<C*>(sum_gy),
                  static_cast<C*>(sum_gy_xmu));
  });
}

cudaError_t batch_norm_backward_input(FloatType t, void* gx, const void* gy, const void* x, int64_t n, int64_t c,
                                      int64_t s, const void* mean, const void* invstd, const void* weight,
                                      const void* sum_gy, const void* sum_gy_xmu, bool training, cudaStream_t stream) {
  if (n * c * s <= 0) return cudaSuccess;
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return with_width<T>(vec_width<T>(s, {gx, gy, training ? x : nullptr}), [&]<int V>() {
      const int64_t units = n * c * s / V;
      return with_index(units, [&]<class I>() {
        return launch(backward_input_kernel<T, V, I>, units, kThreads, 0, stream, static_cast<T*>(gx),
                      static_cast<const T*>(gy), static_cast<const T*>(x), units, static_cast<I>(c),
                      static_cast<I>(s / V), n * s, static_cast<const C*>(mean), static_cast<const C*>(invstd),
                      static_cast<const T*>(weight), static_cast<const C*>(sum_gy),
                      static_cast<const C*>(sum_gy_xmu), training);
      });
    });
  });
}

}  // namespace ember::cuda_backend::kernels
