// Dropout with the CPU's Philox stream (src/ops/random.cpp, "one word per element"): element i
// uses word i % 4 of Philox(seed, offset + i / 4) and is kept when Philox::uniform(word) >= p,
// so the same (seed, offset) gives the same mask bit for bit on both devices. One thread per
// Philox counter (four elements, one vector load and two vector stores when aligned).
#include "common.cuh"
#include "cuda/kernels.hpp"
#include "ember/core/generator.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class T>
__global__ void dropout_kernel(T* __restrict__ out, T* __restrict__ mask, const T* __restrict__ x, int64_t n,
                               uint64_t seed, uint64_t offset, double p, acc_t<T> scale, bool vectorised) {
  const int64_t counters = (n + 3) / 4;
  const T kept = narrow<T>(scale), dropped = narrow<T>(acc_t<T>(0));
  for (int64_t c = global_thread(); c < counters; c += grid_threads()) {
    uint32_t w[4];
    Philox::generate(seed, offset + static_cast<uint64_t>(c), 0, w);
    const int64_t base = 4 * c;
    if (vectorised && base + 4 <= n) {
      // The four elements of one counter as one vector load and two vector stores.
      const Vec<T, 4> xv = reinterpret_cast<const Vec<T, 4>*>(x)[c];
      Vec<T, 4> ov, mv;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const bool keep = static_cast<double>(Philox::uniform(w[k])) >= p;
        mv.v[k] = keep ? kept : dropped;
        ov.v[k] = keep ? narrow<T>(widen(xv.v[k]) * scale) : dropped;
      }
      reinterpret_cast<Vec<T, 4>*>(mask)[c] = mv;
      reinterpret_cast<Vec<T, 4>*>(out)[c] = ov;
      continue;
    }
    const int64_t m = min(int64_t{4}, n - base);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t i = base + k;
      const bool keep = static_cast<double>(Philox::uniform(w[k])) >= p;
      mask[i] = keep ? kept : dropped;
      out[i] = keep ? narrow<T>(widen(x[i]) * scale) : dropped;
    }
  }
}

template <class T>
cudaError_t launch_dropout(void* out, void* mask, const void* x, int64_t n, uint64_t seed, uint64_t offset, double p,
                           cudaStream_t stream) {
  // Vector access needs every pointer aligned to four elements (views of x may start anywhere).
  const auto aligned = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % (4 * sizeof(T)) == 0; };
  const bool vectorised = aligned(out) && aligned(mask) && aligned(x);
  return launch(dropout_kernel<T>, (n + 3) / 4, kThreads, 0, stream, static_cast<T*>(out), static_cast<T*>(mask),
                static_cast<const T*>(x), n, seed, offset, p, static_cast<acc_t<T>>(1.0 / (1.0 - p)), vectorised);
}

}  // namespace

cudaError_t dropout(FloatType t, void* out, void* mask, const void* x, int64_t n, uint64_t seed, uint64_t offset,
                    double p, cudaStream_t stream) {
  return by_type(t, [&]<class T>() { return launch_dropout<T>(out, mask, x, n, seed, offset, p, stream); });
}

}  // namespace ember::cuda_backend::kernels
