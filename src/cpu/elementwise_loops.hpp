// Private to the CPU backend: typed elementwise loops over strided_loop, with contiguous and
// scalar-broadcast fast paths, plus the run-time ISA selection for f32 hot loops.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "loops.hpp"
#include "streaming.hpp"

// Hot f32 loops are compiled three times and picked at load time (ifunc), so the portable
// x86-64 build still runs AVX-512 (x86-64-v4) or AVX2 + FMA (x86-64-v3) where the CPU has them.
// (Each string is one clone: "avx2,fma" would make two clones, AVX2 without FMA and FMA alone.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EMBER_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBER_SIMD_CLONES
#endif

// Loops whose body differs by ISA (kFma: FMA is available) are compiled for each level with
// target attributes and picked once at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EMBER_ISA_DISPATCH 1
#define EMBER_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define EMBER_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define EMBER_ISA_DISPATCH 0
#define EMBER_TARGET_V4
#define EMBER_TARGET_V3
#endif

namespace ember::cpu {

/// The best of three builds of one function for the running CPU.
template <class Fn>
Fn pick_isa(Fn v4, Fn v3, Fn base) {
#if EMBER_ISA_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return v4;
  if (__builtin_cpu_supports("x86-64-v3")) return v3;
#endif
  (void)v4;
  (void)v3;
  return base;
}

// ---- non-temporal output for large f32 results (see streaming.hpp)
// An op whose f32 output exceeds streaming_threshold() writes its contiguous rows of at least
// kStreamMinRow elements with non-temporal stores. Kernels with a streaming variant write the
// row directly (normal stores up to the first 64-byte boundary and for the tail, streamed lines
// between); the others compute L1-sized blocks into a stack buffer that stream_store() then
// streams. Each row ends with an sfence, before the thread pool's barrier publishes the data.
constexpr int64_t kStreamBlock = 2048;  // floats: 8 KiB, well inside L1

/// Elements from `p` to its next 64-byte boundary (p is 4-byte aligned).
inline int64_t floats_to_line(const float* p) {
  return static_cast<int64_t>((64 - (reinterpret_cast<uintptr_t>(p) & 63)) & 63) / 4;
}

/// Runs `kernel(out, begin, count)` over [0, n) of a contiguous f32 output row, streaming it
/// through an L1 buffer when `stream` (and the row is long enough).
template <class Kernel>
void f32_rows(float* o, int64_t n, bool stream, Kernel kernel) {
  if (!stream || n < kStreamMinRow) return kernel(o, 0, n);
  const int64_t head = floats_to_line(o);
  if (head > 0) kernel(o, 0, head);
  alignas(64) float buf[kStreamBlock];
  for (int64_t i = head; i < n; i += kStreamBlock) {
    const int64_t m = std::min(kStreamBlock, n - i);
    kernel(buf, i, m);
    stream_store(o + i, buf, m);
  }
  stream_row_done(n);
}

/// out[i] = f(x[i]) with Out/In element types; `fast(o, x, n)` (may be null) handles rows where
/// both operands are contiguous; `fast_stream(o, x, n)` (f32 only, may be null) does the same
/// with non-temporal stores for the 64-byte lines of o (see above).
template <class Out, class In, class F, class Fast = std::nullptr_t>
void unary_loop(const Tensor& out, const Tensor& x, F f, Fast fast = nullptr,
                void (*fast_stream)(float*, const float*, int64_t) = nullptr) {
  std::array<char*, 2> base;
  std::array<Shape, 2> st;
  operands<2>({&out, &x}, out.shape(), base, st);
  const bool stream = std::is_same_v<Out, float> && stream_output(out.numel() * int64_t{sizeof(Out)});
  strided_loop<2>(out.shape(), base, st, [&](std::array<char*, 2> p, const std::array<int64_t, 2>& s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const In* a = reinterpret_cast<const In*>(p[1]);
    if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
      if constexpr (!std::is_same_v<Fast, std::nullptr_t>) {
        if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
          if (fast_stream && stream && n >= kStreamMinRow) {
            fast_stream(o, a, n);
            return stream_row_done(n);
          }
          f32_rows(o, n, stream, [&](float* dst, int64_t b, int64_t m) { fast(dst, a + b, m); });
        } else {
          fast(o, a, n);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
      }
    } else if (s[0] == sizeof(Out) && s[1] == 0) {
      const Out v = f(*a);
      for (int64_t i = 0; i < n; ++i) o[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) = f(*reinterpret_cast<const In*>(p[1] + i * s[1]));
    }
  });
}

/// Contiguous f32 kernels for one binary op: both vectors, vector-scalar, scalar-vector.
struct F32BinaryKernels {
  void (*vv)(float*, const float*, const float*, int64_t, float) = nullptr;
  void (*vs)(float*, const float*, float, int64_t, float) = nullptr;
  void (*sv)(float*, float, const float*, int64_t, float) = nullptr;
  /// vv with non-temporal stores for the 64-byte lines of the output (may be null).
  void (*vv_stream)(float*, const float*, const float*, int64_t, float) = nullptr;
};

/// out[i] = f(a[i], b[i]); `fast` (F32BinaryKernels or nullptr) takes contiguous f32 rows.
template <class Out, class In, class F>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, F f, const F32BinaryKernels* fast = nullptr,
                 float alpha = 1.0f) {
  std::array<char*, 3> base;
  std::array<Shape, 3> st;
  operands<3>({&out, &a, &b}, out.shape(), base, st);
  const bool stream = std::is_same_v<Out, float> && stream_output(out.numel() * int64_t{sizeof(Out)});
  strided_loop<3>(out.shape(), base, st, [&](std::array<char*, 3> p, const std::array<int64_t, 3>& s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const In* x = reinterpret_cast<const In*>(p[1]);
    const In* y = reinterpret_cast<const In*>(p[2]);
    constexpr int64_t kO = sizeof(Out), kI = sizeof(In);
    if (s[0] == kO && s[1] == kI && s[2] == kI) {
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->vv_stream && stream && n >= kStreamMinRow) {
          fast->vv_stream(o, x, y, n, alpha);
          return stream_row_done(n);
        }
        if (fast && fast->vv)
          return f32_rows(o, n, stream,
                          [&](float* dst, int64_t b, int64_t m) { fast->vv(dst, x + b, y + b, m, alpha); });
      }
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (s[0] == kO && s[1] == kI && s[2] == 0) {
      const In yv = *y;
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->vs)
          return f32_rows(o, n, stream, [&](float* dst, int64_t b, int64_t m) { fast->vs(dst, x + b, yv, m, alpha); });
      }
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (s[0] == kO && s[1] == 0 && s[2] == kI) {
      const In xv = *x;
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->sv)
          return f32_rows(o, n, stream, [&](float* dst, int64_t b, int64_t m) { fast->sv(dst, xv, y + b, m, alpha); });
      }
      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            f(*reinterpret_cast<const In*>(p[1] + i * s[1]), *reinterpret_cast<const In*>(p[2] + i * s[2]));
    }
  });
}

}  // namespace ember::cpu

/// Defines F32BinaryKernels `name` whose element expression EXPR reads floats a, b, alpha.
#define EMBER_DEFINE_F32_BINARY(name, EXPR)                                                                           \
  namespace name##_impl {                                                                                             \
    EMBER_SIMD_CLONES void vv(float* __restrict o, const float* __restrict pa, const float* __restrict pb, int64_t n, \
                              float alpha) {                                                                          \
      for (int64_t i = 0; i < n; ++i) {                                                                               \
        const float a = pa[i], b = pb[i];                                                                             \
        o[i] = (EXPR);                                                                                                \
      }                                                                                                               \
    }                                                                                                                 \
    EMBER_SIMD_CLONES void vs(float* __restrict o, const float* __restrict pa, float b, int64_t n, float alpha) {     \
      for (int64_t i = 0; i < n; ++i) {                                                                               \
        const float a = pa[i];                                                                                        \
        o[i] = (EXPR);                                                                                                \
      }                                                                                                               \
    }                                                                                                                 \
    EMBER_SIMD_CLONES void sv(float* __restrict o, float a, const float* __restrict pb, int64_t n, float alpha) {     \
      for (int64_t i = 0; i < n; ++i) {                                                                               \
        const float b = pb[i];                                                                                        \
        o[i] = (EXPR);                                                                                                \
      }                                                                                                               \
    }                                                                                                                 \
  }                                                                                                                   \
  const ::ember::cpu::F32BinaryKernels name{&name##_impl::vv, &name##_impl::vs, &name##_impl::sv};

/// Defines `void name(float* o, const float* x, int64_t n)` computing o[i] = EXPR of float x.
#define EMBER_DEFINE_F32_UNARY(name, EXPR)                                                  \
  EMBER_SIMD_CLONES void name(float* __restrict o, const float* __restrict px, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) {                                                       \
      const float x = px[i];                                                                \
      o[i] = (EXPR);                                                                        \
    }                                                                                       \
  }

/// Like EMBER_DEFINE_F32_UNARY, for an EXPR that uses the constant `kFma`; `name` is then a
/// function pointer chosen for the running CPU.
#define EMBER_DEFINE_F32_UNARY_ISA(name, EXPR)                                                                         \
  template <bool kFma>                                                                                                 \
  inline __attribute__((always_inline)) void name##_body(float* __restrict o, const float* __restrict px, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) {                                                                                  \
      const float x = px[i];                                                                                           \
      o[i] = (EXPR);                                                                                                   \
    }                                                                                                                  \
  }                                                                                                                    \
  EMBER_TARGET_V4 void name##_v4(float* o, const float* px, int64_t n) { name##_body<true>(o, px, n); }                \
  EMBER_TARGET_V3 void name##_v3(float* o, const float* px, int64_t n) { name##_body<true>(o, px, n); }                \
  void name##_base(float* o, const float* px, int64_t n) { name##_body<false>(o, px, n); }                             \
  void (*const name)(float*, const float*, int64_t) = ::ember::cpu::pick_isa(&name##_v4, &name##_v3, &name##_base);

/// Like EMBER_DEFINE_F32_BINARY (vector-vector only) for an EXPR that uses `kFma`.
#define EMBER_DEFINE_F32_BINARY_ISA(name, EXPR)                                                                        \
  template <bool kFma>                                                                                                 \
  inline __attribute__((always_inline)) void name##_body(float* __restrict o, const float* __restrict pa,              \
                                                         const float* __restrict pb, int64_t n) {                      \
    for (int64_t i = 0; i < n; ++i) {                                                                                  \
      const float a = pa[i], b = pb[i];                                                                                \
      o[i] = (EXPR);                                                                                                   \
    }                                                                                                                  \
  }                                                                                                                    \
  EMBER_TARGET_V4 void name##_v4(float* o, const float* pa, const float* pb, int64_t n, float) {                       \
    name##_body<true>(o, pa, pb, n);                                                                                   \
  }                                                                                                                    \
  EMBER_TARGET_V3 void name##_v3(float* o, const float* pa, const float* pb, int64_t n, float) {                       \
    name##_body<true>(o, pa, pb, n);                                                                                   \
  }                                                                                                                    \
  void name##_base(float* o, const float* pa, const float* pb, int64_t n, float) { name##_body<false>(o, pa, pb, n); } \
  const ::ember::cpu::F32BinaryKernels name{::ember::cpu::pick_isa(&name##_v4, &name##_v3, &name##_base), nullptr,     \
                                            nullptr};
