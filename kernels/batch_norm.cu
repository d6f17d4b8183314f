// Batch norm on contiguous (n, c, s) data: per-channel moments (two passes: the mean, then the
// squared deviations about it, so |mean| >> std loses nothing), the per-channel gradient sums,
// and elementwise passes for the forward affine map and the input gradient. One block per
// channel for the reductions (per-thread partial sums, then a block tree), one thread per
// element for the maps; f32 accumulation (f64 for f64), per-channel values in acc_t<T>.
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kChannelThreads = 512;

// Element j of channel ch in (n, c, s) order: row j / s of the batch, position j % s.
__device__ __forceinline__ int64_t channel_offset(int64_t j, int64_t ch, int64_t c, int64_t s) {
  const int64_t row = j / s;
  return (row * c + ch) * s + (j - row * s);
}

template <class T>
__global__ void moments_kernel(const T* __restrict__ x, int64_t n, int64_t c, int64_t s, double eps,
                               acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ var, acc_t<T>* __restrict__ invstd) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  const int64_t count = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    C acc = 0;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) acc += widen(x[channel_offset(j, ch, c, s)]);
    const C m = block_reduce(acc, false, scratch) / static_cast<C>(count);
    C q = 0;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const C d = widen(x[channel_offset(j, ch, c, s)]) - m;
      q += d * d;
    }
    const C v = block_reduce(q, false, scratch) / static_cast<C>(count);
    if (threadIdx.x == 0) {
      mean[ch] = m;
      var[ch] = v;
      invstd[ch] = C(1) / sqrt(v + static_cast<C>(eps));
    }
  }
}

template <class C>
__global__ void invstd_kernel(const C* __restrict__ var, double eps, int64_t c, C* __restrict__ invstd) {
  for (int64_t i = global_thread(); i < c; i += grid_threads()) invstd[i] = C(1) / sqrt(var[i] + static_cast<C>(eps));
}

// out = x·scale + shift with scale = invstd·w, shift = b − mean·scale (w = 1, b = 0 when absent).
template <class T>
__global__ void apply_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t numel, int64_t c, int64_t s,
                             const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ invstd,
                             const T* __restrict__ weight, const T* __restrict__ bias) {
  using C = acc_t<T>;
  for (int64_t k = global_thread(); k < numel; k += grid_threads()) {
    const int64_t ch = (k / s) % c;
    const C scale = invstd[ch] * (weight ? widen(weight[ch]) : C(1));
    const C shift = (bias ? widen(bias[ch]) : C(0)) - mean[ch] * scale;
    out[k] = narrow<T>(widen(x[k]) * scale + shift);
  }
}

template <class T>
__global__ void grad_sums_kernel(const T* __restrict__ gy, const T* __restrict__ x, int64_t n, int64_t c, int64_t s,
                                 const acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ sum_gy,
                                 acc_t<T>* __restrict__ sum_gy_xmu) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  const int64_t count = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const C m = mean[ch];
    C a1 = 0, a2 = 0;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const int64_t o = channel_offset(j, ch, c, s);
      const C g = widen(gy[o]);
      a1 += g;
      a2 += g * (widen(x[o]) - m);
    }
    a1 = block_reduce(a1, false, scratch);
    a2 = block_reduce(a2, false, scratch);
    if (threadIdx.x == 0) {
      sum_gy[ch] = a1;
      sum_gy_xmu[ch] = a2;
    }
  }
}

// Training: gx = w·invstd·(gy − Σgy/count − (x − μ)·invstd²·Σgy(x − μ)/count).
// Evaluation: gx = w·invstd·gy (the statistics are constants).
template <class T>
__global__ void backward_input_kernel(T* __restrict__ gx, const T* __restrict__ gy, const T* __restrict__ x,
                                      int64_t numel, int64_t c, int64_t s, int64_t count,
                                      const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ invstd,
                                      const T* __restrict__ weight, const acc_t<T>* __restrict__ sum_gy,
                                      const acc_t<T>* __restrict__ sum_gy_xmu, bool training) {
  using C = acc_t<T>;
  for (int64_t k = global_thread(); k < numel; k += grid_threads()) {
    const int64_t ch = (k / s) % c;
    const C is = invstd[ch];
    const C a = (weight ? widen(weight[ch]) : C(1)) * is;
    const C g = widen(gy[k]);
    if (training) {
      const C inv_count = C(1) / static_cast<C>(count);
      const C proj = (widen(x[k]) - mean[ch]) * is * is * sum_gy_xmu[ch] * inv_count;
      gx[k] = narrow<T>(a * (g - sum_gy[ch] * inv_count - proj));
    } else {
      gx[k] = narrow<T>(a * g);
    }
  }
}

}  // namespace

cudaError_t batch_norm_moments(FloatType t, const void* x, int64_t n, int64_t c, int64_t s, double eps, void* mean,
                               void* var, void* invstd, cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return launch_blocks(moments_kernel<T>, c, kChannelThreads, 0, stream, static_cast<const T*>(x), n, c, s, eps,
                         static_cast<C*>(mean), static_cast<C*>(var), static_cast<C*>(invstd));
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
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return launch(apply_kernel<T>, n * c * s, kThreads, 0, stream, static_cast<T*>(out), static_cast<const T*>(x),
                  n * c * s, c, s, static_cast<const C*>(mean), static_cast<const C*>(invstd),
                  static_cast<const T*>(weight), static_cast<const T*>(bias));
  });
}

cudaError_t batch_norm_grad_sums(FloatType t, const void* gy, const void* x, int64_t n, int64_t c, int64_t s,
                                 const void* mean, void* sum_gy, void* sum_gy_xmu, cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return launch_blocks(grad_sums_kernel<T>, c, kChannelThreads, 0, stream, static_cast<const T*>(gy),
                         static_cast<const T*>(x), n, c, s, static_cast<const C*>(mean), static_cast<C*>(sum_gy),
                         static_cast<C*>(sum_gy_xmu));
  });
}

cudaError_t batch_norm_backward_input(FloatType t, void* gx, const void* gy, const void* x, int64_t n, int64_t c,
                                      int64_t s, const void* mean, const void* invstd, const void* weight,
                                      const void* sum_gy, const void* sum_gy_xmu, bool training, cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return launch(backward_input_kernel<T>, n * c * s, kThreads, 0, stream, static_cast<T*>(gx),
                  static_cast<const T*>(gy), static_cast<const T*>(x), n * c * s, c, s, n * s,
                  static_cast<const C*>(mean), static_cast<const C*>(invstd), static_cast<const T*>(weight),
                  static_cast<const C*>(sum_gy), static_cast<const C*>(sum_gy_xmu), training);
  });
}

}  // namespace ember::cuda_backend::kernels
