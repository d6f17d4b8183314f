// CPU unary elementwise kernels: arithmetic, transcendental and activation functions, tests
// (isnan ...), logical_not and clamp.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
// Floating-point exceptions are never enabled in Ember, so let GCC treat comparisons as
// non-trapping: otherwise it refuses to if-convert the NaN and range selects in vec_math.hpp and
// the AVX2 / SSE2 clones of the transcendental loops stay scalar.
#pragma GCC optimize("no-trapping-math")
#include "elementwise_loops.hpp"
#include "vec_math.hpp"

namespace ember::cpu {

namespace {

// Contiguous f32 kernels, one ISA clone each. Transcendentals use vm:: (no libm calls).
EMBER_DEFINE_F32_UNARY(k_neg, -x)
EMBER_DEFINE_F32_UNARY(k_abs, x < 0.0f ? -x : (x == 0.0f ? 0.0f : x))
EMBER_DEFINE_F32_UNARY(k_exp, vm::exp(x))
EMBER_DEFINE_F32_UNARY(k_sqrt, std::sqrt(x))
EMBER_DEFINE_F32_UNARY(k_rsqrt, 1.0f / std::sqrt(x))
EMBER_DEFINE_F32_UNARY(k_square, x* x)
EMBER_DEFINE_F32_UNARY(k_reciprocal, 1.0f / x)
EMBER_DEFINE_F32_UNARY(k_erf, vm::erf(x))
EMBER_DEFINE_F32_UNARY(k_tanh, vm::tanh(x))
EMBER_DEFINE_F32_UNARY(k_sigmoid, vm::sigmoid(x))
EMBER_DEFINE_F32_UNARY(k_relu, x < 0.0f ? 0.0f : x)
EMBER_DEFINE_F32_UNARY(k_silu, vm::silu(x))

// GELU is compute-bound, so its x86-64-v4 loops use the AVX-512 code of vm::v4 (vscalefps,
// vrcp14ps, fixups) rather than what GCC makes of the portable functions; the v3 and baseline
// builds compile the portable functions.
template <bool kFma>
inline __attribute__((always_inline)) void k_gelu_body(float* __restrict o, const float* __restrict px, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = vm::gelu<kFma>(px[i]);
}
inline __attribute__((always_inline)) void k_gelu_tanh_body(float* __restrict o, const float* __restrict px,
                                                            int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = vm::gelu_tanh(px[i]);
}
#if EMBER_ISA_DISPATCH && defined(EMBER_VM_HAVE_V4)
// Full vectors, then the remainder with a masked load and store.
#define EMBER_DEFINE_F32_UNARY_V4(name, FN)                                               \
  EMBER_TARGET_V4 void name(float* __restrict o, const float* __restrict px, int64_t n) { \
    int64_t i = 0;                                                                        \
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(o + i, FN(_mm512_loadu_ps(px + i)));    \
    if (i < n) {                                                                          \
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);                    \
      _mm512_mask_storeu_ps(o + i, m, FN(_mm512_maskz_loadu_ps(m, px + i)));              \
    }                                                                                     \
  }
EMBER_DEFINE_F32_UNARY_V4(k_gelu_v4, vm::v4::gelu)
EMBER_DEFINE_F32_UNARY_V4(k_gelu_tanh_v4, vm::v4::gelu_tanh)
#undef EMBER_DEFINE_F32_UNARY_V4
// Streaming variants (see streaming.hpp): masked normal stores up to o's first 64-byte boundary
// and for the tail, non-temporal stores between. Lanes are independent, so the results are
// bit-identical to the loops above.
#define EMBER_DEFINE_F32_UNARY_V4_STREAM(name, FN)                                        \
  EMBER_TARGET_V4 void name(float* __restrict o, const float* __restrict px, int64_t n) { \
    int64_t i = std::min(n, floats_to_line(o));                                           \
    if (i > 0) {                                                                          \
      const __mmask16 m = static_cast<__mmask16>((1u << i) - 1);                          \
      _mm512_mask_storeu_ps(o, m, FN(_mm512_maskz_loadu_ps(m, px)));                      \
    }                                                                                     \
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(o + i, FN(_mm512_loadu_ps(px + i)));    \
    if (i < n) {                                                                          \
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);                    \
      _mm512_mask_storeu_ps(o + i, m, FN(_mm512_maskz_loadu_ps(m, px + i)));              \
    }                                                                                     \
  }
EMBER_DEFINE_F32_UNARY_V4_STREAM(k_gelu_stream_v4, vm::v4::gelu)
EMBER_DEFINE_F32_UNARY_V4_STREAM(k_gelu_tanh_stream_v4, vm::v4::gelu_tanh)
#undef EMBER_DEFINE_F32_UNARY_V4_STREAM
using F32UnaryPtr = void (*)(float*, const float*, int64_t);
// Elsewhere the L1 buffer + stream_store path streams (null here).
const F32UnaryPtr k_gelu_stream = pick_isa<F32UnaryPtr>(&k_gelu_stream_v4, nullptr, nullptr);
const F32UnaryPtr k_gelu_tanh_stream = pick_isa<F32UnaryPtr>(&k_gelu_tanh_stream_v4, nullptr, nullptr);
#else
EMBER_TARGET_V4 void k_gelu_v4(float* o, const float* px, int64_t n) { k_gelu_body<true>(o, px, n); }
EMBER_TARGET_V4 void k_gelu_tanh_v4(float* o, const float* px, int64_t n) { k_gelu_tanh_body(o, px, n); }
void (*const k_gelu_stream)(float*, const float*, int64_t) = nullptr;
void (*const k_gelu_tanh_stream)(float*, const float*, int64_t) = nullptr;
#endif
EMBER_TARGET_V3 void k_gelu_v3(float* o, const float* px, int64_t n) { k_gelu_body<true>(o, px, n); }
void k_gelu_base(float* o, const float* px, int64_t n) { k_gelu_body<false>(o, px, n); }
EMBER_TARGET_V3 void k_gelu_tanh_v3(float* o, const float* px, int64_t n) { k_gelu_tanh_body(o, px, n); }
void k_gelu_tanh_base(float* o, const float* px, int64_t n) { k_gelu_tanh_body(o, px, n); }
void (*const k_gelu)(float*, const float*, int64_t) = pick_isa(&k_gelu_v4, &k_gelu_v3, &k_gelu_base);
void (*const k_gelu_tanh)(float*, const float*, int64_t) = pick_isa(&k_gelu_tanh_v4, &k_gelu_tanh_v3,
                                                                    &k_gelu_tanh_base);

EMBER_SIMD_CLONES void k_clamp(float* __restrict o, const float* __restrict px, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    float v = px[i];
    v = v < lo ? lo : v;  // NaN stays NaN: both comparisons are false
    o[i] = v > hi ? hi : v;
  }
}

using F32Unary = void (*)(float*, const float*, int64_t);

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::abs: return "abs";
    case UnaryOp::sign: return "sign";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::log1p: return "log1p";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::square: return "square";
    case UnaryOp::reciprocal: return "reciprocal";
    case UnaryOp::sin: return "sin";
    case UnaryOp::cos: return "cos";
    case UnaryOp::erf: return "erf";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::relu: return "relu";
    case UnaryOp::gelu: return "gelu";
    case UnaryOp::gelu_tanh: return "gelu";
    case UnaryOp::silu: return "silu";
    case UnaryOp::logical_not: return "logical_not";
    case UnaryOp::isfinite: return "isfinite";
    case UnaryOp::isnan: return "isnan";
    case UnaryOp::isinf: return "isinf";
  }
  return "unary";
}

template <class T, class F>
void run(const Tensor& out, const Tensor& x, F f, F32Unary fast, F32Unary fast_stream = nullptr) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast) return unary_loop<float, float>(out, x, f, fast, fast_stream);
  }
  unary_loop<T, T>(out, x, f);
}

/// Ops valid for every numeric dtype (results in the input dtype).
template <class T>
bool numeric_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::neg:
      if constexpr (std::is_same_v<T, bool>)
        return false;
      else
        run<T>(
            out, x, [](T v) { return static_cast<T>(-C(v)); }, &k_neg);
      return true;
    case UnaryOp::abs:
      if constexpr (std::is_same_v<T, bool>)
        return false;
      else if constexpr (std::is_unsigned_v<C>)
        run<T>(
            out, x, [](T v) { return v; }, nullptr);
      else
        run<T>(
            out, x,
            [](T v) {
              const C c = C(v);
              return static_cast<T>(c < C(0) ? -c : (c == C(0) ? C(0) : c));
            },
            &k_abs);
      return true;
    case UnaryOp::sign:
      run<T>(
          out, x,
          [](T v) {
            const C c = C(v);
            if constexpr (std::is_floating_point_v<C>) {
              if (c != c) return v;
            }
            return static_cast<T>(c > C(0) ? C(1) : (c < C(0) ? static_cast<C>(-1) : C(0)));
          },
          nullptr);
      return true;
    case UnaryOp::square:
      if constexpr (std::is_same_v<T, bool>)
        return false;
      else
        run<T>(
            out, x, [](T v) { return static_cast<T>(C(v) * C(v)); }, &k_square);
      return true;
    case UnaryOp::relu:
      if constexpr (std::is_same_v<T, bool>)
        return false;
      else
        run<T>(
            out, x, [](T v) { return C(v) < C(0) ? T(C(0)) : v; }, &k_relu);
      return true;
    default: return false;
  }
}

/// Ops that need a floating dtype (the ops layer converts integer inputs first).
template <class T>
bool float_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  using C = compute_t<T>;
  if constexpr (!std::is_floating_point_v<C>) {
    return false;
  } else {
    auto go = [&](auto f, F32Unary fast, F32Unary fast_stream = nullptr) {
      run<T>(
          out, x, [f](T v) { return static_cast<T>(f(C(v))); }, fast, fast_stream);
    };
    switch (op) {
      case UnaryOp::exp: go([](C v) { return vm::exp(v); }, &k_exp); return true;
      case UnaryOp::log: go([](C v) { return std::log(v); }, nullptr); return true;
      case UnaryOp::log1p: go([](C v) { return std::log1p(v); }, nullptr); return true;
      case UnaryOp::sqrt: go([](C v) { return std::sqrt(v); }, &k_sqrt); return true;
      case UnaryOp::rsqrt: go([](C v) { return C(1) / std::sqrt(v); }, &k_rsqrt); return true;
      case UnaryOp::reciprocal: go([](C v) { return C(1) / v; }, &k_reciprocal); return true;
      case UnaryOp::sin: go([](C v) { return std::sin(v); }, nullptr); return true;
      case UnaryOp::cos: go([](C v) { return std::cos(v); }, nullptr); return true;
      case UnaryOp::erf: go([](C v) { return vm::erf(v); }, &k_erf); return true;
      case UnaryOp::tanh: go([](C v) { return vm::tanh(v); }, &k_tanh); return true;
      case UnaryOp::sigmoid: go([](C v) { return vm::sigmoid(v); }, &k_sigmoid); return true;
      case UnaryOp::gelu: go([](C v) { return vm::gelu(v); }, k_gelu, k_gelu_stream); return true;
      case UnaryOp::gelu_tanh: go([](C v) { return vm::gelu_tanh(v); }, k_gelu_tanh, k_gelu_tanh_stream); return true;
      case UnaryOp::silu: go([](C v) { return vm::silu(v); }, &k_silu); return true;
      default: return false;
    }
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  const char* name = unary_name(op);
  switch (op) {
    case UnaryOp::isfinite:
    case UnaryOp::isnan:
    case UnaryOp::isinf:
      dispatch(x.dtype(), name, [&]<class T>() {
        using C = compute_t<T>;
        if constexpr (!std::is_floating_point_v<C>) {
          const bool v = op == UnaryOp::isfinite;
          unary_loop<bool, T>(out, x, [v](T) { return v; });
        } else if (op == UnaryOp::isfinite) {
          unary_loop<bool, T>(out, x, [](T v) { return std::isfinite(C(v)); });
        } else if (op == UnaryOp::isnan) {
          unary_loop<bool, T>(out, x, [](T v) { return C(v) != C(v); });
        } else {
          unary_loop<bool, T>(out, x, [](T v) { return std::isinf(C(v)); });
        }
      });
      return;
    case UnaryOp::logical_not: unary_loop<bool, bool>(out, x, [](bool v) { return !v; }); return;
    default: break;
  }
  const bool done = dispatch(out.dtype(), name,
                             [&]<class T>() { return numeric_unary<T>(op, out, x) || float_unary<T>(op, out, x); });
  EMBER_CHECK(done, DTypeError, name, ": dtype ", dtype_name(out.dtype()), " is not supported");
}

void clamp(const Tensor& out, const Tensor& x, const std::optional<Scalar>& lo_s, const std::optional<Scalar>& hi_s) {
  dispatch<kNumericTypes>(out.dtype(), "clamp", [&]<class T>() {
    using C = compute_t<T>;
    const C lo = lo_s ? lo_s->to<C>() : std::numeric_limits<C>::lowest();
    const C hi = hi_s ? hi_s->to<C>() : std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {
      // Absent bounds are infinities so that +-inf inputs pass unchanged.
      const C flo = lo_s ? lo : -std::numeric_limits<C>::infinity();
      const C fhi = hi_s ? hi : std::numeric_limits<C>::infinity();
      auto f = [flo, fhi](T v) {
        C c = C(v);
        c = c < flo ? flo : c;
        return static_cast<T>(c > fhi ? fhi : c);
      };
      if constexpr (std::is_same_v<T, float>) {
        unary_loop<float, float>(out, x, f,
                                 [flo, fhi](float* o, const float* p, int64_t n) { k_clamp(o, p, n, flo, fhi); });
      } else {
        unary_loop<T, T>(out, x, f);
      }
    } else {
      unary_loop<T, T>(out, x, [lo, hi](T v) {
        C c = v < lo ? lo : v;
        return static_cast<T>(c > hi ? hi : c);
      });
    }
  });
}

}  // namespace ember::cpu
