// 2-d max / average / adaptive average pooling on contiguous NCHW data, forward and backward.
// The window rules are those of src/cpu/pooling.cpp (and PyTorch): first maximum in row-major
// order with NaN winning (the last NaN), avg divisor with or without padding, adaptive windows
// [floor(i·in/out), ceil((i+1)·in/out)). Forward: one thread per output element. Backward is a
// gather, one thread per input element summing the outputs whose window holds it (in output
// order, as the CPU loop adds them): no atomics, deterministic, accumulation in f32 (f64 for f64).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

// a / b rounded down, for b > 0 and any sign of a.
__device__ __forceinline__ int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// ------------------------------------------------------------------ max pooling

template <class T>
__global__ void max_pool_forward(T* __restrict__ out, int64_t* __restrict__ indices, const T* __restrict__ x,
                                 PoolGeometry g) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ox = t % g.ow, oy = (t / g.ow) % g.oh, p = t / (g.ow * g.oh);
    int64_t hs = oy * g.sh - g.ph;
    const int64_t he = min(hs + (g.kh - 1) * g.dh + 1, g.h);
    while (hs < 0) hs += g.dh;
    int64_t ws = ox * g.sw - g.pw;
    const int64_t we = min(ws + (g.kw - 1) * g.dw + 1, g.w);
    while (ws < 0) ws += g.dw;
    const T* src = x + p * g.h * g.w;
    C best = -plus_inf<C>();
    int64_t bi = hs * g.w + ws;
    for (int64_t iy = hs; iy < he; iy += g.dh)
      for (int64_t ix = ws; ix < we; ix += g.dw) {
        const C v = widen(src[iy * g.w + ix]);
        if (v > best || v != v) {
          best = v;
          bi = iy * g.w + ix;
        }
      }
    out[t] = narrow<T>(best);
    indices[t] = bi;
  }
}

template <class T>
__global__ void max_pool_backward(T* __restrict__ gx, const T* __restrict__ gy, const int64_t* __restrict__ indices,
                                  PoolGeometry g) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ix = t % g.w, iy = (t / g.w) % g.h, p = t / (g.w * g.h);
    // Outputs whose window span [o·s − p, o·s − p + (k−1)·d] holds (iy, ix); the saved index
    // decides which of them took this element.
    const int64_t oy0 = max(int64_t{0}, floor_div(iy + g.ph - (g.kh - 1) * g.dh + g.sh - 1, g.sh));
    const int64_t oy1 = min(g.oh - 1, floor_div(iy + g.ph, g.sh));
    const int64_t ox0 = max(int64_t{0}, floor_div(ix + g.pw - (g.kw - 1) * g.dw + g.sw - 1, g.sw));
    const int64_t ox1 = min(g.ow - 1, floor_div(ix + g.pw, g.sw));
    const int64_t self = iy * g.w + ix, base = p * g.oh * g.ow;
    C acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t o = base + oy * g.ow + ox;
        if (indices[o] == self) acc += widen(gy[o]);
      }
    gx[t] = narrow<T>(acc);
  }
}

// ------------------------------------------------------------------ average pooling

struct Window {
  int64_t hs, he, ws, we, divisor;
};

// The window of output (oy, ox) clipped to the input, and its divisor (src/cpu/pooling.cpp's
// avg_window).
__device__ __forceinline__ Window avg_window(const PoolGeometry& g, int64_t oy, int64_t ox, bool count_include_pad) {
  Window a;
  a.hs = oy * g.sh - g.ph;
  a.ws = ox * g.sw - g.pw;
  a.he = min(a.hs + g.kh, g.h + g.ph);
  a.we = min(a.ws + g.kw, g.w + g.pw);
  const int64_t pool = (a.he - a.hs) * (a.we - a.ws);
  a.hs = max(a.hs, int64_t{0});
  a.ws = max(a.ws, int64_t{0});
  a.he = min(a.he, g.h);
  a.we = min(a.we, g.w);
  a.divisor = count_include_pad ? pool : (a.he - a.hs) * (a.we - a.ws);
  return a;
}

template <class T>
__global__ void avg_pool_forward(T* __restrict__ out, const T* __restrict__ x, PoolGeometry g, bool count_include_pad) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ox = t % g.ow, oy = (t / g.ow) % g.oh, p = t / (g.ow * g.oh);
    const Window a = avg_window(g, oy, ox, count_include_pad);
    const T* src = x + p * g.h * g.w;
    C s = 0;
    for (int64_t iy = a.hs; iy < a.he; ++iy)
      for (int64_t ix = a.ws; ix < a.we; ++ix) s += widen(src[iy * g.w + ix]);
    out[t] = narrow<T>(s / static_cast<C>(a.divisor));
  }
}

template <class T>
__global__ void avg_pool_backward(T* __restrict__ gx, const T* __restrict__ gy, PoolGeometry g,
                                  bool count_include_pad) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ix = t % g.w, iy = (t / g.w) % g.h, p = t / (g.w * g.h);
    // Window rows [o·s − p, o·s − p + k) hold iy for o in (⌊(iy + p − k) / s⌋, ⌊(iy + p) / s⌋].
    const int64_t oy0 = max(int64_t{0}, floor_div(iy + g.ph - g.kh, g.sh) + 1);
    const int64_t oy1 = min(g.oh - 1, floor_div(iy + g.ph, g.sh));
    const int64_t ox0 = max(int64_t{0}, floor_div(ix + g.pw - g.kw, g.sw) + 1);
    const int64_t ox1 = min(g.ow - 1, floor_div(ix + g.pw, g.sw));
    const T* src = gy + p * g.oh * g.ow;
    C acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const Window a = avg_window(g, oy, ox, count_include_pad);
        if (iy >= a.hs && iy < a.he && ix >= a.ws && ix < a.we)
          acc += widen(src[oy * g.ow + ox]) / static_cast<C>(a.divisor);
      }
    gx[t] = narrow<T>(acc);
  }
}

// ------------------------------------------------------------------ adaptive average pooling

__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
__global__ void adaptive_avg_forward(T* __restrict__ out, const T* __restrict__ x, PoolGeometry g) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ox = t % g.ow, oy = (t / g.ow) % g.oh, p = t / (g.ow * g.oh);
    const int64_t hs = adaptive_start(oy, g.h, g.oh), he = adaptive_end(oy, g.h, g.oh);
    const int64_t ws = adaptive_start(ox, g.w, g.ow), we = adaptive_end(ox, g.w, g.ow);
    const T* src = x + p * g.h * g.w;
    C s = 0;
    for (int64_t iy = hs; iy < he; ++iy)
      for (int64_t ix = ws; ix < we; ++ix) s += widen(src[iy * g.w + ix]);
    out[t] = narrow<T>(s / static_cast<C>((he - hs) * (we - ws)));
  }
}

template <class T>
__global__ void adaptive_avg_backward(T* __restrict__ gx, const T* __restrict__ gy, PoolGeometry g) {
  using C = acc_t<T>;
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t ix = t % g.w, iy = (t / g.w) % g.h, p = t / (g.w * g.h);
    // start(o) <= i < end(o) holds for o in [⌊i·out/in⌋, ⌈(i+1)·out/in⌉ − 1]; checked again below.
    const int64_t oy0 = (iy * g.oh) / g.h, oy1 = min(g.oh - 1, ((iy + 1) * g.oh + g.h - 1) / g.h - 1);
    const int64_t ox0 = (ix * g.ow) / g.w, ox1 = min(g.ow - 1, ((ix + 1) * g.ow + g.w - 1) / g.w - 1);
    const T* src = gy + p * g.oh * g.ow;
    C acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy) {
      const int64_t hs = adaptive_start(oy, g.h, g.oh), he = adaptive_end(oy, g.h, g.oh);
      if (iy < hs || iy >= he) continue;
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t ws = adaptive_start(ox, g.w, g.ow), we = adaptive_end(ox, g.w, g.ow);
        if (ix < ws || ix >= we) continue;
        acc += widen(src[oy * g.ow + ox]) / static_cast<C>((he - hs) * (we - ws));
      }
    }
    gx[t] = narrow<T>(acc);
  }
}

}  // namespace

cudaError_t max_pool2d(FloatType t, void* out, int64_t* indices, const void* x, const PoolGeometry& g,
                       cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(max_pool_forward<T>, g.planes * g.oh * g.ow, kThreads, 0, stream, static_cast<T*>(out), indices,
                  static_cast<const T*>(x), g);
  });
}

cudaError_t max_pool2d_backward(FloatType t, void* gx, const void* gy, const int64_t* indices, const PoolGeometry& g,
                                cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(max_pool_backward<T>, g.planes * g.h * g.w, kThreads, 0, stream, static_cast<T*>(gx),
                  static_cast<const T*>(gy), indices, g);
  });
}

cudaError_t avg_pool2d(FloatType t, void* out, const void* x, const PoolGeometry& g, bool count_include_pad,
                       cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(avg_pool_forward<T>, g.planes * g.oh * g.ow, kThreads, 0, stream, static_cast<T*>(out),
                  static_cast<const T*>(x), g, count_include_pad);
  });
}

cudaError_t avg_pool2d_backward(FloatType t, void* gx, const void* gy, const PoolGeometry& g, bool count_include_pad,
                                cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(avg_pool_backward<T>, g.planes * g.h * g.w, kThreads, 0, stream, static_cast<T*>(gx),
                  static_cast<const T*>(gy), g, count_include_pad);
  });
}

cudaError_t adaptive_avg_pool2d(FloatType t, void* out, const void* x, const PoolGeometry& g, cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(adaptive_avg_forward<T>, g.planes * g.oh * g.ow, kThreads, 0, stream, static_cast<T*>(out),
                  static_cast<const T*>(x), g);
  });
}

cudaError_t adaptive_avg_pool2d_backward(FloatType t, void* gx, const void* gy, const PoolGeometry& g,
                                         cudaStream_t stream) {
  return by_type(t, [&]<class T>() {
    return launch(adaptive_avg_backward<T>, g.planes * g.h * g.w, kThreads, 0, stream, static_cast<T*>(gx),
                  static_cast<const T*>(gy), g);
  });
}

}  // namespace ember::cuda_backend::kernels
