// Fused optimizer updates: one elementwise pass per parameter, in the same order of operations
// as the CPU loops in src/optim (which follow torch.optim's single-tensor path).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v, int64_t n,
                            T one_minus_b1, T b2, T one_minus_b2, T eps, T bc2, T step_size, T decay, T wd,
                            bool decoupled) {
  for (int64_t k = global_thread(); k < n; k += grid_threads()) {
    T grad = g[k], pk = p[k];
    if (decoupled) {
      pk *= decay;
    } else if (wd != T(0)) {
      grad += wd * pk;
    }
    T mk = m[k], vk = v[k];
    mk += (grad - mk) * one_minus_b1;  // lerp(m, g, 1 − β1)
    vk = vk * b2 + one_minus_b2 * grad * grad;
    const T denom = sqrt(vk) / bc2 + eps;
    p[k] = pk - step_size * (mk / denom);
    m[k] = mk;
    v[k] = vk;
  }
}

template <class T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr, T mom,
                           T one_minus_damp, T wd, bool nesterov, bool first) {
  for (int64_t k = global_thread(); k < n; k += grid_threads()) {
    T d = g[k];
    if (wd != T(0)) d += wd * p[k];
    if (buf) {
      const T b = first ? d : mom * buf[k] + one_minus_damp * d;
      buf[k] = b;
      d = nesterov ? d + mom * b : b;
    }
    p[k] -= lr * d;
  }
}

template <class T>
cudaError_t launch_adam(void* p, const void* g, void* m, void* v, int64_t n, const AdamParams& h, cudaStream_t s) {
  return launch(adam_kernel<T>, n, kThreads, 0, s, static_cast<T*>(p), static_cast<const T*>(g), static_cast<T*>(m),
                static_cast<T*>(v), n, T(1.0 - h.beta1), T(h.beta2), T(1.0 - h.beta2), T(h.eps),
                T(h.bias_correction2_sqrt), T(h.step_size), T(1.0 - h.lr * h.weight_decay), T(h.weight_decay),
                h.decoupled);
}

template <class T>
cudaError_t launch_sgd(void* p, const void* g, void* buf, int64_t n, const SgdParams& h, cudaStream_t s) {
  return launch(sgd_kernel<T>, n, kThreads, 0, s, static_cast<T*>(p), static_cast<const T*>(g), static_cast<T*>(buf), n,
                T(h.lr), T(h.momentum), T(1.0 - h.dampening), T(h.weight_decay), h.nesterov, h.first);
}

}  // namespace

cudaError_t adam_step(bool is_f64, void* p, const void* g, void* m, void* v, int64_t n, const AdamParams& hp,
                      cudaStream_t stream) {
  return is_f64 ? launch_adam<double>(p, g, m, v, n, hp, stream) : launch_adam<float>(p, g, m, v, n, hp, stream);
}

cudaError_t sgd_step(bool is_f64, void* p, const void* g, void* buf, int64_t n, const SgdParams& hp,
                     cudaStream_t stream) {
  return is_f64 ? launch_sgd<double>(p, g, buf, n, hp, stream) : launch_sgd<float>(p, g, buf, n, hp, stream);
}

}  // namespace ember::cuda_backend::kernels
