// 2-d max / average / adaptive average pooling on contiguous NCHW data, parallel over the
// N·C planes. Window rules follow PyTorch exactly (first maximum on ties, NaN wins, avg
// divisor with or without padding), so results and gradients match it element for element.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "conv.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/parallel.hpp"

namespace ember::cpu {

namespace {

// Planes per task: enough work per chunk that small planes do not pay a fork per plane.
int64_t plane_grain(const PoolGeom& g) {
  const int64_t per_plane = std::max<int64_t>(1, std::max(g.h * g.w, g.oh * g.ow));
  return std::max<int64_t>(1, 16384 / per_plane);
}

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 headers fill unused lanes from _mm512_undefined_*(), which it then reports.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
bool have_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

// Maxima of the 2-wide pairs of up to 32 floats at r (masks ma, mb for the two halves): m, and
// k set where the second of the pair won (greater, or NaN).
__attribute__((target("avx512f"))) inline void pair_max_avx512(const float* r, __mmask16 ma, __mmask16 mb, __m512i ev,
                                                               __m512i od, __m512& m, __mmask16& k) {
  const __m512 a = _mm512_maskz_loadu_ps(ma, r), b = _mm512_maskz_loadu_ps(mb, r + 16);
  const __m512 e = _mm512_permutex2var_ps(a, ev, b), o = _mm512_permutex2var_ps(a, od, b);
  k = _mm512_cmp_ps_mask(o, e, _CMP_GT_OQ) | _mm512_cmp_ps_mask(o, o, _CMP_UNORD_Q);
  m = _mm512_mask_blend_ps(k, e, o);
}

// One output row of 2×2 / stride-2 max pooling: r0 is the first of the two input rows (w wide),
// idx gets base + the in-plane offset. 16 outputs per step, the tail under masks.
__attribute__((target("avx512f"))) void max_pool_2x2_row_avx512(const float* r0, float* y, int64_t* idx, int64_t ow,
                                                                int64_t base, int64_t w) {
  const float* r1 = r0 + w;
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), wv = _mm512_set1_epi32(static_cast<int>(w));
  const __m512i base64 = _mm512_set1_epi64(base);
  for (int64_t ox = 0; ox < ow; ox += 16) {
    const int64_t n = std::min<int64_t>(16, ow - ox);
    const int64_t in = 2 * n;  // input floats of this step, per row
    const __mmask16 ma = static_cast<__mmask16>(in >= 16 ? 0xffff : (1u << in) - 1);
    const __mmask16 mb = static_cast<__mmask16>(in <= 16 ? 0 : (1u << (in - 16)) - 1);
    const __mmask16 mo = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
    __m512 m0, m1;
    __mmask16 k0, k1;
    pair_max_avx512(r0 + 2 * ox, ma, mb, ev, od, m0, k0);
    pair_max_avx512(r1 + 2 * ox, ma, mb, ev, od, m1, k1);
    const __mmask16 k = _mm512_cmp_ps_mask(m1, m0, _CMP_GT_OQ) | _mm512_cmp_ps_mask(m1, m1, _CMP_UNORD_Q);
    _mm512_mask_storeu_ps(y + ox, mo, _mm512_mask_blend_ps(k, m0, m1));
    const __m512i off0 = _mm512_maskz_mov_epi32(k0, one);
    const __m512i off1 = _mm512_add_epi32(wv, _mm512_maskz_mov_epi32(k1, one));
    const __m512i col = _mm512_add_epi32(ev, _mm512_set1_epi32(static_cast<int>(2 * ox)));
    const __m512i rel = _mm512_add_epi32(col, _mm512_mask_blend_epi32(k, off0, off1));
    const __m512i lo = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(rel)), base64);
    const __m512i hi = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(rel, 1)), base64);
    _mm512_mask_storeu_epi64(idx + ox, static_cast<__mmask8>(mo & 0xff), lo);
    _mm512_mask_storeu_epi64(idx + ox + 8, static_cast<__mmask8>(mo >> 8), hi);
  }
}
#pragma GCC diagnostic pop
#else
bool have_avx512() { return false; }
void max_pool_2x2_row_avx512(const float*, float*, int64_t*, int64_t, int64_t, int64_t) {}
#endif

template <class T>
void max_pool_plane(const T* x, T* y, int64_t* idx, const PoolGeom& g) {
  using C = compute_t<T>;
  // The CNN's case (2×2, stride 2, no padding): a tight loop without window bookkeeping.
  if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 &&
      2 * g.oh <= g.h && 2 * g.ow <= g.w) {
    // Row maxima first, then the two rows merged: the first maximum in row-major order (and
    // the last NaN), as PyTorch's scan. f32 on AVX-512 machines takes the vector version below
    // (GCC does not vectorise these selects: the NaN tests count as control flow).
    if constexpr (std::is_same_v<T, float>) {
      if (have_avx512() && g.h * g.w < (int64_t{1} << 30)) {
        for (int64_t oy = 0; oy < g.oh; ++oy)
          max_pool_2x2_row_avx512(x + 2 * oy * g.w, y + oy * g.ow, idx + oy * g.ow, g.ow, 2 * oy * g.w, g.w);
        return;
      }
    }
    std::vector<C> m0(static_cast<size_t>(g.ow)), m1(static_cast<size_t>(g.ow));
    std::vector<int64_t> i0(static_cast<size_t>(g.ow)), i1(static_cast<size_t>(g.ow));
    auto row_max = [&](const T* r, C* m, int64_t* im) {
#pragma omp simd
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const C a = static_cast<C>(r[2 * ox]), b = static_cast<C>(r[2 * ox + 1]);
        const bool t = (b > a) | (b != b);
        m[ox] = t ? b : a;
        im[ox] = 2 * ox + (t ? 1 : 0);
      }
    };
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const T* r0 = x + 2 * oy * g.w;
      row_max(r0, m0.data(), i0.data());
      row_max(r0 + g.w, m1.data(), i1.data());
      T* yr = y + oy * g.ow;
      int64_t* ir = idx + oy * g.ow;
      const int64_t row0 = 2 * oy * g.w;
#pragma omp simd
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const C a = m0[ox], b = m1[ox];
        const bool t = (b > a) | (b != b);
        yr[ox] = static_cast<T>(t ? b : a);
        ir[ox] = row0 + (t ? g.w + i1[ox] : i0[ox]);
      }
    }
    return;
  }
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    int64_t hs = oy * g.sh - g.ph;
    const int64_t he = std::min(hs + (g.kh - 1) * g.dh + 1, g.h);
    while (hs < 0) hs += g.dh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      int64_t ws = ox * g.sw - g.pw;
      const int64_t we = std::min(ws + (g.kw - 1) * g.dw + 1, g.w);
      while (ws < 0) ws += g.dw;
      C best = -std::numeric_limits<C>::infinity();
      int64_t bi = hs * g.w + ws;
      for (int64_t iy = hs; iy < he; iy += g.dh)
        for (int64_t ix = ws; ix < we; ix += g.dw) {
          const C v = static_cast<C>(x[iy * g.w + ix]);
          if (v > best || std::isnan(v)) {
            best = v;
            bi = iy * g.w + ix;
          }
        }
      y[oy * g.ow + ox] = static_cast<T>(best);
      idx[oy * g.ow + ox] = bi;
    }
  }
}

// The window of output (oy, ox) clipped to the padded input, and its divisor.
struct AvgWindow {
  int64_t hs, he, ws, we;
  int64_t divisor;
};

AvgWindow avg_window(const PoolGeom& g, int64_t oy, int64_t ox, bool count_include_pad) {
  AvgWindow a{};
  a.hs = oy * g.sh - g.ph;
  a.ws = ox * g.sw - g.pw;
  a.he = std::min(a.hs + g.kh, g.h + g.ph);
  a.we = std::min(a.ws + g.kw, g.w + g.pw);
  const int64_t pool = (a.he - a.hs) * (a.we - a.ws);
  a.hs = std::max<int64_t>(a.hs, 0);
  a.ws = std::max<int64_t>(a.ws, 0);
  a.he = std::min(a.he, g.h);
  a.we = std::min(a.we, g.w);
  a.divisor = count_include_pad ? pool : (a.he - a.hs) * (a.we - a.ws);
  return a;
}

int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

}  // namespace

void max_pool2d(const Tensor& out, const Tensor& indices, const Tensor& x, const PoolGeom& g) {
  dispatch<kFloatingTypes>(x.dtype(), "max_pool2d", [&]<class T>() {
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    int64_t* ip = indices.data<int64_t>();
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        max_pool_plane<T>(xp + p * g.h * g.w, yp + p * g.oh * g.ow, ip + p * g.oh * g.ow, g);
    });
  });
}

void max_pool2d_backward(const Tensor& gx, const Tensor& gy, const Tensor& indices, const PoolGeom& g) {
  dispatch<kFloatingTypes>(gx.dtype(), "max_pool2d backward", [&]<class T>() {
    using C = compute_t<T>;
    T* gxp = gx.data<T>();
    const T* gyp = gy.data<T>();
    const int64_t* ip = indices.data<int64_t>();
    const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        T* dst = gxp + p * hw;
        std::fill(dst, dst + hw, T(0));
        const T* src = gyp + p * ohw;
        const int64_t* id = ip + p * ohw;
        // A window made only of padding (possible with dilation) has no input element: its index
        // lies outside the plane and its gradient goes nowhere (the CUDA kernel does the same).
        for (int64_t i = 0; i < ohw; ++i)
          if (id[i] >= 0 && id[i] < hw) dst[id[i]] = static_cast<T>(static_cast<C>(dst[id[i]]) + static_cast<C>(src[i]));
      }
    });
  });
}

void avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g, bool count_include_pad) {
  dispatch<kFloatingTypes>(x.dtype(), "avg_pool2d", [&]<class T>() {
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T* src = xp + p * g.h * g.w;
        T* dst = yp + p * g.oh * g.ow;
        for (int64_t oy = 0; oy < g.oh; ++oy)
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const AvgWindow a = avg_window(g, oy, ox, count_include_pad);
            C s = 0;
            for (int64_t iy = a.hs; iy < a.he; ++iy)
              for (int64_t ix = a.ws; ix < a.we; ++ix) s += static_cast<C>(src[iy * g.w + ix]);
            dst[oy * g.ow + ox] = static_cast<T>(s / static_cast<C>(a.divisor));
          }
      }
    });
  });
}

void avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g, bool count_include_pad) {
  dispatch<kFloatingTypes>(gx.dtype(), "avg_pool2d backward", [&]<class T>() {
    using C = compute_t<T>;
    T* gxp = gx.data<T>();
    const T* gyp = gy.data<T>();
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      std::vector<C> acc(static_cast<size_t>(g.h * g.w));
      for (int64_t p = begin; p < end; ++p) {
        std::fill(acc.begin(), acc.end(), C(0));
        const T* src = gyp + p * g.oh * g.ow;
        for (int64_t oy = 0; oy < g.oh; ++oy)
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const AvgWindow a = avg_window(g, oy, ox, count_include_pad);
            const C v = static_cast<C>(src[oy * g.ow + ox]) / static_cast<C>(a.divisor);
            for (int64_t iy = a.hs; iy < a.he; ++iy)
              for (int64_t ix = a.ws; ix < a.we; ++ix) acc[iy * g.w + ix] += v;
          }
        T* dst = gxp + p * g.h * g.w;
        for (int64_t i = 0; i < g.h * g.w; ++i) dst[i] = static_cast<T>(acc[i]);
      }
    });
  });
}

void adaptive_avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g) {
  dispatch<kFloatingTypes>(x.dtype(), "adaptive_avg_pool2d", [&]<class T>() {
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T* src = xp + p * g.h * g.w;
        T* dst = yp + p * g.oh * g.ow;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t hs = adaptive_start(oy, g.h, g.oh), he = adaptive_end(oy, g.h, g.oh);
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ws = adaptive_start(ox, g.w, g.ow), we = adaptive_end(ox, g.w, g.ow);
            C s = 0;
            for (int64_t iy = hs; iy < he; ++iy)
              for (int64_t ix = ws; ix < we; ++ix) s += static_cast<C>(src[iy * g.w + ix]);
            dst[oy * g.ow + ox] = static_cast<T>(s / static_cast<C>((he - hs) * (we - ws)));
          }
        }
      }
    });
  });
}

void adaptive_avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g) {
  dispatch<kFloatingTypes>(gx.dtype(), "adaptive_avg_pool2d backward", [&]<class T>() {
    using C = compute_t<T>;
    T* gxp = gx.data<T>();
    const T* gyp = gy.data<T>();
    parallel_for(g.planes, plane_grain(g), [&](int64_t begin, int64_t end) {
      std::vector<C> acc(static_cast<size_t>(g.h * g.w));
      for (int64_t p = begin; p < end; ++p) {
        std::fill(acc.begin(), acc.end(), C(0));
        const T* src = gyp + p * g.oh * g.ow;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          const int64_t hs = adaptive_start(oy, g.h, g.oh), he = adaptive_end(oy, g.h, g.oh);
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            const int64_t ws = adaptive_start(ox, g.w, g.ow), we = adaptive_end(ox, g.w, g.ow);
            const C v = static_cast<C>(src[oy * g.ow + ox]) / static_cast<C>((he - hs) * (we - ws));
            for (int64_t iy = hs; iy < he; ++iy)
              for (int64_t ix = ws; ix < we; ++ix) acc[iy * g.w + ix] += v;
          }
        }
        T* dst = gxp + p * g.h * g.w;
        for (int64_t i = 0; i < g.h * g.w; ++i) dst[i] = static_cast<T>(acc[i]);
      }
    });
  });
}

}  // namespace ember::cpu
