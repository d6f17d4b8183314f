// Random fills on the device with the CPU's Philox stream (src/ops/random.cpp, "Stream layout"):
// the same counters, the same counter -> element mapping and the same word -> value conversions,
// so that a (seed, offset) gives the same tensor on both devices.
//
// Exactness. uniform_, rand, randint and bernoulli_ are bit-identical to the CPU: their
// conversions are integer arithmetic, exact float operations (a 24-bit integer times a power of
// two), and one float (or double) multiply and one add written as __fmul_rn/__fadd_rn
// (__dmul_rn/__dadd_rn) so that nvcc cannot contract them into an FMA (the CPU build targets
// baseline x86-64, which has none); 16-bit results round through ember::Half / ember::BFloat16,
// the very host/device code the CPU uses. int64 -> float/double conversions round to nearest
// (__ll2float_rn / __ll2double_rn, as cvtsi2ss/cvtsi2sd under the default MXCSR).
// randn / normal_ use every operation of the CPU's formula with explicit rounding too, except
// log and cos: the device's logf/cosf (CUDA: at most 1 and 2 ulp) and log/cos (1 and 2 ulp)
// against glibc's (under 1 ulp each), so z = sqrt(-2 ln u1) cos(2 pi u2) differs from the CPU's
// by a few ulp of its type (16-bit types: at most one ulp after rounding, and usually not at
// all). Nothing here is compiled with fast math.
//
// One thread per Philox counter: four elements of one word each, or two of two words, written
// as one vector store when the output is aligned for it.
#include <numbers>
#include <type_traits>

#include "common.cuh"
#include "cuda/kernels.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/half.hpp"

namespace ember::cuda_backend::kernels {
namespace {

/// An int64 value in element type T, rounded to nearest (the CPU's static_cast<T>(compute_t<T>(v))).
template <class T>
__device__ __forceinline__ T from_int64(int64_t v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(v);
  else if constexpr (std::is_same_v<T, double>)
    return __ll2double_rn(static_cast<long long>(v));
  else
    return T(__ll2float_rn(static_cast<long long>(v)));  // float, Half, BFloat16 (from float, RNE)
}

// ---- Per-element conversions (functors: one word, or two words a, b). Each mirrors the lambda
// of the same fill in src/ops/random.cpp.

/// rand / uniform_ for f32, f16, bf16: lo + span * u in float, u with the bits T holds.
template <class T>
struct UniformFloat {
  float lo, span, hi;  // hi: float(T(float(high))), the bound a rounded value must stay below
  T lo_t;              // T(lo), what a value that rounds up to hi becomes
  __device__ T operator()(uint32_t x) const {
    float u;
    if constexpr (std::is_same_v<T, Half>)
      u = static_cast<float>(x >> 21) * (1.0f / 2048.0f);
    else if constexpr (std::is_same_v<T, BFloat16>)
      u = static_cast<float>(x >> 24) * (1.0f / 256.0f);
    else
      u = Philox::uniform(x);
    const T v = T(__fadd_rn(lo, __fmul_rn(span, u)));
    return static_cast<float>(v) >= hi && span > 0.0f ? lo_t : v;
  }
};

/// rand / uniform_ for f64: two words, 53 bits.
struct UniformDouble {
  double lo, span, hi;
  __device__ double operator()(uint32_t a, uint32_t b) const {
    const double v = __dadd_rn(lo, __dmul_rn(span, Philox::uniform_double(a, b)));
    return v >= hi && span > 0.0 ? lo : v;
  }
};

/// randn / normal_ for f32, f16, bf16: Box-Muller (cos branch) in float.
template <class T>
struct NormalFloat {
  float mean, std, two_pi;
  __device__ T operator()(uint32_t a, uint32_t b) const {
    const float u1 = 1.0f - Philox::uniform(a);  // exact: (0, 1]
    const float u2 = Philox::uniform(b);
    const float r = __fsqrt_rn(__fmul_rn(-2.0f, logf(u1)));
    const float z = __fmul_rn(r, cosf(__fmul_rn(two_pi, u2)));
    return T(__fadd_rn(mean, __fmul_rn(std, z)));
  }
};

/// randn / normal_ for f64: u1 = 1 - a 2^-32, u2 = b 2^-32, the same formula in double.
struct NormalDouble {
  double mean, std, two_pi;
  __device__ double operator()(uint32_t a, uint32_t b) const {
    constexpr double k2m32 = 1.0 / 4294967296.0;
    const double u1 = __dadd_rn(1.0, -__dmul_rn(static_cast<double>(a), k2m32));  // exact
    const double u2 = __dmul_rn(static_cast<double>(b), k2m32);                   // exact
    const double r = __dsqrt_rn(__dmul_rn(-2.0, log(u1)));
    const double z = __dmul_rn(r, cos(__dmul_rn(two_pi, u2)));
    return __dadd_rn(mean, __dmul_rn(std, z));
  }
};

/// randint with range <= 2^32: multiply-shift of one word.
template <class T>
struct RandintNarrow {
  int64_t lo;
  uint64_t range;
  __device__ T operator()(uint32_t x) const {
    const uint64_t r = (static_cast<uint64_t>(x) * range) >> 32;
    return from_int64<T>(static_cast<int64_t>(static_cast<uint64_t>(lo) + r));
  }
};

/// randint with range > 2^32: a 64-bit word modulo the range.
template <class T>
struct RandintWide {
  int64_t lo;
  uint64_t range;
  __device__ T operator()(uint32_t a, uint32_t b) const {
    const uint64_t r = ((static_cast<uint64_t>(a) << 32) | b) % range;
    return from_int64<T>(static_cast<int64_t>(static_cast<uint64_t>(lo) + r));
  }
};

/// bernoulli_: 1 when the 24-bit uniform is below p (compared in double, as the CPU).
template <class T>
struct Bernoulli {
  double p;
  __device__ T operator()(uint32_t x) const {
    return static_cast<double>(Philox::uniform(x)) < p ? static_cast<T>(1) : static_cast<T>(0);
  }
};

/// out[i] for i in [0, n): W words per element (1: word i % 4 of counter offset + i / 4; 2: words
/// 2(i % 2), 2(i % 2) + 1 of counter offset + i / 2), value f(words).
template <class T, int W, class F>
__global__ void fill_kernel(T* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset, F f, bool vectorised) {
  constexpr int E = 4 / W;  // elements per counter
  const int64_t counters = (n + E - 1) / E;
  for (int64_t c = global_thread(); c < counters; c += grid_threads()) {
    uint32_t w[4];
    Philox::generate(seed, offset + static_cast<uint64_t>(c), 0, w);
    const int64_t base = E * c;
    T v[E];
#pragma unroll
    for (int k = 0; k < E; ++k) {
      if constexpr (W == 1)
        v[k] = f(w[k]);
      else
        v[k] = f(w[2 * k], w[2 * k + 1]);
    }
    if (vectorised && base + E <= n) {
      Vec<T, E> vec;
#pragma unroll
      for (int k = 0; k < E; ++k) vec.v[k] = v[k];
      reinterpret_cast<Vec<T, E>*>(out)[c] = vec;
      continue;
    }
    const int64_t m = min(int64_t{E}, n - base);
    for (int64_t k = 0; k < m; ++k) out[base + k] = v[k];
  }
}

template <class T, int W, class F>
cudaError_t launch_fill(void* out, int64_t n, uint64_t seed, uint64_t offset, const F& f, cudaStream_t stream) {
  constexpr int E = 4 / W;
  // One vector per counter needs the output aligned to E elements (a view may start anywhere).
  const bool vectorised = reinterpret_cast<uintptr_t>(out) % (E * sizeof(T)) == 0;
  return launch(fill_kernel<T, W, F>, (n + E - 1) / E, kThreads, 0, stream, static_cast<T*>(out), n, seed, offset, f,
                vectorised);
}

/// The CPU's float-type parameters for uniform_ on [lo, hi) (fill_uniform, computed on the host
/// with the same expressions).
template <class T>
UniformFloat<T> uniform_float(double lo, double hi) {
  UniformFloat<T> f;
  f.lo = static_cast<float>(lo);
  f.span = static_cast<float>(hi - lo);
  f.hi = static_cast<float>(static_cast<T>(static_cast<float>(hi)));
  f.lo_t = static_cast<T>(f.lo);
  return f;
}

template <class T>
cudaError_t fill_typed(const RandomParams& p, void* out, int64_t n, uint64_t seed, uint64_t offset,
                       cudaStream_t stream) {
  constexpr bool kFloat = !std::is_integral_v<T>;
  switch (p.op) {
    case RandomOp::uniform:
      if constexpr (std::is_same_v<T, double>)
        return launch_fill<T, 2>(out, n, seed, offset, UniformDouble{p.a, p.b - p.a, p.b}, stream);
      else if constexpr (kFloat)
        return launch_fill<T, 1>(out, n, seed, offset, uniform_float<T>(p.a, p.b), stream);
      break;
    case RandomOp::normal:
      if constexpr (std::is_same_v<T, double>)
        return launch_fill<T, 2>(out, n, seed, offset, NormalDouble{p.a, p.b, 2.0 * std::numbers::pi}, stream);
      else if constexpr (kFloat)
        return launch_fill<T, 2>(
            out, n, seed, offset,
            NormalFloat<T>{static_cast<float>(p.a), static_cast<float>(p.b), 2.0f * std::numbers::pi_v<float>}, stream);
      break;
    case RandomOp::randint:
      if constexpr (!std::is_same_v<T, bool>) {
        if (p.range <= (uint64_t{1} << 32))
          return launch_fill<T, 1>(out, n, seed, offset, RandintNarrow<T>{p.low, p.range}, stream);
        return launch_fill<T, 2>(out, n, seed, offset, RandintWide<T>{p.low, p.range}, stream);
      }
      break;
    case RandomOp::bernoulli: return launch_fill<T, 1>(out, n, seed, offset, Bernoulli<T>{p.a}, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

int random_words_per_element(ElemType t, const RandomParams& p) {
  switch (p.op) {
    case RandomOp::uniform: return t == ElemType::f64 ? 2 : 1;
    case RandomOp::normal: return 2;
    case RandomOp::randint: return p.range <= (uint64_t{1} << 32) ? 1 : 2;
    case RandomOp::bernoulli: return 1;
  }
  return 0;
}

cudaError_t random_fill(ElemType t, void* out, int64_t n, const RandomParams& p, uint64_t seed, uint64_t offset,
                        cudaStream_t stream) {
  switch (t) {
    case ElemType::f32: return fill_typed<float>(p, out, n, seed, offset, stream);
    case ElemType::f64: return fill_typed<double>(p, out, n, seed, offset, stream);
    case ElemType::f16: return fill_typed<Half>(p, out, n, seed, offset, stream);
    case ElemType::bf16: return fill_typed<BFloat16>(p, out, n, seed, offset, stream);
    case ElemType::i32: return fill_typed<int32_t>(p, out, n, seed, offset, stream);
    case ElemType::i64: return fill_typed<int64_t>(p, out, n, seed, offset, stream);
    case ElemType::u8: return fill_typed<uint8_t>(p, out, n, seed, offset, stream);
    case ElemType::boolean: return fill_typed<bool>(p, out, n, seed, offset, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
