// Fused LayerNorm over the last n elements of contiguous rows. Forward: one block per row, two
// passes over the row (mean, then the squared deviations about it: no cancellation when
// |mean| >> std), then y = (x − mean)·rstd·w + b; mean and rstd saved per row. Backward: one
// block per row for dx (two row sums), and for the parameter gradients per-chunk partial sums
// (one thread per column, a fixed range of rows per chunk) reduced over the chunks by a second
// kernel in chunk order: deterministic. f32 accumulation for f32/f16/bf16, f64 for f64.
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

constexpr int kRowThreads = 256;
constexpr int64_t kRowsPerChunk = 64;
constexpr int kColThreads = 128;

template <class T>
__global__ void forward_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                               T* __restrict__ y, acc_t<T>* __restrict__ mean_out, acc_t<T>* __restrict__ rstd_out,
                               int64_t rows, int64_t n, double eps) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    C s = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += widen(xr[j]);
    const C mean = block_reduce(s, false, scratch) / static_cast<C>(n);
    C q = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const C d = widen(xr[j]) - mean;
      q += d * d;
    }
    const C var = block_reduce(q, false, scratch) / static_cast<C>(n);
    const C rstd = C(1) / sqrt(var + static_cast<C>(eps));
    T* yr = y + r * n;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      C v = (widen(xr[j]) - mean) * rstd;
      if (w) v *= widen(w[j]);
      if (b) v += widen(b[j]);
      yr[j] = narrow<T>(v);
    }
    if (threadIdx.x == 0) {
      mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
  }
}

// dx = rstd·(gw − mean(gw) − x̂·mean(gw·x̂)) with gw = g·w.
template <class T>
__global__ void backward_dx_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ w,
                                   const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ rstd,
                                   T* __restrict__ dx, int64_t rows, int64_t n) {
  using C = acc_t<T>;
  __shared__ C scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* gr = g + r * n;
    const T* xr = x + r * n;
    const C m = mean[r], rs = rstd[r];
    C s1 = 0, s2 = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const C gw = widen(gr[j]) * (w ? widen(w[j]) : C(1));
      s1 += gw;
      s2 += gw * (widen(xr[j]) - m) * rs;
    }
    const C mean_gw = block_reduce(s1, false, scratch) / static_cast<C>(n);
    const C mean_gwx = block_reduce(s2, false, scratch) / static_cast<C>(n);
    T* dr = dx + r * n;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const C gw = widen(gr[j]) * (w ? widen(w[j]) : C(1));
      const C xh = (widen(xr[j]) - m) * rs;
      dr[j] = narrow<T>(rs * (gw - mean_gw - xh * mean_gwx));
    }
  }
}

// partial[0][chunk, j] = Σ g·x̂ and partial[1][chunk, j] = Σ g over the chunk's rows.
template <class T>
__global__ void backward_partial_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                        const acc_t<T>* __restrict__ mean, const acc_t<T>* __restrict__ rstd,
                                        acc_t<T>* __restrict__ partial, int64_t rows, int64_t n, int64_t chunks) {
  using C = acc_t<T>;
  const int64_t col_blocks = (n + blockDim.x - 1) / blockDim.x;
  for (int64_t blk = blockIdx.x; blk < col_blocks * chunks; blk += gridDim.x) {
    const int64_t chunk = blk / col_blocks;
    const int64_t j = (blk % col_blocks) * blockDim.x + threadIdx.x;
    if (j >= n) continue;
    const int64_t r0 = chunk * kRowsPerChunk, r1 = min(rows, r0 + kRowsPerChunk);
    C sw = 0, sb = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const C gv = widen(g[r * n + j]);
      sw += gv * (widen(x[r * n + j]) - mean[r]) * rstd[r];
      sb += gv;
    }
    partial[chunk * n + j] = sw;
    partial[(chunks + chunk) * n + j] = sb;
  }
}

template <class T>
__global__ void backward_params_kernel(const acc_t<T>* __restrict__ partial, T* __restrict__ dw, T* __restrict__ db,
                                       int64_t n, int64_t chunks) {
  using C = acc_t<T>;
  for (int64_t j = global_thread(); j < n; j += grid_threads()) {
    C sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += partial[c * n + j];
      sb += partial[(chunks + c) * n + j];
    }
    if (dw) dw[j] = narrow<T>(sw);
    if (db) db[j] = narrow<T>(sb);
  }
}

}  // namespace

int64_t layer_norm_chunks(int64_t rows) { return (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

cudaError_t layer_norm_forward(FloatType t, const void* x, const void* w, const void* b, void* y, void* mean,
                               void* rstd, int64_t rows, int64_t n, double eps, cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    return launch_blocks(forward_kernel<T>, rows, kRowThreads, 0, stream, static_cast<const T*>(x),
                         static_cast<const T*>(w), static_cast<const T*>(b), static_cast<T*>(y), static_cast<C*>(mean),
                         static_cast<C*>(rstd), rows, n, eps);
  });
}

cudaError_t layer_norm_backward(FloatType t, const void* g, const void* x, const void* w, const void* mean,
                                const void* rstd, void* dx, void* dw, void* db, void* partial, int64_t rows, int64_t n,
                                cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    using C = acc_t<T>;
    cudaError_t st = cudaSuccess;
    if (dx) {
      st = launch_blocks(backward_dx_kernel<T>, rows, kRowThreads, 0, stream, static_cast<const T*>(g),
                         static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const C*>(mean),
                         static_cast<const C*>(rstd), static_cast<T*>(dx), rows, n);
      if (st != cudaSuccess) return st;
    }
    if (dw || db) {
      const int64_t chunks = layer_norm_chunks(rows);
      const int64_t col_blocks = (n + kColThreads - 1) / kColThreads;
      st = launch_blocks(backward_partial_kernel<T>, col_blocks * chunks, kColThreads, 0, stream,
                         static_cast<const T*>(g), static_cast<const T*>(x), static_cast<const C*>(mean),
                         static_cast<const C*>(rstd), static_cast<C*>(partial), rows, n, chunks);
      if (st != cudaSuccess) return st;
      st = launch(backward_params_kernel<T>, n, kThreads, 0, stream, static_cast<const C*>(partial),
                  static_cast<T*>(dw), static_cast<T*>(db), n, chunks);
    }
    return st;
  });
}

}  // namespace ember::cuda_backend::kernels
