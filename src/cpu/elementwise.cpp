// CPU binary elementwise kernels (arithmetic, comparisons, logical ops, fused activation
// gradients) and where.
#include <cmath>
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

// Contiguous f32 kernels, one ISA clone each (see EMBER_SIMD_CLONES).
EMBER_DEFINE_F32_BINARY(k_add, a + alpha * b)
EMBER_DEFINE_F32_BINARY(k_sub, a - alpha * b)
EMBER_DEFINE_F32_BINARY(k_mul, a* b)
EMBER_DEFINE_F32_BINARY(k_div, a / b)
EMBER_DEFINE_F32_BINARY(k_maximum, (a > b || a != a) ? a : b)
EMBER_DEFINE_F32_BINARY(k_minimum, (a < b || a != a) ? a : b)
EMBER_DEFINE_F32_BINARY(k_threshold_backward, b > 0.0f ? a : 0.0f)
EMBER_DEFINE_F32_BINARY(k_tanh_backward, a*(1.0f - b * b))
EMBER_DEFINE_F32_BINARY(k_sigmoid_backward, a* b*(1.0f - b))
EMBER_DEFINE_F32_BINARY_ISA(k_gelu_backward, a* vm::gelu_grad<kFma>(b))
EMBER_DEFINE_F32_BINARY(k_gelu_tanh_backward, a* vm::gelu_tanh_grad(b))
EMBER_DEFINE_F32_BINARY(k_silu_backward, a* vm::silu_grad(b))

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
    case BinaryOp::pow: return "pow";
    case BinaryOp::eq: return "eq";
    case BinaryOp::ne: return "ne";
    case BinaryOp::lt: return "lt";
    case BinaryOp::le: return "le";
    case BinaryOp::gt: return "gt";
    case BinaryOp::ge: return "ge";
    case BinaryOp::logical_and: return "logical_and";
    case BinaryOp::logical_or: return "logical_or";
    case BinaryOp::threshold_backward: return "relu_backward";
    case BinaryOp::tanh_backward: return "tanh_backward";
    case BinaryOp::sigmoid_backward: return "sigmoid_backward";
    case BinaryOp::gelu_backward: return "gelu_backward";
    case BinaryOp::gelu_tanh_backward: return "gelu_backward";
    case BinaryOp::silu_backward: return "silu_backward";
  }
  return "binary";
}

/// Integer power by squaring; negative exponents give 1, -1 or 0 (the integer part of 1/b^-e).
template <class T>
T int_pow(T base, T e) {
  if constexpr (std::is_signed_v<T>) {
    if (e < 0) {
      if (base == 1) return 1;
      if (base == -1) return (e & 1) ? T(-1) : T(1);
      return 0;
    }
  }
  T r = 1;
  while (e) {
    if (e & 1) r = static_cast<T>(r * base);
    base = static_cast<T>(base * base);
    e = static_cast<T>(e >> 1);
  }
  return r;
}

template <class T>
void arith(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha_s) {
  using C = compute_t<T>;
  const C alpha = alpha_s.to<C>();
  auto run = [&](auto f, const F32BinaryKernels* k) { binary_loop<T, T>(out, a, b, f, k, static_cast<float>(alpha)); };
  switch (op) {
    case BinaryOp::add: run([alpha](T x, T y) { return static_cast<T>(C(x) + alpha * C(y)); }, &k_add); return;
    case BinaryOp::sub:
      if constexpr (std::is_same_v<T, bool>)
        break;
      else
        run([alpha](T x, T y) { return static_cast<T>(C(x) - alpha * C(y)); }, &k_sub);
      return;
    case BinaryOp::mul: run([](T x, T y) { return static_cast<T>(C(x) * C(y)); }, &k_mul); return;
    case BinaryOp::div:
      if constexpr (!std::is_floating_point_v<C>)
        break;
      else
        run([](T x, T y) { return static_cast<T>(C(x) / C(y)); }, &k_div);
      return;
    case BinaryOp::maximum:
      run(
          [](T x, T y) {
            const C u = C(x), v = C(y);
            return static_cast<T>((u > v || u != u) ? u : v);
          },
          &k_maximum);
      return;
    case BinaryOp::minimum:
      run(
          [](T x, T y) {
            const C u = C(x), v = C(y);
            return static_cast<T>((u < v || u != u) ? u : v);
          },
          &k_minimum);
      return;
    case BinaryOp::pow:
      if constexpr (std::is_same_v<T, bool>)
        break;
      else if constexpr (std::is_floating_point_v<C>)
        run([](T x, T y) { return static_cast<T>(std::pow(C(x), C(y))); }, nullptr);
      else
        run([](T x, T y) { return int_pow<T>(x, y); }, nullptr);
      return;
    default: break;
  }
  EMBER_THROW(DTypeError, binary_name(op), ": dtype ", dtype_name(dtype_of_v<T>), " is not supported");
}

template <class T>
void compare(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::eq: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) == C(y); }); return;
    case BinaryOp::ne: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) != C(y); }); return;
    case BinaryOp::lt: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) < C(y); }); return;
    case BinaryOp::le: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) <= C(y); }); return;
    case BinaryOp::gt: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) > C(y); }); return;
    case BinaryOp::ge: binary_loop<bool, T>(out, a, b, [](T x, T y) { return C(x) >= C(y); }); return;
    default: break;
  }
}

template <class T>
void activation_backward(BinaryOp op, const Tensor& out, const Tensor& g, const Tensor& v) {
  using C = compute_t<T>;
  auto run = [&](auto f, const F32BinaryKernels* k) { binary_loop<T, T>(out, g, v, f, k); };
  switch (op) {
    case BinaryOp::threshold_backward:
      run([](T x, T y) { return C(y) > C(0) ? x : T(C(0)); }, &k_threshold_backward);
      return;
    case BinaryOp::tanh_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * (C(1) - C(y) * C(y))); }, &k_tanh_backward);
      return;
    case BinaryOp::sigmoid_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * C(y) * (C(1) - C(y))); }, &k_sigmoid_backward);
      return;
    case BinaryOp::gelu_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::gelu_grad(C(y))); }, &k_gelu_backward);
      return;
    case BinaryOp::gelu_tanh_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::gelu_tanh_grad(C(y))); }, &k_gelu_tanh_backward);
      return;
    case BinaryOp::silu_backward:
      run([](T x, T y) { return static_cast<T>(C(x) * vm::silu_grad(C(y))); }, &k_silu_backward);
      return;
    default: break;
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha) {
  const char* name = binary_name(op);
  switch (op) {
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge: dispatch(a.dtype(), name, [&]<class T>() { compare<T>(op, out, a, b); }); return;
    case BinaryOp::logical_and: binary_loop<bool, bool>(out, a, b, [](bool x, bool y) { return x && y; }); return;
    case BinaryOp::logical_or: binary_loop<bool, bool>(out, a, b, [](bool x, bool y) { return x || y; }); return;
    case BinaryOp::threshold_backward:
    case BinaryOp::tanh_backward:
    case BinaryOp::sigmoid_backward:
    case BinaryOp::gelu_backward:
    case BinaryOp::gelu_tanh_backward:
    case BinaryOp::silu_backward:
      dispatch<kFloatingTypes>(out.dtype(), name, [&]<class T>() { activation_backward<T>(op, out, a, b); });
      return;
    default: dispatch(out.dtype(), name, [&]<class T>() { arith<T>(op, out, a, b, alpha); }); return;
  }
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  std::array<char*, 4> base;
  std::array<Shape, 4> st;
  operands<4>({&out, &cond, &a, &b}, out.shape(), base, st);
  dispatch(out.dtype(), "where", [&]<class T>() {
    strided_loop<4>(out.shape(), base, st, [](std::array<char*, 4> p, const std::array<int64_t, 4>& s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
        T* o = reinterpret_cast<T*>(p[0]);
        const bool* c = reinterpret_cast<const bool*>(p[1]);
        const T* x = reinterpret_cast<const T*>(p[2]);
        const T* y = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            c ? *reinterpret_cast<const T*>(p[2] + i * s[2]) : *reinterpret_cast<const T*>(p[3] + i * s[3]);
      }
    });
  });
}

}  // namespace ember::cpu
