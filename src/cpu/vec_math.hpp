// Private to the CPU backend: branch-free f32 approximations of exp, expm1, tanh, sigmoid and
// erf that GCC vectorises (no libm calls in the loop). Every function is written as straight-line
// arithmetic plus selects so that a loop calling it compiles to SIMD code; max relative errors
// against the std:: functions are checked in tests/unit/test_elementwise.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ember::cpu::vm {

inline float bits_as_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}

/// Round to nearest integer (ties to even) for |x| < 2^22 without SSE4.1: adding 1.5 * 2^23
/// pushes the fraction bits out of the mantissa.
inline float round_int(float x) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  return (x + kShift) - kShift;
}

/// 2^n for an integer-valued n in [-252, 254], as the product of two normal powers of two so
/// results in the subnormal range and up to overflow come out right.
inline float pow2i(float n) {
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  return bits_as_float((n1 + 127) << 23) * bits_as_float((n2 + 127) << 23);
}

// ln 2 split (Cody-Waite): n * kLn2Hi is exact for |n| < 2^15 because kLn2Hi has 9 significant bits.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

/// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation
/// error < 6e-9 relative), scaled by 2^n. Overflows to inf above 88.72, underflows gradually.
inline float exp(float x) {
  const bool nan = x != x;
  float xc = nan ? 0.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  xc = xc > 89.0f ? 89.0f : xc;
  const float n = round_int(xc * kLog2e);
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float y = p * pow2i(n);
  return nan ? x : y;
}

/// e^y - 1 for y in [0, 20] (the range tanh needs), accurate near 0: with y = n ln2 + r,
/// e^y - 1 = 2^n (e^r - 1) + (2^n - 1), where both parts are computed without cancellation.
inline float expm1_nonneg(float y) {
  const float n = round_int(y * kLog2e);
  float r = y - n * kLn2Hi;
  r = r - n * kLn2Lo;
  // (e^r - 1 - r) / r^2 by Taylor terms up to r^6 / 8!.
  float p = 1.0f / 40320;
  p = p * r + 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  const float q = (r * r) * p + r;
  const float s = pow2i(n);
  return s * q + (s - 1.0f);
}

/// tanh via expm1 (tanh a = m / (m + 2), m = e^{2a} - 1), accurate for small |x| too.
inline float tanh(float x) {
  float a = x < 0.0f ? -x : x;
  a = a > 9.0f ? 9.0f : a;  // tanh(9) rounds to 1 in f32; keeps e^{2a} finite. NaN passes.
  const float m = expm1_nonneg(a + a);
  const float t = m / (m + 2.0f);
  return x < 0.0f ? -t : t;
}

/// 1 / (1 + e^-x).
inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

/// erf: an odd Taylor polynomial below |x| = 1; above, erf = 1 - e^{-x^2} h(x) with h(x) =
/// erfc(x) e^{x^2} given by a fitted polynomial in u = (x - 3) / 2 on [1, 5].
inline float erfc_scaled_fit(float u) {
  // Chebyshev interpolant of degree 14 (max relative error 4e-9 in exact arithmetic), as
  // monomial coefficients in u; generated offline from long-double erfc.
  float p = 2.383124212e-05f;
  p = p * u + -5.618103272e-05f;
  p = p * u + 4.098615324e-05f;
  p = p * u + -8.682337379e-05f;
  p = p * u + 3.126815451e-04f;
  p = p * u + -6.714324864e-04f;
  p = p * u + 1.310528067e-03f;
  p = p * u + -2.669757491e-03f;
  p = p * u + 5.348954653e-03f;
  p = p * u + -1.037563555e-02f;
  p = p * u + 1.956848541e-02f;
  p = p * u + -3.583510942e-02f;
  p = p * u + 6.353748839e-02f;
  p = p * u + -1.087445291e-01f;
  p = p * u + 1.790011512e-01f;
  return p;
}

/// erf(x), see above.
inline float erf(float x) {
  const float a0 = x < 0.0f ? -x : x;
  // Small branch: 2/sqrt(pi) * sum_k (-1)^k a^(2k+1) / (k! (2k+1)), k <= 10.
  const float as = a0 < 1.0f ? a0 : 1.0f;
  const float z = as * as;
  float p = -1.0f / 76204800.0f;               // k=10: 1/(10! * 21)
  p = p * z + 1.0f / 6894720.0f;               // k=9
  p = p * z - 1.0f / 685440.0f;                // k=8
  p = p * z + 1.0f / 75600.0f;                 // k=7
  p = p * z - 1.0f / 9360.0f;                  // k=6
  p = p * z + 1.0f / 1320.0f;                  // k=5
  p = p * z - 1.0f / 216.0f;                   // k=4
  p = p * z + 1.0f / 42.0f;                    // k=3
  p = p * z - 1.0f / 10.0f;                    // k=2
  p = p * z + 1.0f / 3.0f;                     // k=1 (negated below)
  p = p * z;                                   // sum_{k>=1} ... without sign of k=1
  const float small = (as - as * p) * 1.12837916709551257f;
  // Large branch.
  float al = a0 < 1.0f ? 1.0f : a0;
  al = al > 5.0f ? 5.0f : al;
  const float h = erfc_scaled_fit((al - 3.0f) * 0.5f);
  const float large = 1.0f - exp(-(al * al)) * h;
  const float r = a0 < 1.0f ? small : large;
  const float rs = x < 0.0f ? -r : r;
  return x != x ? x : rs;
}

// f64 uses the std:: functions (accuracy first; f64 is not the hot path).
inline double exp(double x) { return std::exp(x); }
inline double tanh(double x) { return std::tanh(x); }
inline double erf(double x) { return std::erf(x); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Activations and their derivatives, for C = float (vectorisable) or double.
template <class C>
inline C gelu(C x) {
  return C(0.5) * x * (C(1) + vm::erf(x * C(0.70710678118654752)));
}
/// d/dx [x Phi(x)] = Phi(x) + x phi(x).
template <class C>
inline C gelu_grad(C x) {
  const C cdf = C(0.5) * (C(1) + vm::erf(x * C(0.70710678118654752)));
  const C pdf = vm::exp(C(-0.5) * x * x) * C(0.39894228040143268);
  return cdf + x * pdf;
}
// tanh form: 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2 / pi).
template <class C>
inline C gelu_tanh(C x) {
  const C inner = C(0.79788456080286536) * (x + C(0.044715) * x * x * x);
  return C(0.5) * x * (C(1) + vm::tanh(inner));
}
template <class C>
inline C gelu_tanh_grad(C x) {
  const C x2 = x * x;
  const C t = vm::tanh(C(0.79788456080286536) * (x + C(0.044715) * x2 * x));
  const C dinner = C(0.79788456080286536) * (C(1) + C(3 * 0.044715) * x2);
  return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
}
template <class C>
inline C silu(C x) {
  return x * vm::sigmoid(x);
}
/// sigma(x) (1 + x (1 - sigma(x))).
template <class C>
inline C silu_grad(C x) {
  const C s = vm::sigmoid(x);
  return s * (C(1) + x * (C(1) - s));
}

}  // namespace ember::cpu::vm
