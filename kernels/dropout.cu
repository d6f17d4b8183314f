// Dropout with the CPU's Philox stream (src/ops/random.cpp, "one word per element"): element i
// uses word i % 4 of Philox(seed, offset + i / 4) and is kept when Philox::uniform(word) >= p,
// so the same (seed, offset) gives the same mask bit for bit on both devices. One thread per
// Philox counter (four elements).
#include "common.cuh"
#include "cuda/kernels.hpp"
#include "ember/core/generator.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class T>
__global__ void dropout_kernel(T* __restrict__ out, T* __restrict__ mask, const T* __restrict__ x, int64_t n,
                               uint64_t seed, uint64_t offset, double p, acc_t<T> scale) {
  const int64_t counters = (n + 3) / 4;
  const T kept = narrow<T>(scale), dropped = narrow<T>(acc_t<T>(0));
  for (int64_t c = global_thread(); c < counters; c += grid_threads()) {
    uint32_t w[4];
    Philox::generate(seed, offset + static_cast<uint64_t>(c), 0, w);
    const int64_t base = 4 * c;
    const int64_t m = min(int64_t{4}, n - base);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t i = base + k;
      const bool keep = static_cast<double>(Philox::uniform(w[k])) >= p;
      mask[i] = keep ? kept : dropped;
      out[i] = keep ? narrow<T>(widen(x[i]) * scale) : dropped;
    }
  }
}

}  // namespace

cudaError_t dropout(FloatType t, void* out, void* mask, const void* x, int64_t n, uint64_t seed, uint64_t offset,
                    double p, cudaStream_t stream) {
  const double scale = 1.0 / (1.0 - p);
  const int64_t counters = (n + 3) / 4;
  switch (t) {
    case FloatType::f32:
      return launch(dropout_kernel<float>, counters, kThreads, 0, stream, static_cast<float*>(out),
                    static_cast<float*>(mask), static_cast<const float*>(x), n, seed, offset, p,
                    static_cast<float>(scale));
    case FloatType::f64:
      return launch(dropout_kernel<double>, counters, kThreads, 0, stream, static_cast<double*>(out),
                    static_cast<double*>(mask), static_cast<const double*>(x), n, seed, offset, p, scale);
    case FloatType::f16:
      return launch(dropout_kernel<__half>, counters, kThreads, 0, stream, static_cast<__half*>(out),
                    static_cast<__half*>(mask), static_cast<const __half*>(x), n, seed, offset, p,
                    static_cast<float>(scale));
    case FloatType::bf16:
      return launch(dropout_kernel<__nv_bfloat16>, counters, kThreads, 0, stream, static_cast<__nv_bfloat16*>(out),
                    static_cast<__nv_bfloat16*>(mask), static_cast<const __nv_bfloat16*>(x), n, seed, offset, p,
                    static_cast<float>(scale));
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
