// Random tensors: rand, randn, randint, randperm, the in-place fills and dropout.
//
// Stream layout (the CUDA kernels must reproduce it exactly; tests/unit/test_random.cpp pins
// it). A draw of n elements reserves words from the generator, gen.reserve(words) →
// (seed, offset), and computes each element from its own counter, so the result does not
// depend on how elements are split across threads:
//
//   one word per element  (n words): element i uses Philox(seed, counter offset + i/4), word i%4.
//   two words per element (2n words): element i uses Philox(seed, counter offset + i/2),
//                                      words a = 2(i%2), b = 2(i%2)+1.
//
// Per op (x, a, b are 32-bit words):
//   rand, f32:          one word; u = (x >> 8) * 2^-24 (Philox::uniform).
//   rand, f16 / bf16:   one word; u = (x >> 21) * 2^-11 / (x >> 24) * 2^-8: the top bits the
//                       type can hold exactly, so the value never rounds up to 1.
//   rand, f64:          two words; u = Philox::uniform_double(a, b) (53 bits).
//   uniform_(lo, hi):   as rand, then lo + (hi - lo) * u in float (f32/f16/bf16) or double (f64);
//                       a value that rounds to hi is replaced by lo, so the range stays [lo, hi).
//   randn / normal_:    two words, Box–Muller on one (cos) branch per element:
//                         f32/f16/bf16: u1 = 1 - Philox::uniform(a) ∈ (0, 1], u2 = Philox::uniform(b),
//                                       z = sqrt(-2 ln u1) * cos(2π u2) in float, rounded to the type;
//                         f64:          u1 = 1 - a * 2^-32, u2 = b * 2^-32, same formula in double.
//                       normal_(mean, std) stores mean + std * z.
//   randint(lo, hi):    r = hi - lo. If r <= 2^32: one word, lo + ((uint64)x * r >> 32)
//                       (multiply-shift; bias at most r / 2^32). Otherwise two words,
//                       lo + (((uint64)a << 32 | b) mod r) (bias at most r / 2^64).
//   bernoulli_(p):      one word; 1 when Philox::uniform(x) < p, else 0.
//   dropout(p):         one word; element kept when Philox::uniform(x) >= p, then scaled by
//                       1 / (1 - p). p == 1 draws nothing and gives zeros.
//   randperm(n):        Fisher–Yates, for i = n-1 down to 1 the k-th step (k = n-1-i) swaps
//                       position i with j drawn from [0, i] by word k of a one-word-per-element
//                       draw of n words (j = (uint64)x * (i+1) >> 32), or, when n > 2^32, by the
//                       randint rule with two words per step (2n words).
//
// CUDA tensors are filled on the device (cuda_backend::random_fill, kernels/random.cu) from the
// same generator with this layout and these conversions: uniform, randint and bernoulli give the
// CPU's values bit for bit, normal agrees to a few ulps (the device's log and cos); nothing is
// generated on the host or copied, so a per-step draw does not synchronise. dropout on a CUDA
// tensor runs kernels/dropout.cu, which draws with this layout from the same generator.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/parallel.hpp"
#include "ember/ops/random.hpp"

namespace ember {

namespace {

/// Counters per parallel chunk (each counter is one Philox call, ~10 ns).
constexpr int64_t kCounterGrain = 8192;

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

/// Calls f(i, word) for i in [0, n): one word per element.
template <class F>
void draw1(int64_t n, GeneratorState s, F&& f) {
  const int64_t counters = (n + 3) / 4;
  parallel_for(counters, kCounterGrain, [&](int64_t c0, int64_t c1) {
    uint32_t w[4];
    for (int64_t c = c0; c < c1; ++c) {
      Philox::generate(s.seed, s.offset + static_cast<uint64_t>(c), 0, w);
      const int64_t base = 4 * c;
      const int64_t m = std::min<int64_t>(4, n - base);
      for (int64_t k = 0; k < m; ++k) f(base + k, w[k]);
    }
  });
}

/// Calls f(i, a, b) for i in [0, n): two words per element.
template <class F>
void draw2(int64_t n, GeneratorState s, F&& f) {
  const int64_t counters = (n + 1) / 2;
  parallel_for(counters, kCounterGrain, [&](int64_t c0, int64_t c1) {
    uint32_t w[4];
    for (int64_t c = c0; c < c1; ++c) {
      Philox::generate(s.seed, s.offset + static_cast<uint64_t>(c), 0, w);
      const int64_t base = 2 * c;
      f(base, w[0], w[1]);
      if (base + 1 < n) f(base + 1, w[2], w[3]);
    }
  });
}

/// Uniform in [0, 1) with as many bits as T holds exactly (see the layout above).
template <class T>
compute_t<T> unit_uniform(uint32_t x) {
  if constexpr (std::is_same_v<T, Half>)
    return static_cast<float>(x >> 21) * (1.0f / 2048.0f);
  else if constexpr (std::is_same_v<T, BFloat16>)
    return static_cast<float>(x >> 24) * (1.0f / 256.0f);
  else
    return Philox::uniform(x);
}

void check_float(DType dt, const char* op) {
  EMBER_CHECK(is_floating(dt), DTypeError, op, ": expected a floating-point dtype, got ", dtype_name(dt));
}

void check_finite(double v, const char* op, const char* what) {
  EMBER_CHECK(std::isfinite(v), ValueError, op, ": ", what, " must be finite, got ", v);
}

/// Fills contiguous tensor `out` (CPU or CUDA) with uniforms on [lo, hi).
void fill_uniform(const Tensor& out, double lo, double hi, Generator& gen) {
  if (out.is_cuda()) {
    cuda_backend::random_fill(out, {.dist = cuda_backend::RandomDist::uniform, .a = lo, .b = hi}, gen);
    return;
  }
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch<kFloatingTypes>(out.dtype(), "uniform", [&]<class T>() {
    T* p = static_cast<T*>(out.data_ptr());
    using C = compute_t<T>;
    const C clo = static_cast<C>(lo), span = static_cast<C>(hi - lo);
    const T thi = static_cast<T>(static_cast<C>(hi)), tlo = static_cast<T>(clo);
    auto store = [&](int64_t i, C u) {
      T v = static_cast<T>(clo + span * u);
      // Rounding can land on hi; keep the interval half-open.
      if (static_cast<C>(v) >= static_cast<C>(thi) && span > C(0)) v = tlo;
      p[i] = v;
    };
    if constexpr (std::is_same_v<T, double>) {
      draw2(n, gen.reserve(2 * static_cast<uint64_t>(n)),
            [&](int64_t i, uint32_t a, uint32_t b) { store(i, Philox::uniform_double(a, b)); });
    } else {
      draw1(n, gen.reserve(static_cast<uint64_t>(n)), [&](int64_t i, uint32_t x) { store(i, unit_uniform<T>(x)); });
    }
  });
}

/// Fills contiguous tensor `out` (CPU or CUDA) with mean + std * N(0, 1).
void fill_normal(const Tensor& out, double mean, double std, Generator& gen) {
  if (out.is_cuda()) {
    cuda_backend::random_fill(out, {.dist = cuda_backend::RandomDist::normal, .a = mean, .b = std}, gen);
    return;
  }
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch<kFloatingTypes>(out.dtype(), "normal", [&]<class T>() {
    T* p = static_cast<T*>(out.data_ptr());
    const GeneratorState s = gen.reserve(2 * static_cast<uint64_t>(n));
    if constexpr (std::is_same_v<T, double>) {
      constexpr double kTwoPi = 2.0 * std::numbers::pi;
      constexpr double k2m32 = 1.0 / 4294967296.0;
      draw2(n, s, [&](int64_t i, uint32_t a, uint32_t b) {
        const double u1 = 1.0 - static_cast<double>(a) * k2m32;
        const double u2 = static_cast<double>(b) * k2m32;
        p[i] = mean + std * (std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2));
      });
    } else {
      constexpr float kTwoPi = 2.0f * std::numbers::pi_v<float>;
      const float m = static_cast<float>(mean), sd = static_cast<float>(std);
      draw2(n, s, [&](int64_t i, uint32_t a, uint32_t b) {
        const float u1 = 1.0f - Philox::uniform(a);
        const float u2 = Philox::uniform(b);
        p[i] = static_cast<T>(m + sd * (std::sqrt(-2.0f * std::log(u1)) * std::cos(kTwoPi * u2)));
      });
    }
  });
}

/// Fills contiguous tensor `out` (CPU or CUDA) with integers uniform on [lo, hi).
void fill_randint(const Tensor& out, int64_t lo, int64_t hi, Generator& gen) {
  if (out.is_cuda()) {
    cuda_backend::random_fill(out, {.dist = cuda_backend::RandomDist::randint, .low = lo, .high = hi}, gen);
    return;
  }
  const int64_t n = out.numel();
  if (n == 0) return;
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  dispatch<kNumericTypes>(out.dtype(), "randint", [&]<class T>() {
    T* p = static_cast<T*>(out.data_ptr());
    auto store = [&](int64_t i, uint64_t r) {
      const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(lo) + r);
      if constexpr (std::is_integral_v<T>)
        p[i] = static_cast<T>(v);
      else
        p[i] = static_cast<T>(static_cast<compute_t<T>>(v));
    };
    if (range <= (1ull << 32)) {
      draw1(n, gen.reserve(static_cast<uint64_t>(n)),
            [&](int64_t i, uint32_t x) { store(i, (static_cast<uint64_t>(x) * range) >> 32); });
    } else {
      draw2(n, gen.reserve(2 * static_cast<uint64_t>(n)),
            [&](int64_t i, uint32_t a, uint32_t b) { store(i, ((static_cast<uint64_t>(a) << 32) | b) % range); });
    }
  });
}

/// Runs `fill(contiguous tensor)` on t itself when it is contiguous, else on a contiguous
/// temporary on t's device (the CPU for a device without fills) copied into t.
template <class Fill>
void fill_into(Tensor& t, Fill&& fill) {
  if ((t.is_cpu() || t.is_cuda()) && t.is_contiguous()) {
    fill(t);
    return;
  }
  Tensor tmp = empty(t.shape(), {.dtype = t.dtype(), .device = t.is_cuda() ? t.device() : Device::cpu()});
  fill(tmp);
  NoGradGuard ng;
  if (t.is_cpu()) {
    cpu::copy(t, tmp);
  } else {
    Tensor alias = t.detach();
    alias.copy_(tmp);
  }
}

/// Shared tail of the in-place fills: version bump, and a zero-gradient node for a non-leaf
/// (its old value no longer influences anything).
Tensor& finish_inplace(Tensor& t, const char* node) {
  t.storage()->bump_version();
  if (GradMode::is_enabled() && t.requires_grad()) {
    autograd::record(node, {t}, t, [](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{zeros_like(g[0])};
    });
  }
  return t;
}

/// Creates a tensor on opts.device and fills it there (CPU or CUDA; another device gets a CPU
/// fill moved to it).
template <class Fill>
Tensor make_random(const Shape& shape, const TensorOptions& opts, const char* op, Fill&& fill) {
  for (int64_t d : shape)
    EMBER_CHECK(d >= 0, ValueError, op, ": negative dimension ", d, " in shape ", shape_str(shape));
  Tensor t = empty(shape, {.dtype = opts.dtype, .device = opts.device.is_cuda() ? opts.device : Device::cpu()});
  fill(t);
  if (!opts.device.is_cpu() && !opts.device.is_cuda()) t = t.to(opts.device);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

/// [min, max] an integer dtype can hold (as int64; u8 and bool are small).
std::pair<int64_t, int64_t> int_limits(DType dt) {
  switch (dt) {
    case DType::i32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case DType::u8: return {0, 255};
    case DType::boolean: return {0, 1};
    default: return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  }
}

}  // namespace

Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  check_float(opts.dtype, "rand");
  return make_random(shape, opts, "rand", [&](const Tensor& t) { fill_uniform(t, 0.0, 1.0, pick(gen)); });
}

Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  check_float(opts.dtype, "randn");
  return make_random(shape, opts, "randn", [&](const Tensor& t) { fill_normal(t, 0.0, 1.0, pick(gen)); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, const TensorOptions& opts, Generator* gen) {
  EMBER_CHECK(low < high, ValueError, "randint: expected low < high, got low = ", low, " and high = ", high);
  EMBER_CHECK(opts.dtype != kBool, DTypeError, "randint: dtype bool is not supported");
  if (is_integral(opts.dtype)) {
    auto [mn, mx] = int_limits(opts.dtype);
    EMBER_CHECK(low >= mn && high - 1 <= mx, ValueError, "randint: range [", low, ", ", high,
                ") does not fit in dtype ", dtype_name(opts.dtype));
  }
  EMBER_CHECK(!opts.requires_grad || is_floating(opts.dtype), DTypeError,
              "randint: only floating-point tensors can require grad, got dtype ", dtype_name(opts.dtype));
  return make_random(shape, opts, "randint", [&](const Tensor& t) { fill_randint(t, low, high, pick(gen)); });
}

Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.shape(), t.options(), gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.shape(), t.options(), gen); }

Tensor randperm(int64_t n, Generator* gen) {
  EMBER_CHECK(n >= 0, ValueError, "randperm: n must be non-negative, got ", n);
  Tensor t = empty({n}, {.dtype = kInt64});
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  if (n < 2) return t;
  Generator& g = pick(gen);
  const bool wide = static_cast<uint64_t>(n) > (1ull << 32);
  const GeneratorState s = g.reserve(static_cast<uint64_t>(n) * (wide ? 2 : 1));
  // Sequential by nature; words come four (or two steps) per Philox call.
  uint32_t w[4];
  uint64_t cached = ~0ull;
  for (int64_t k = 0; k < n - 1; ++k) {
    const int64_t i = n - 1 - k;
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    uint64_t j;
    if (!wide) {
      const uint64_t c = static_cast<uint64_t>(k) / 4;
      if (c != cached) {
        Philox::generate(s.seed, s.offset + c, 0, w);
        cached = c;
      }
      j = (static_cast<uint64_t>(w[k % 4]) * bound) >> 32;
    } else {
      const uint64_t c = static_cast<uint64_t>(k) / 2;
      if (c != cached) {
        Philox::generate(s.seed, s.offset + c, 0, w);
        cached = c;
      }
      const int o = 2 * static_cast<int>(k % 2);
      j = ((static_cast<uint64_t>(w[o]) << 32) | w[o + 1]) % bound;
    }
    std::swap(p[i], p[static_cast<int64_t>(j)]);
  }
  return t;
}

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) {
  check_float(t.dtype(), "uniform_");
  check_finite(low, "uniform_", "low");
  check_finite(high, "uniform_", "high");
  EMBER_CHECK(low <= high, ValueError, "uniform_: expected low <= high, got low = ", low, " and high = ", high);
  autograd::check_inplace(t, "uniform_");
  fill_into(t, [&](const Tensor& c) { fill_uniform(c, low, high, pick(gen)); });
  return finish_inplace(t, "UniformBackward");
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_float(t.dtype(), "normal_");
  check_finite(mean, "normal_", "mean");
  check_finite(std, "normal_", "std");
  EMBER_CHECK(std >= 0.0, ValueError, "normal_: expected std >= 0, got ", std);
  autograd::check_inplace(t, "normal_");
  fill_into(t, [&](const Tensor& c) { fill_normal(c, mean, std, pick(gen)); });
  return finish_inplace(t, "NormalBackward");
}

Tensor& bernoulli_(Tensor& t, double p, Generator* gen) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "bernoulli_: expected 0 <= p <= 1, got ", p);
  autograd::check_inplace(t, "bernoulli_");
  fill_into(t, [&](const Tensor& c) {
    if (c.is_cuda()) {
      cuda_backend::random_fill(c, {.dist = cuda_backend::RandomDist::bernoulli, .a = p}, pick(gen));
      return;
    }
    const int64_t n = c.numel();
    if (n == 0) return;
    dispatch(c.dtype(), "bernoulli_", [&]<class T>() {
      T* q = static_cast<T*>(c.data_ptr());
      draw1(n, pick(gen).reserve(static_cast<uint64_t>(n)),
            [&](int64_t i, uint32_t x) { q[i] = static_cast<T>(Philox::uniform(x) < p ? 1 : 0); });
    });
  });
  return finish_inplace(t, "BernoulliBackward");
}

Tensor dropout(const Tensor& x, double p, bool train, Generator* gen) {
  EMBER_CHECK(x.defined(), ValueError, "dropout: input is an undefined tensor");
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "dropout: probability has to be between 0 and 1, but got ", p);
  check_float(x.dtype(), "dropout");
  if (!train || p == 0.0) return x;
  EMBER_CHECK(x.is_cpu() || x.is_cuda(), NotImplemented, "dropout: expected a CPU or CUDA tensor, got one on ",
              x.device().str());

  // mask holds 0 or 1/(1-p) in x's dtype: the forward multiplies by it and so does backward.
  Tensor mask = empty(x.shape(), {.dtype = x.dtype(), .device = x.device()});
  Tensor out = empty(x.shape(), {.dtype = x.dtype(), .device = x.device()});
  {
    NoGradGuard ng;
    Tensor xc = x.contiguous();
    const int64_t n = x.numel();
    if (x.is_cuda()) {
      // The same generator and stream layout as on the CPU (kernels/dropout.cu draws word i of
      // the reserved range for element i), so a seed gives the same mask on both devices. CUDA
      // tensors draw from `gen` or the default generator, as the CUDA factories do.
      if (p == 1.0) {
        mask.zero_();
        out.zero_();
      } else if (n > 0) {
        cuda_backend::dropout(out, mask, xc, p, pick(gen).reserve(static_cast<uint64_t>(n)));
      }
    } else {
      dispatch<kFloatingTypes>(x.dtype(), "dropout", [&]<class T>() {
        using C = compute_t<T>;
        const T* in = static_cast<const T*>(xc.data_ptr());
        T* o = static_cast<T*>(out.data_ptr());
        T* m = static_cast<T*>(mask.data_ptr());
        if (p == 1.0 || n == 0) {
          for (int64_t i = 0; i < n; ++i) o[i] = m[i] = static_cast<T>(C(0));
          return;
        }
        const C scale = static_cast<C>(1.0 / (1.0 - p));
        const T tscale = static_cast<T>(scale);
        draw1(n, pick(gen).reserve(static_cast<uint64_t>(n)), [&](int64_t i, uint32_t w) {
          const bool keep = static_cast<double>(Philox::uniform(w)) >= p;
          m[i] = keep ? tscale : static_cast<T>(C(0));
          o[i] = keep ? static_cast<T>(static_cast<C>(in[i]) * scale) : static_cast<T>(C(0));
        });
      });
    }
  }
  return autograd::record("DropoutBackward", {x}, out,
                          [m = autograd::SavedTensor(mask)](const std::vector<Tensor>& g, const std::vector<bool>&) {
                            return std::vector<Tensor>{g[0] * m.get()};
                          });
}

}  // namespace ember
