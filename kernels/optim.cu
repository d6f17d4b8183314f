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

// The SGD update of element k (shared by the per-tensor and the multi-tensor kernels).
template <class T>
__device__ __forceinline__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t k,
                                           T lr, T mom, T one_minus_damp, T wd, bool nesterov, bool first) {
  T d = g[k];
  if (wd != T(0)) d += wd * p[k];
  if (buf) {
    const T b = first ? d : mom * buf[k] + one_minus_damp * d;
    buf[k] = b;
    d = nesterov ? d + mom * b : b;
  }
  p[k] -= lr * d;
}

template <class T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr, T mom,
                           T one_minus_damp, T wd, bool nesterov, bool first, const bool* __restrict__ skip) {
  if (skip && *skip) return;  // a non-finite step (optim::StepGuard): leave p and buf as they are
  for (int64_t k = global_thread(); k < n; k += grid_threads())
    sgd_update(p, g, buf, k, lr, mom, one_minus_damp, wd, nesterov, first);
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

// ------------------------------------------------------------------ multi-tensor kernels
// Block b (grid-stride over all chunks) finds its tensor t in the list's chunk prefix sums and
// handles elements [c·chunk, min(n, (c + 1)·chunk)) of it, c = b − chunk_start[t]. The per-
// element arithmetic is exactly that of the per-tensor kernels above (same helper, same T-typed
// constants), so results are bit-identical to one launch per tensor.
__device__ __forceinline__ int tensor_of_chunk(const MultiTensorList& l, int32_t b) {
  int t = 0;
  while (t + 1 < l.count && l.chunk_start[t + 1] <= b) ++t;
  return t;
}

template <class F>
__device__ __forceinline__ void for_each_chunk(const MultiTensorList& l, F&& f) {
  const int32_t total = l.chunk_start[l.count];
  for (int32_t b = blockIdx.x; b < total; b += gridDim.x) {
    const int t = tensor_of_chunk(l, b);
    const int64_t begin = int64_t{b - l.chunk_start[t]} * kMultiTensorChunk;
    const int64_t end = min(l.numel[t], begin + kMultiTensorChunk);
    f(t, b, begin, end);
  }
}

template <class T>
__global__ void multi_adam_kernel(const __grid_constant__ MultiTensorList l, T one_minus_b1, T b2, T one_minus_b2,
                                  T eps, T decay, T wd, bool decoupled) {
  for_each_chunk(l, [&](int t, int32_t, int64_t begin, int64_t end) {
    T* p = static_cast<T*>(l.ptr[0][t]);
    const T* g = static_cast<const T*>(l.ptr[1][t]);
    T* m = static_cast<T*>(l.ptr[2][t]);
    T* v = static_cast<T*>(l.ptr[3][t]);
    const T bc2 = T(l.scalar[0][t]), step_size = T(l.scalar[1][t]);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x)
      adam_update(p, g, m, v, k, one_minus_b1, b2, one_minus_b2, eps, bc2, step_size, decay, wd, decoupled);
  });
}

template <class T>
__global__ void multi_adam_guarded_kernel(const __grid_constant__ MultiTensorList l, const bool* __restrict__ skip,
                                          double lr, double beta1, double beta2, T one_minus_b1, T b2,
                                          T one_minus_b2, T eps, T decay, T wd, bool decoupled) {
  if (*skip) return;
  for_each_chunk(l, [&](int t, int32_t, int64_t begin, int64_t end) {
    const double st = *l.step[t] + 1.0;
    const double bc1 = 1.0 - pow(beta1, st);
    const T bc2 = T(sqrt(1.0 - pow(beta2, st)));
    const T step_size = T(lr / bc1);
    T* p = static_cast<T*>(l.ptr[0][t]);
    const T* g = static_cast<const T*>(l.ptr[1][t]);
    T* m = static_cast<T*>(l.ptr[2][t]);
    T* v = static_cast<T*>(l.ptr[3][t]);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x)
      adam_update(p, g, m, v, k, one_minus_b1, b2, one_minus_b2, eps, bc2, step_size, decay, wd, decoupled);
  });
}

__global__ void multi_adam_count_kernel(const __grid_constant__ MultiTensorList l, const bool* __restrict__ skip) {
  if (*skip) return;
  for (int t = threadIdx.x; t < l.count; t += blockDim.x) *l.step[t] += 1.0;
}

template <class T>
__global__ void multi_sgd_kernel(const __grid_constant__ MultiTensorList l, T lr, T mom, T one_minus_damp, T wd,
                                 bool nesterov, const bool* __restrict__ skip) {
  if (skip && *skip) return;
  for_each_chunk(l, [&](int t, int32_t b, int64_t begin, int64_t end) {
    T* p = static_cast<T*>(l.ptr[0][t]);
    const T* g = static_cast<const T*>(l.ptr[1][t]);
    T* buf = static_cast<T*>(l.ptr[2][t]);
    bool first = l.flag[t];
    if (bool* started = static_cast<bool*>(l.ptr[3][t])) {
      // Whether the buffer holds a value is known only here (an earlier guarded first step may
      // have been skipped): read this chunk's flag, then mark it (every thread of the block has
      // read it after the barrier; no other block touches this chunk).
      bool* mine = started + (b - l.chunk_start[t]);
      first = !*mine;
      __syncthreads();
      if (threadIdx.x == 0) *mine = true;
    }
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x)
      sgd_update(p, g, buf, k, lr, mom, one_minus_damp, wd, nesterov, first);
  });
}

template <class T>
__global__ void multi_norm_kernel(const __grid_constant__ MultiTensorList l, bool inf_norm,
                                  double* __restrict__ partials) {
  __shared__ double red[32];
  for_each_chunk(l, [&](int t, int32_t b, int64_t begin, int64_t end) {
    const T* g = static_cast<const T*>(l.ptr[0][t]);
    double acc = 0.0;
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
      const double x = static_cast<double>(g[k]);
      acc = inf_norm ? nan_max(acc, fabs(x)) : acc + x * x;
    }
    acc = block_reduce(acc, inf_norm, red);
    if (threadIdx.x == 0) partials[b] = acc;
  });
}

template <class T>
__global__ void clip_finalize_kernel(const double* __restrict__ partials, int64_t n, bool inf_norm, double max_norm,
                                     T* __restrict__ total, T* __restrict__ coef) {
  __shared__ double red[32];
  // Each thread folds a fixed strided subset, then a fixed tree: the same order every run.
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc = inf_norm ? nan_max(acc, partials[i]) : acc + partials[i];
  acc = block_reduce(acc, inf_norm, red);
  if (threadIdx.x == 0) {
    const T tot = T(inf_norm ? acc : sqrt(acc));
    // As the composed path: full(max_norm) / (total + 1e-6) in the gradients' dtype, then
    // clamp(max = 1) keeping NaN.
    const T c = T(max_norm) / (tot + T(1e-6));
    *total = tot;
    *coef = c > T(1) ? T(1) : c;
  }
}

template <class T>
__global__ void multi_scale_kernel(const __grid_constant__ MultiTensorList l, const T* __restrict__ coef) {
  const T c = *coef;
  for_each_chunk(l, [&](int t, int32_t, int64_t begin, int64_t end) {
    T* g = static_cast<T*>(l.ptr[0][t]);
    for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) g[k] *= c;
  });
}

int64_t list_chunks(const MultiTensorList& l) { return l.chunk_start[l.count]; }

template <class T>
cudaError_t launch_multi_adam(const MultiTensorList& l, const bool* skip, const AdamParams& h, cudaStream_t s) {
  const T one_minus_b1 = T(1.0 - h.beta1), b2 = T(h.beta2), one_minus_b2 = T(1.0 - h.beta2), eps = T(h.eps),
          decay = T(1.0 - h.lr * h.weight_decay), wd = T(h.weight_decay);
  if (!skip)
    return launch_blocks(multi_adam_kernel<T>, list_chunks(l), kThreads, 0, s, l, one_minus_b1, b2, one_minus_b2, eps,
                         decay, wd, h.decoupled);
  const cudaError_t e = launch_blocks(multi_adam_guarded_kernel<T>, list_chunks(l), kThreads, 0, s, l, skip, h.lr,
                                      h.beta1, h.beta2, one_minus_b1, b2, one_minus_b2, eps, decay, wd, h.decoupled);
  if (e != cudaSuccess) return e;
  return launch_blocks(multi_adam_count_kernel, 1, 64, 0, s, l, skip);
}

}  // namespace

cudaError_t multi_adam_step(bool is_f64, const MultiTensorList& list, const bool* skip, const AdamParams& hp,
                            cudaStream_t stream) {
  if (list.count == 0) return cudaSuccess;
  return is_f64 ? launch_multi_adam<double>(list, skip, hp, stream) : launch_multi_adam<float>(list, skip, hp, stream);
}

cudaError_t multi_sgd_step(bool is_f64, const MultiTensorList& list, const bool* skip, const SgdParams& h,
                           cudaStream_t s) {
  if (list.count == 0) return cudaSuccess;
  if (is_f64)
    return launch_blocks(multi_sgd_kernel<double>, list_chunks(list), kThreads, 0, s, list, h.lr, h.momentum,
                         1.0 - h.dampening, h.weight_decay, h.nesterov, skip);
  return launch_blocks(multi_sgd_kernel<float>, list_chunks(list), kThreads, 0, s, list, float(h.lr),
                       float(h.momentum), float(1.0 - h.dampening), float(h.weight_decay), h.nesterov, skip);
}

cudaError_t multi_norm_partials(bool is_f64, const MultiTensorList& list, bool inf_norm, double* partials,
                                int64_t first_partial, cudaStream_t s) {
  if (list.count == 0) return cudaSuccess;
  return is_f64 ? launch_blocks(multi_norm_kernel<double>, list_chunks(list), kThreads, 0, s, list, inf_norm,
                                partials + first_partial)
                : launch_blocks(multi_norm_kernel<float>, list_chunks(list), kThreads, 0, s, list, inf_norm,
                                partials + first_partial);
}

cudaError_t clip_finalize(bool is_f64, const double* partials, int64_t n, bool inf_norm, double max_norm, void* total,
                          void* coef, cudaStream_t s) {
  return is_f64 ? launch_blocks(clip_finalize_kernel<double>, 1, kThreads, 0, s, partials, n, inf_norm, max_norm,
                                static_cast<double*>(total), static_cast<double*>(coef))
                : launch_blocks(clip_finalize_kernel<float>, 1, kThreads, 0, s, partials, n, inf_norm, max_norm,
                                static_cast<float*>(total), static_cast<float*>(coef));
}

cudaError_t multi_scale(bool is_f64, const MultiTensorList& list, const void* coef, cudaStream_t s) {
  if (list.count == 0) return cudaSuccess;
  return is_f64 ? launch_blocks(multi_scale_kernel<double>, list_chunks(list), kThreads, 0, s, list,
                                static_cast<const double*>(coef))
                : launch_blocks(multi_scale_kernel<float>, list_chunks(list), kThreads, 0, s, list,
                                static_cast<const float*>(coef));
}

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
