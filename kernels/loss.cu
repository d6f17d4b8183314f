// Fused cross entropy on the GPU: one block per row of the (m, c) logits; the same terms as the
// CPU kernel (src/cpu/cross_entropy.cpp), so the op layer reduces them with ordinary ops.
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

int row_threads(int64_t size) {
  int t = 32;
  while (t < 1024 && t < size) t *= 2;
  return t;
}

template <class T>
__global__ void ce_forward(const T* __restrict__ x, const int64_t* __restrict__ target, const T* __restrict__ w,
                           int64_t ignore_index, int64_t m, int64_t c, T* __restrict__ lse, T* __restrict__ nll,
                           T* __restrict__ smooth, T* __restrict__ wt) {
  __shared__ T scratch[32];
  for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
    const T* row = x + i * c;
    T mx = -plus_inf<T>();
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) mx = nan_max(mx, row[j]);
    mx = block_reduce(mx, true, scratch);
    T s = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += exp(row[j] - mx);
    s = block_reduce(s, false, scratch);
    const T l = mx + log(s);
    const int64_t t = target[i];  // the same for the whole block: the branches below are uniform
    const bool valid = t != ignore_index && t >= 0 && t < c;
    // Σ_j w_j (lse − x_j) as the CPU sums it: terms ≥ 0, no cancellation (l·Σw − Σ w·x loses
    // the digits of a large logit offset).
    T sm = 0;
    if (valid) {
      for (int64_t j = threadIdx.x; j < c; j += blockDim.x) sm += (w ? w[j] : T(1)) * (l - row[j]);
      sm = block_reduce(sm, false, scratch);
    }
    if (threadIdx.x != 0) continue;
    lse[i] = l;
    if (t == ignore_index) {
      nll[i] = smooth[i] = wt[i] = T(0);
    } else if (!valid) {
      const T nan = T(0) / T(0);
      nll[i] = smooth[i] = wt[i] = nan;
    } else {
      const T wti = w ? w[t] : T(1);
      wt[i] = wti;
      nll[i] = wti * (l - row[t]);
      smooth[i] = sm;
    }
  }
}

template <class T>
__global__ void ce_backward(const T* __restrict__ x, const int64_t* __restrict__ target, const T* __restrict__ w,
                            int64_t ignore_index, T a, T b, int64_t m, int64_t c, const T* __restrict__ lse,
                            const T* __restrict__ scale, T* __restrict__ grad) {
  __shared__ T scratch[32];
  for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
    T sw = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) sw += w ? w[j] : T(1);
    sw = block_reduce(sw, false, scratch);
    const T* row = x + i * c;
    T* gr = grad + i * c;
    const int64_t t = target[i];
    if (t == ignore_index || t < 0 || t >= c) {
      const T fillv = t == ignore_index ? T(0) : T(0) / T(0);
      for (int64_t j = threadIdx.x; j < c; j += blockDim.x) gr[j] = fillv;
      continue;
    }
    // d/dx_j of (1-e)·w_t·(lse − x_t) + (e/C)·Σ_k w_k (lse − x_k) = (1-e)·w_t·(p_j − [j = t]) + (e/C)·(p_j·Σw − w_j)
    const T wt = w ? w[t] : T(1);
    const T coef_p = a * wt + b * sw;
    const T s = scale[i], l = lse[i];
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      const T p = exp(row[j] - l);
      T v = s * (coef_p * p - b * (w ? w[j] : T(1)));
      if (j == t) v -= s * a * wt;
      gr[j] = v;
    }
  }
}

}  // namespace

cudaError_t cross_entropy_forward(bool is_f64, const void* x, const int64_t* target, const void* weight,
                                  int64_t ignore_index, int64_t m, int64_t c, void* lse, void* nll, void* smooth,
                                  void* wt, cudaStream_t stream) {
  const int th = row_threads(c);
  if (is_f64) {
    return launch_blocks(ce_forward<double>, m, th, 0, stream, static_cast<const double*>(x), target,
                         static_cast<const double*>(weight), ignore_index, m, c, static_cast<double*>(lse),
                         static_cast<double*>(nll), static_cast<double*>(smooth), static_cast<double*>(wt));
  }
  return launch_blocks(ce_forward<float>, m, th, 0, stream, static_cast<const float*>(x), target,
                       static_cast<const float*>(weight), ignore_index, m, c, static_cast<float*>(lse),
                       static_cast<float*>(nll), static_cast<float*>(smooth), static_cast<float*>(wt));
}

cudaError_t cross_entropy_backward(bool is_f64, const void* x, const int64_t* target, const void* weight,
                                   int64_t ignore_index, double label_smoothing, int64_t m, int64_t c, const void* lse,
                                   const void* scale, void* grad, cudaStream_t stream) {
  const int th = row_threads(c);
  const double a = 1.0 - label_smoothing, b = label_smoothing / static_cast<double>(c);
  if (is_f64) {
    return launch_blocks(ce_backward<double>, m, th, 0, stream, static_cast<const double*>(x), target,
                         static_cast<const double*>(weight), ignore_index, a, b, m, c, static_cast<const double*>(lse),
                         static_cast<const double*>(scale), static_cast<double*>(grad));
  }
  return launch_blocks(ce_backward<float>, m, th, 0, stream, static_cast<const float*>(x), target,
                       static_cast<const float*>(weight), ignore_index, static_cast<float>(a), static_cast<float>(b), m,
                       c, static_cast<const float*>(lse), static_cast<const float*>(scale), static_cast<float*>(grad));
}

}  // namespace ember::cuda_backend::kernels
