// Private to the CPU backend: typed elementwise loops over strided_loop, with contiguous and
// scalar-broadcast fast paths, plus the run-time ISA selection for f32 hot loops.
#pragma once

#include <array>
#include <cstdint>

#include "loops.hpp"

// Hot f32 loops are compiled three times and picked at load time (ifunc), so the portable
// x86-64 build still runs AVX-512 (x86-64-v4) or AVX2 + FMA (x86-64-v3) where the CPU has them.
// (Each string is one clone: "avx2,fma" would make two clones, AVX2 without FMA and FMA alone.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EMBER_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBER_SIMD_CLONES
#endif

namespace ember::cpu {

/// out[i] = f(x[i]) with Out/In element types; `fast(o, x, n)` (may be null) handles rows where
/// both operands are contiguous.
template <class Out, class In, class F, class Fast = std::nullptr_t>
void unary_loop(const Tensor& out, const Tensor& x, F f, Fast fast = nullptr) {
  std::array<char*, 2> base;
  std::array<Shape, 2> st;
  operands<2>({&out, &x}, out.shape(), base, st);
  strided_loop<2>(out.shape(), base, st, [&](std::array<char*, 2> p, const std::array<int64_t, 2>& s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const In* a = reinterpret_cast<const In*>(p[1]);
    if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
      if constexpr (!std::is_same_v<Fast, std::nullptr_t>) {
        fast(o, a, n);
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
};

/// out[i] = f(a[i], b[i]); `fast` (F32BinaryKernels or nullptr) takes contiguous f32 rows.
template <class Out, class In, class F>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, F f, const F32BinaryKernels* fast = nullptr,
                 float alpha = 1.0f) {
  std::array<char*, 3> base;
  std::array<Shape, 3> st;
  operands<3>({&out, &a, &b}, out.shape(), base, st);
  strided_loop<3>(out.shape(), base, st, [&](std::array<char*, 3> p, const std::array<int64_t, 3>& s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const In* x = reinterpret_cast<const In*>(p[1]);
    const In* y = reinterpret_cast<const In*>(p[2]);
    constexpr int64_t kO = sizeof(Out), kI = sizeof(In);
    if (s[0] == kO && s[1] == kI && s[2] == kI) {
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->vv) return fast->vv(o, x, y, n, alpha);
      }
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (s[0] == kO && s[1] == kI && s[2] == 0) {
      const In yv = *y;
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->vs) return fast->vs(o, x, yv, n, alpha);
      }
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (s[0] == kO && s[1] == 0 && s[2] == kI) {
      const In xv = *x;
      if constexpr (std::is_same_v<Out, float> && std::is_same_v<In, float>) {
        if (fast && fast->sv) return fast->sv(o, xv, y, n, alpha);
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
#define EMBER_DEFINE_F32_BINARY(name, EXPR)                                                                 \
  namespace name##_impl {                                                                                  \
  EMBER_SIMD_CLONES void vv(float* __restrict o, const float* __restrict pa, const float* __restrict pb,   \
                            int64_t n, float alpha) {                                                      \
    for (int64_t i = 0; i < n; ++i) {                                                                      \
      const float a = pa[i], b = pb[i];                                                                    \
      o[i] = (EXPR);                                                                                       \
    }                                                                                                      \
  }                                                                                                        \
  EMBER_SIMD_CLONES void vs(float* __restrict o, const float* __restrict pa, float b, int64_t n, float alpha) { \
    for (int64_t i = 0; i < n; ++i) {                                                                      \
      const float a = pa[i];                                                                               \
      o[i] = (EXPR);                                                                                       \
    }                                                                                                      \
  }                                                                                                        \
  EMBER_SIMD_CLONES void sv(float* __restrict o, float a, const float* __restrict pb, int64_t n, float alpha) { \
    for (int64_t i = 0; i < n; ++i) {                                                                      \
      const float b = pb[i];                                                                               \
      o[i] = (EXPR);                                                                                       \
    }                                                                                                      \
  }                                                                                                        \
  }                                                                                                        \
  const ::ember::cpu::F32BinaryKernels name{&name##_impl::vv, &name##_impl::vs, &name##_impl::sv};

/// Defines `void name(float* o, const float* x, int64_t n)` computing o[i] = EXPR of float x.
#define EMBER_DEFINE_F32_UNARY(name, EXPR)                                                 \
  EMBER_SIMD_CLONES void name(float* __restrict o, const float* __restrict px, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) {                                                       \
      const float x = px[i];                                                                \
      o[i] = (EXPR);                                                                        \
    }                                                                                       \
  }
