// Private to the CPU backend: branch-free f32 approximations of exp, expm1, tanh, sigmoid and
// erf that GCC vectorises (no libm calls in the loop). Every function is written as straight-line
// arithmetic plus selects so that a loop calling it compiles to SIMD code; max relative errors
// against the std:: functions are checked in tests/unit/test_elementwise.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EMBER_VM_HAVE_V4 1  // the vm::v4 AVX-512 functions below exist
#include <immintrin.h>
#endif

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

/// p * 2^n for an integer-valued n in [-252, 254], multiplying by two normal powers of two in
/// turn, so results in the subnormal range and just below overflow (p < 1, n = 128) come out right.
inline float scale_pow2(float p, float n) {
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  return (p * bits_as_float((n1 + 127) << 23)) * bits_as_float((n2 + 127) << 23);
}

// ln 2 split (Cody-Waite): n * kLn2Hi is exact for |n| < 2^15 because kLn2Hi has 9 significant bits.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

/// The shared core of exp and exp_nonpos: n = round(x log2 e) and e^r for r = x - n ln2
/// (|r| <= ln2/2) by its degree-7 Taylor polynomial (truncation error < 6e-9 relative), so that
/// e^x = e^r 2^n. x must be finite with |x log2 e| < 2^22. Always inlined: the ISA clones that
/// call it must vectorise the whole expression.
inline __attribute__((always_inline)) float exp_reduced(float x, float& n) {
  n = round_int(x * kLog2e);
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

/// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation
/// error < 6e-9 relative), scaled by 2^n. Overflows to inf above 88.72, underflows gradually.
inline float exp(float x) {
  const bool nan = x != x;
  float xc = nan ? 0.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  xc = xc > 89.0f ? 89.0f : xc;
  float n;
  const float p = exp_reduced(xc, n);
  const float y = scale_pow2(p, n);
  return nan ? x : y;
}

/// e^x for x <= 0, flushing results below 1.6e-38 (x < -87) to 0: the inner exp of GELU, cheaper
/// than exp() (no NaN select, no overflow clamp, a single scaling since n >= -126). NaN
/// propagates through the polynomial.
inline float exp_nonpos(float x_in) {
  const float x = x_in < -87.0f ? -87.0f : x_in;
  float n;
  const float p = exp_reduced(x, n);
  const float y = p * bits_as_float((static_cast<int32_t>(n) + 127) << 23);
  return x_in < -87.0f ? 0.0f : y;
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
  const float s = scale_pow2(1.0f, n);
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

/// erfc(a) e^{a^2} for a in [0, 4] as a polynomial in u = (a - 2) / 2: a Chebyshev interpolant of
/// degree 14 (max relative error 1.5e-7 in exact arithmetic, 3e-7 evaluated in f32), generated
/// offline from long-double erfc.
inline float erfcx_0_4(float u) {
  float p = 1.019315715e-03f;
  p = p * u + -2.067093064e-03f;
  p = p * u + 2.913997071e-04f;
  p = p * u + -2.774654354e-04f;
  p = p * u + 5.663295740e-03f;
  p = p * u + -1.027848406e-02f;
  p = p * u + 1.387189946e-02f;
  p = p * u + -2.282375153e-02f;
  p = p * u + 3.800306340e-02f;
  p = p * u + -5.879173145e-02f;
  p = p * u + 8.704383485e-02f;
  p = p * u + -1.236683315e-01f;
  p = p * u + 1.672112255e-01f;
  p = p * u + -2.135933756e-01f;
  p = p * u + 2.553956763e-01f;
  return p;
}

/// erf: an odd Taylor polynomial below |x| = 1 (truncation error 1e-9); above,
/// erf = 1 - e^{-x^2} erfcx(x) with the fit above.
inline float erf(float x) {
  const float a0 = x < 0.0f ? -x : x;
  // Small branch: 2/sqrt(pi) * sum_k (-1)^k a^(2k+1) / (k! (2k+1)), k <= 10.
  const float as = a0 < 1.0f ? a0 : 1.0f;
  const float z = as * as;
  float p = -1.0f / 76204800.0f;  // k=10: 1/(10! * 21)
  p = p * z + 1.0f / 6894720.0f;  // k=9
  p = p * z - 1.0f / 685440.0f;   // k=8
  p = p * z + 1.0f / 75600.0f;    // k=7
  p = p * z - 1.0f / 9360.0f;     // k=6
  p = p * z + 1.0f / 1320.0f;     // k=5
  p = p * z - 1.0f / 216.0f;      // k=4
  p = p * z + 1.0f / 42.0f;       // k=3
  p = p * z - 1.0f / 10.0f;       // k=2
  p = p * z + 1.0f / 3.0f;        // k=1 (negated below)
  p = p * z;                      // sum_{k>=1} ... without sign of k=1
  const float small = (as - as * p) * 1.12837916709551257f;
  // Large branch.
  float al = a0 < 1.0f ? 1.0f : a0;
  al = al > 4.0f ? 4.0f : al;  // erf rounds to 1 beyond 3.92
  const float large = 1.0f - exp(-(al * al)) * erfcx_0_4((al - 2.0f) * 0.5f);
  const float r = a0 < 1.0f ? small : large;
  const float rs = x < 0.0f ? -r : r;
  return x != x ? x : rs;
}

/// The standard normal CDF Phi(x), accurate in relative terms in both tails: with a = |x| / sqrt 2,
/// Phi(-|x|) = 0.5 e^{-a^2} erfcx(a) has no cancellation, and Phi(|x|) = 1 - Phi(-|x|) >= 0.5.
/// Also returns the pdf phi(x) = e^{-a^2} / sqrt(2 pi), which shares the exponential. Beyond
/// |x| = 4 sqrt 2 (Phi < 8e-9) erfcx is held at a = 4, so the far negative tail is only
/// absolutely accurate (error < 1e-8).
template <bool kFma = false>
inline float normal_cdf(float x, float* pdf) {
  const float ax = x < 0.0f ? -x : x;
  const float a = ax * 0.70710678118654752f;
  const float ac = a > 4.0f ? 4.0f : a;
  // e^{-x^2/2} needs x^2 to more than f32 precision (a rounding error d in x^2 becomes a relative
  // error d/2 in the result, 1e-6 at |x| = 5.6): x^2 = hi + lo exactly, then e^{-lo/2} = 1 - lo/2.
  // With FMA, lo = fma(x, x, -hi); without, Dekker's splitting. |x| is capped at 64 (where the
  // exponential is already 0) so the split cannot overflow.
  const float xc = ax > 64.0f ? 64.0f : ax;
  const float hi = xc * xc;
  float lo;
  if constexpr (kFma) {
    lo = __builtin_fmaf(xc, xc, -hi);
  } else {
    const float c = 4097.0f * xc;
    const float xh = c - (c - xc);
    const float xl = xc - xh;
    lo = ((xh * xh - hi) + 2.0f * xh * xl) + xl * xl;
  }
  const float e = exp_nonpos(-0.5f * hi) * (1.0f - 0.5f * lo);
  const float tail = 0.5f * e * erfcx_0_4((ac - 2.0f) * 0.5f);
  *pdf = e * 0.39894228040143268f;
  return x < 0.0f ? tail : 1.0f - tail;
}

// f64 uses the std:: functions (accuracy first; f64 is not the hot path).
inline double exp(double x) { return std::exp(x); }
inline double tanh(double x) { return std::tanh(x); }
inline double erf(double x) { return std::erf(x); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---- activations and their derivatives (float: vectorisable; double: std::)
/// GELU, erf form: x Phi(x). kFma = true only where the caller is compiled with FMA (else
/// __builtin_fmaf would be a libm call).
template <bool kFma = false>
inline float gelu(float x) {
  float pdf;
  return x * normal_cdf<kFma>(x, &pdf);
}
inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752)); }
/// d/dx [x Phi(x)] = Phi(x) + x phi(x).
template <bool kFma = false>
inline float gelu_grad(float x) {
  float pdf;
  const float cdf = normal_cdf<kFma>(x, &pdf);
  return cdf + x * pdf;
}
inline double gelu_grad(double x) {
  const double cdf = 0.5 * (1.0 + std::erf(x * 0.70710678118654752));
  return cdf + x * std::exp(-0.5 * x * x) * 0.39894228040143268;
}

// GELU, tanh form: 0.5 x (1 + tanh u) with u = k (x + c x^3), k = sqrt(2 / pi), c = 0.044715.
// Since 0.5 (1 + tanh u) = sigmoid(2u), this is x sigmoid(2u): one exp and one division.
constexpr double kGeluK = 0.79788456080286536;
constexpr double kGeluC = 0.044715;
template <class C>
inline C gelu_tanh(C x) {
  // 2u = x (2k + 2kc x^2): three roundings, since e^{-2u} magnifies the error of 2u.
  const C u2 = x * (C(2 * kGeluK) + C(2 * kGeluK * kGeluC) * (x * x));
  return x * sigmoid(u2);
}
/// With s = sigmoid(2u): d/dx = s + 2 x s (1 - s) u'(x), u' = k (1 + 3 c x^2).
template <class C>
inline C gelu_tanh_grad(C x) {
  const C x2 = x * x;
  const C s = sigmoid(x * (C(2 * kGeluK) + C(2 * kGeluK * kGeluC) * x2));
  const C du = C(kGeluK) * (C(1) + C(3 * kGeluC) * x2);
  return s + C(2) * x * s * (C(1) - s) * du;
}
template <class C>
inline C silu(C x) {
  return x * sigmoid(x);
}
/// sigma(x) (1 + x (1 - sigma(x))).
template <class C>
inline C silu_grad(C x) {
  const C s = sigmoid(x);
  return s * (C(1) + x * (C(1) - s));
}


// ---- AVX-512 GELU (x86-64-v4 only)
// GELU is compute-bound on this class of CPU (512-bit ops may be double-pumped), so the v4 loops
// use what the portable code above cannot express: vscalefps for 2^n (no integer exponent
// arithmetic or overflow clamps), vrcp14ps + one Newton step instead of vdivps, vfixupimmps for
// the one special value the formulas get wrong, and a degree-6 exp polynomial. Callers must be
// compiled for x86-64-v4 (EMBER_TARGET_V4); the NaN/inf results match the portable functions.
#if EMBER_VM_HAVE_V4
namespace v4 {

#define EMBER_VM_V4_INLINE inline __attribute__((target("arch=x86-64-v4"), always_inline))
// The all-lanes masked forms (kAll) compile to the plain instructions; the unmasked intrinsics of
// GCC 12 start from _mm512_undefined_ps() and trip -Wmaybe-uninitialized.
constexpr __mmask16 kAll = 0xFFFF;

/// e^z for z in [-2^14, 88] (callers clamp): z = n ln2 + r, |r| <= ln2/2, e^r by a degree-6
/// Chebyshev fit (relative error 2e-8), scaled by vscalefps. With kLo, e^{z - lo/2}: lo/2 is a
/// correction to z below f32 resolution (the low part of x^2 for e^{-x^2/2}), added to r.
/// kDeg5 (GELU's erf form): a degree-5 fit instead (relative error 1.0e-7, mpmath Chebyshev fit).
template <bool kLo, bool kDeg5 = false>
EMBER_VM_V4_INLINE __m512 exp_core(__m512 z, __m512 lo) {
  const __m512 kShift = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23: round to nearest integer
  const __m512 k = _mm512_fmadd_ps(z, _mm512_set1_ps(kLog2e), kShift);
  const __m512 n = _mm512_sub_ps(k, kShift);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), z);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  if constexpr (kLo) r = _mm512_fnmadd_ps(lo, _mm512_set1_ps(0.5f), r);
  if constexpr (kDeg5) {
    __m512 p = _mm512_set1_ps(8.369148491e-03f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.191750725e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666650526e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999886938e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000011e+00f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000075e+00f));
    return _mm512_maskz_scalef_ps(kAll, p, n);
  }
  __m512 p = _mm512_set1_ps(1.394110848e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.375125937e-03f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166635126e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666641533e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(kAll, p, n);
}

/// 0.5 erfcx(a / sqrt 2) for a in [0, 5.7] in 29 pieces: piece i = round(5 a) holds a degree-4
/// polynomial in t = 5 a - i, |t| <= 1/2, a Chebyshev fit (max relative error 2.5e-8 in exact
/// arithmetic) generated offline with mpmath; lanes 29..31 are unused. Row k holds the
/// coefficients of t^(4 - k).
alignas(64) inline constexpr float kGeluTailPoly[5][32] = {
{9.000671133e-05f, 6.607902444e-05f, 4.436574949e-05f, 3.030177820e-05f, 2.103511337e-05f, 1.482893125e-05f, 1.060736918e-05f, 7.693018249e-06f, 5.652623662e-06f, 4.204899928e-06f, 3.164586039e-06f, 2.407978060e-06f, 1.851383796e-06f, 1.437465982e-06f, 1.126469069e-06f, 8.905103354e-07f, 7.098188641e-07f, 5.702282395e-07f, 4.614859252e-07f, 3.761007981e-07f, 3.085492606e-07f, 2.547228384e-07f, 2.115400813e-07f, 1.766713606e-07f, 1.483419809e-07f, 1.251901118e-07f, 1.061634328e-07f, 9.044334859e-08f, 7.738899788e-08f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f},
{-1.059561914e-03f, -7.388328170e-04f, -5.209368318e-04f, -3.734646570e-04f, -2.719704566e-04f, -2.010018104e-04f, -1.506259958e-04f, -1.143551677e-04f, -8.788622460e-05f, -6.832309450e-05f, -5.368930123e-05f, -4.261791488e-05f, -3.415151606e-05f, -2.761137121e-05f, -2.251074984e-05f, -1.849676801e-05f, -1.531090073e-05f, -1.276186145e-05f, -1.070676997e-05f, -9.037937487e-06f, -7.673499674e-06f, -6.550712966e-06f, -5.621112399e-06f, -4.846983021e-06f, -4.198766674e-06f, -3.653140664e-06f, -3.191583138e-06f, -2.799293857e-06f, -2.464376498e-06f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f},
{9.999241921e-03f, 7.332410990e-03f, 5.468487252e-03f, 4.143553743e-03f, 3.186385564e-03f, 2.484284797e-03f, 1.961848492e-03f, 1.567832607e-03f, 1.266890280e-03f, 1.034293359e-03f, 8.525087238e-04f, 7.089454139e-04f, 5.944515664e-04f, 5.022983070e-04f, 4.274841142e-04f, 3.662528114e-04f, 3.157557165e-04f, 2.738122192e-04f, 2.387383173e-04f, 2.092225873e-04f, 1.842356017e-04f, 1.629631661e-04f, 1.447566807e-04f, 1.290959236e-04f, 1.155609245e-04f, 1.038105442e-04f, 9.356604321e-05f, 8.459838790e-05f, 7.671837857e-05f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f},
{-7.978840890e-02f, -6.261875870e-02f, -4.992621490e-02f, -4.038754062e-02f, -3.310811452e-02f, -2.747277790e-02f, -2.305173401e-02f, -1.954012289e-02f, -1.671859039e-02f, -1.442715819e-02f, -1.254765215e-02f, -1.099171908e-02f, -9.692544923e-03f, -8.599057675e-03f, -7.671820160e-03f, -6.880086264e-03f, -6.199667737e-03f, -5.611372128e-03f, -5.099847484e-03f, -4.652719738e-03f, -4.259942804e-03f, -3.913304684e-03f, -3.606049058e-03f, -3.332583063e-03f, -3.088249964e-03f, -2.869151024e-03f, -2.672004987e-03f, -2.494036517e-03f, -2.332887061e-03f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f},
{4.999999995e-01f, 4.292398082e-01f, 3.732771711e-01f, 3.283405945e-01f, 2.917519514e-01f, 2.615782919e-01f, 2.364029520e-01f, 2.151725848e-01f, 1.970933095e-01f, 1.815591476e-01f, 1.681020012e-01f, 1.563562147e-01f, 1.460331444e-01f, 1.369026866e-01f, 1.287797051e-01f, 1.215139484e-01f, 1.149824808e-01f, 1.090839463e-01f, 1.037341781e-01f, 9.886281059e-02f, 9.441064130e-02f, 9.032756096e-02f, 8.657091690e-02f, 8.310420967e-02f, 7.989604793e-02f, 7.691930498e-02f, 7.415043368e-02f, 7.156890695e-02f, 6.915675801e-02f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f},
};

/// Row `row` of kGeluTailPoly, lane j taking entry idx[j] & 31.
EMBER_VM_V4_INLINE __m512 gelu_tail_coef(int row, __m512i idx) {
  return _mm512_permutex2var_ps(_mm512_load_ps(kGeluTailPoly[row]), idx, _mm512_load_ps(kGeluTailPoly[row] + 16));
}

/// GELU, erf form, x Phi(x), the same scheme as normal_cdf(): tail = Phi(-|x|) = 0.5 e^{-x^2/2}
/// erfcx(|x| / sqrt 2), Phi(x) = x < 0 ? tail : 1 - tail, the erfcx factor from the piecewise
/// table above (the piece chosen by vpermt2ps), held at |x| = 4 sqrt 2 beyond. +inf gives
/// inf * 1, -inf gives -inf * 0 = NaN, NaN propagates through the final product.
EMBER_VM_V4_INLINE __m512 gelu(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 xc = _mm512_maskz_min_ps(kAll, ax, _mm512_set1_ps(64.0f));  // e^{-x^2/2} is 0 long before 64
  const __m512 hi = _mm512_mul_ps(xc, xc);
  const __m512 lo = _mm512_fmsub_ps(xc, xc, hi);  // x^2 = hi + lo exactly
  const __m512 e = exp_core<true, true>(_mm512_mul_ps(hi, _mm512_set1_ps(-0.5f)), lo);
  // Piece index i = round(5 a) in the low 5 bits of k (1.5 * 2^23 shift), t = 5 a - i.
  const __m512 a = _mm512_maskz_min_ps(kAll, xc, _mm512_set1_ps(5.656854249f));
  const __m512 kShift = _mm512_set1_ps(12582912.0f);
  const __m512 k = _mm512_fmadd_ps(a, _mm512_set1_ps(5.0f), kShift);
  const __m512 t = _mm512_fmsub_ps(a, _mm512_set1_ps(5.0f), _mm512_sub_ps(k, kShift));
  const __m512i idx = _mm512_castps_si512(k);
  __m512 q = gelu_tail_coef(0, idx);
  q = _mm512_fmadd_ps(q, t, gelu_tail_coef(1, idx));
  q = _mm512_fmadd_ps(q, t, gelu_tail_coef(2, idx));
  q = _mm512_fmadd_ps(q, t, gelu_tail_coef(3, idx));
  q = _mm512_fmadd_ps(q, t, gelu_tail_coef(4, idx));
  const __m512 tail = _mm512_mul_ps(e, q);  // q carries the factor 0.5
  const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 cdf = _mm512_mask_sub_ps(tail, pos, _mm512_set1_ps(1.0f), tail);
  return _mm512_mul_ps(x, cdf);
}

/// GELU, tanh form: x sigmoid(2u) = x / (1 + e^{-2u}), 1/d by vrcp14ps (2^-14) and one Newton
/// step. x is raised to -10 first (the result there is -6e-38, below that it only shrinks; the
/// portable code gives -0), which keeps e^{-2u} < e^{87.3} and d finite; -2u is lowered to -104
/// so e^{-2u} -> 0 for +inf. -inf, which the portable code maps to -inf * 0 = NaN, is fixed up.
EMBER_VM_V4_INLINE __m512 gelu_tanh(__m512 x) {
  const __m512 xc = _mm512_maskz_max_ps(kAll, _mm512_set1_ps(-10.0f), x);  // this operand order keeps NaN
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  const __m512 t = _mm512_fmadd_ps(x2, _mm512_set1_ps(float(-2 * kGeluK * kGeluC)), _mm512_set1_ps(float(-2 * kGeluK)));
  const __m512 z = _mm512_maskz_max_ps(kAll, _mm512_mul_ps(xc, t), _mm512_set1_ps(-104.0f));  // -2u
  const __m512 e = exp_core<false>(z, z);
  const __m512 d = _mm512_add_ps(e, _mm512_set1_ps(1.0f));
  const __m512 r0 = _mm512_maskz_rcp14_ps(kAll, d);
  const __m512 err = _mm512_fnmadd_ps(d, r0, _mm512_set1_ps(1.0f));  // 1 - d r0, |err| < 2^-14
  const __m512 y = _mm512_mul_ps(xc, _mm512_fmadd_ps(r0, err, r0));
  // vfixupimmps token table, 4 bits per class of x: class 4 (-inf) -> token 3 (default NaN).
  return _mm512_fixupimm_ps(y, x, _mm512_set1_epi32(0x00030000), 0);
}

#undef EMBER_VM_V4_INLINE

}  // namespace v4
#endif
}  // namespace ember::cpu::vm
