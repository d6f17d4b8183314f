// Fused optimizer updates: one elementwise pass per parameter, in the same order of operations
// as the CPU loops in src/optim (which follow torch.optim's single-tensor path).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

// The Adam update of element k (shared by the host-corrected and the guarded kernels).
template <class T>
__device__ __forceinline__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                                            T* __restrict__ v, int64_t k, T one_minus_b1, T b2, T one_minus_b2,
                                            T eps, T bc2, T step_size, T decay, T wd, bool decoupled) {
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

template <class T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v, int64_t n,
                            T one_minus_b1, T b2, T one_minus_b2, T eps, T bc2, T step_size, T decay, T wd,
                            bool decoupled) {
  for (int64_t k = global_thread(); k < n; k += grid_threads())
    adam_update(p, g, m, v, k, one_minus_b1, b2, one_minus_b2, eps, bc2, step_size, decay, wd, decoupled);
}

// Guarded by a device flag: nothing happens when *skip; the bias corrections come from the
// device step count (*step + 1, the value the count will hold after this step), in double as
// on the host (src/optim/adam.cpp); the count itself is incremented by adam_count_kernel,
// launched after this one, so no block can see an incremented count.
template <class T>
__global__ void adam_guarded_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                                    int64_t n, const double* __restrict__ step, const bool* __restrict__ skip,
                                    double lr, double beta1, double beta2, T one_minus_b1, T b2, T one_minus_b2, T eps,
                                    T decay, T wd, bool decoupled) {
  if (*skip) return;
  const double t = *step + 1.0;
  const double bc1 = 1.0 - pow(beta1, t);
  const T bc2 = T(sqrt(1.0 - pow(beta2, t)));
  const T step_size = T(lr / bc1);
  for (int64_t k = global_thread(); k < n; k += grid_threads())
    adam_update(p, g, m, v, k, one_minus_b1, b2, one_minus_b2, eps, bc2, step_size, decay, wd, decoupled);
}

__global__ void adam_count_kernel(double* __restrict__ step, const bool* __restrict__ skip) {
  if (!*skip) *step += 1.0;
}

template <class T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr, T mom,
                           T one_minus_damp, T wd, bool nesterov, bool first, const bool* __restrict__ skip) {
  if (skip && *skip) return;  // a non-finite step (optim::StepGuard): leave p and buf as they are
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
cudaError_t launch_adam_guarded(void* p, const void* g, void* m, void* v, int64_t n, double* step, const bool* skip,
                                const AdamParams& h, cudaStream_t s) {
  const cudaError_t e =
      launch(adam_guarded_kernel<T>, n, kThreads, 0, s, static_cast<T*>(p), static_cast<const T*>(g),
             static_cast<T*>(m), static_cast<T*>(v), n, static_cast<const double*>(step), skip, h.lr, h.beta1, h.beta2,
             T(1.0 - h.beta1), T(h.beta2), T(1.0 - h.beta2), T(h.eps), T(1.0 - h.lr * h.weight_decay),
             T(h.weight_decay), h.decoupled);
  if (e != cudaSuccess) return e;
  return launch_blocks(adam_count_kernel, 1, 1, 0, s, step, skip);
}

template <class T>
cudaError_t launch_sgd(void* p, const void* g, void* buf, int64_t n, const bool* skip, const SgdParams& h,
                       cudaStream_t s) {
  return launch(sgd_kernel<T>, n, kThreads, 0, s, static_cast<T*>(p), static_cast<const T*>(g), static_cast<T*>(buf), n,
                T(h.lr), T(h.momentum), T(1.0 - h.dampening), T(h.weight_decay), h.nesterov, h.first, skip);
}

}  // namespace

cudaError_t adam_step(bool is_f64, void* p, const void* g, void* m, void* v, int64_t n, const AdamParams& hp,
                      cudaStream_t stream) {
  return is_f64 ? launch_adam<double>(p, g, m, v, n, hp, stream) : launch_adam<float>(p, g, m, v, n, hp, stream);
}

cudaError_t adam_step_guarded(bool is_f64, void* p, const void* g, void* m, void* v, int64_t n, double* step,
                              const bool* skip, const AdamParams& hp, cudaStream_t stream) {
  return is_f64 ? launch_adam_guarded<double>(p, g, m, v, n, step, skip, hp, stream)
                : launch_adam_guarded<float>(p, g, m, v, n, step, skip, hp, stream);
}

cudaError_t sgd_step(bool is_f64, void* p, const void* g, void* buf, int64_t n, const bool* skip,
                     const SgdParams& hp, cudaStream_t stream) {
  return is_f64 ? launch_sgd<double>(p, g, buf, n, skip, hp, stream)
                : launch_sgd<float>(p, g, buf, n, skip, hp, stream);
}

}  // namespace ember::cuda_backend::kernels
