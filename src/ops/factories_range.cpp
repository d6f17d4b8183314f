// Range factories: arange, linspace, eye. Built on the CPU and moved to opts.device.
#include <cmath>

#include "ember/core/dispatch.hpp"
#include "ember/ops/random.hpp"

namespace ember {

namespace {

/// Stores v (computed in double, or int64 for integer ranges) into element i of p.
template <class T>
void store(T* p, int64_t i, double v) {
  if constexpr (std::is_same_v<T, bool>)
    p[i] = v != 0.0;
  else if constexpr (std::is_integral_v<T>)
    p[i] = static_cast<T>(static_cast<int64_t>(v));
  else
    p[i] = static_cast<T>(static_cast<compute_t<T>>(v));
}

Tensor finish(Tensor t, const TensorOptions& opts) {
  if (!opts.device.is_cpu()) t = t.to(opts.device);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

}  // namespace

Tensor arange(const Scalar& end, const TensorOptions& opts) { return arange(Scalar(int64_t{0}), end, 1, opts); }

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, const TensorOptions& opts) {
  const bool all_int = !start.is_floating() && !end.is_floating() && !step.is_floating();
  // TensorOptions cannot say "no dtype given", so int64 (the default) with a floating argument
  // means "infer": float32, as torch.arange(0, 1, 0.25).
  DType dt = opts.dtype;
  if (!all_int && dt == kInt64) dt = kDefaultFloat;
  EMBER_CHECK(dt != kBool, DTypeError, "arange: dtype bool is not supported");

  int64_t n = 0;
  if (all_int) {
    const int64_t s = start.to_int(), e = end.to_int(), st = step.to_int();
    EMBER_CHECK(st != 0, ValueError, "arange: step must be nonzero");
    EMBER_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), ValueError,
                "arange: upper bound and larger bound inconsistent with step sign (start ", s, ", end ", e, ", step ",
                st, ")");
    // ceil((e - s) / st) without overflow for the usual ranges.
    const int64_t span = e - s;
    n = st > 0 ? (span + st - 1) / st : (span + st + 1) / st;
    Tensor t = empty({n}, {.dtype = dt});
    dispatch<kNumericTypes>(dt, "arange", [&]<class T>() {
      T* p = static_cast<T*>(t.data_ptr());
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = s + i * st;
        if constexpr (std::is_integral_v<T>)
          p[i] = static_cast<T>(v);
        else
          p[i] = static_cast<T>(static_cast<compute_t<T>>(v));
      }
    });
    return finish(t, opts);
  }

  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  EMBER_CHECK(std::isfinite(s) && std::isfinite(e), ValueError, "arange: unsupported range ", s, " -> ", e,
              " (bounds must be finite)");
  EMBER_CHECK(std::isfinite(st) && st != 0.0, ValueError, "arange: step must be nonzero and finite, got ", st);
  EMBER_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), ValueError,
              "arange: upper bound and larger bound inconsistent with step sign (start ", s, ", end ", e, ", step ", st,
              ")");
  const double len = std::ceil((e - s) / st);
  EMBER_CHECK(len < 9.0e18, ValueError, "arange: the range ", s, " -> ", e, " with step ", st, " is too long");
  n = static_cast<int64_t>(len);
  Tensor t = empty({n}, {.dtype = dt});
  dispatch<kNumericTypes>(dt, "arange", [&]<class T>() {
    T* p = static_cast<T*>(t.data_ptr());
    for (int64_t i = 0; i < n; ++i) store(p, i, s + static_cast<double>(i) * st);
  });
  return finish(t, opts);
}

Tensor linspace(double start, double end, int64_t steps, const TensorOptions& opts) {
  EMBER_CHECK(steps >= 0, ValueError, "linspace: number of steps must be non-negative, got ", steps);
  EMBER_CHECK(std::isfinite(start) && std::isfinite(end), ValueError, "linspace: start and end must be finite, got ",
              start, " and ", end);
  EMBER_CHECK(opts.dtype != kBool, DTypeError, "linspace: dtype bool is not supported");
  Tensor t = empty({steps}, {.dtype = opts.dtype});
  dispatch<kNumericTypes>(opts.dtype, "linspace", [&]<class T>() {
    T* p = static_cast<T*>(t.data_ptr());
    if (steps == 1) {
      store(p, 0, start);
      return;
    }
    // PyTorch's symmetric form: the first half counts up from start, the second half down
    // from end, so both endpoints are exact and the error is symmetric.
    const double step = (end - start) / static_cast<double>(steps - 1);
    const int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i) {
      const double v =
          i < half ? start + step * static_cast<double>(i) : end - step * static_cast<double>(steps - 1 - i);
      store(p, i, v);
    }
  });
  return finish(t, opts);
}

Tensor eye(int64_t n, int64_t m, const TensorOptions& opts) {
  EMBER_CHECK(n >= 0, ValueError, "eye: n must be non-negative, got ", n);
  if (m < 0) m = n;
  Tensor t = zeros({n, m}, {.dtype = opts.dtype});
  dispatch(opts.dtype, "eye", [&]<class T>() {
    T* p = static_cast<T*>(t.data_ptr());
    for (int64_t i = 0; i < std::min(n, m); ++i) store(p, i * m + i, 1.0);
  });
  return finish(t, opts);
}

}  // namespace ember
