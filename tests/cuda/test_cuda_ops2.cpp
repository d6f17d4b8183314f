// Differential tests (CPU backend = truth) for the CUDA ops added after the first backend:
// integer and bool elementwise ops, predicates and logical ops, where on any dtype, integer/bool
// reductions, the ops optim::StepGuard chains, argmax/argmin and max/min along a dim, clamp,
// prod, norm, var/std. Odd sizes, non-contiguous views (made inside the function, so both
// backends see the same view), broadcasting, CPU scalars, every dtype; gradients where
// differentiable. Every test that needs a device skips without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "cuda_diff.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;
using Inputs = std::vector<Tensor>;

namespace {

const std::vector<DType> kIntTypes = {DType::i32, DType::i64, DType::u8};

/// Values of dtype dt in a range that fits it (u8: 0..200, bool: 0/1, others -50..50).
Tensor values_of(const Shape& shape, DType dt, uint32_t seed) {
  if (is_floating(dt)) return random_ints(shape, DType::f64, seed, -6, 6).to(dt) * 0.5;  // ties on purpose
  if (dt == DType::u8) return random_ints(shape, dt, seed, 0, 200);
  return random_ints(shape, dt, seed, -50, 50);
}

/// Layouts every binary test runs: contiguous, broadcast, transposed, sliced, CPU 0-d scalar.
struct Layout {
  const char* name;
  Shape a, b;
  std::function<Tensor(const Tensor&)> view_a = [](const Tensor& t) { return t; };
  std::function<Tensor(const Tensor&)> view_b = [](const Tensor& t) { return t; };
};

std::vector<Layout> layouts() {
  return {
      {"contiguous_odd", {1001}, {1001}},
      {"broadcast", {37, 1}, {1, 53}},
      {"transposed", {53, 37}, {37, 53}, [](const Tensor& t) { return t.t(); }},
      {"sliced", {13, 17}, {13, 34}, [](const Tensor& t) { return t; },
       [](const Tensor& t) { return t.slice(-1, 0, t.size(-1), 2); }},
      {"scalar_b", {5, 7, 9}, {}},
  };
}

/// fn on CPU inputs and on CUDA copies; outputs compared exactly (integers, bools).
void expect_exact_on_cuda(const std::function<Tensor(const Inputs&)>& fn, const Inputs& in) {
  expect_same_on_cuda(fn, in, kExact, /*with_grad=*/false);
}

}  // namespace

// ------------------------------------------------------------------ integer and bool elementwise

TEST(CudaOps2, IntegerArithmeticMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kIntTypes)
    for (const Layout& l : layouts()) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + l.name);
      Tensor a = values_of(l.a, dt, 1), b = values_of(l.b, dt, 2);
      expect_exact_on_cuda([&](const Inputs& v) { return add(l.view_a(v[0]), l.view_b(v[1]), 3); }, {a, b});
      expect_exact_on_cuda([&](const Inputs& v) { return sub(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
      expect_exact_on_cuda([&](const Inputs& v) { return mul(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
      expect_exact_on_cuda([&](const Inputs& v) { return maximum(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
      expect_exact_on_cuda([&](const Inputs& v) { return minimum(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
      Tensor e = random_ints(l.b, dt, 3, 0, 5);
      expect_exact_on_cuda([&](const Inputs& v) { return pow(l.view_a(v[0]), l.view_b(v[1])); }, {a, e});
      // Integer division is true division: float results on both backends.
      expect_same_on_cuda([&](const Inputs& v) { return div(l.view_a(v[0]), l.view_b(v[1]) + Scalar(int64_t{300})); }, {a, b},
                          tol_for(DType::f32), false);
    }
}

TEST(CudaOps2, IntegerOverflowWrapsAsOnCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor a = tensor<int64_t>(std::vector<int64_t>{std::numeric_limits<int32_t>::max(), 200, -7}, {3});
  expect_exact_on_cuda([](const Inputs& v) { return add(v[0], v[0]); }, {a.to(kInt32)});
  expect_exact_on_cuda([](const Inputs& v) { return mul(v[0], v[0]); }, {a.to(kInt32)});
  Tensor u = tensor<int64_t>(std::vector<int64_t>{250, 3, 0}, {3}).to(kUInt8);
  expect_exact_on_cuda([](const Inputs& v) { return v[0] + Scalar(int64_t{10}); }, {u});
  expect_exact_on_cuda([](const Inputs& v) { return neg(v[0]); }, {u});
  expect_exact_on_cuda([](const Inputs& v) { return v[0] - Scalar(int64_t{5}); }, {u});
}

TEST(CudaOps2, IntegerUnaryMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kIntTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({31, 9}, dt, 7);
    expect_exact_on_cuda([](const Inputs& v) { return neg(v[0]); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return abs(v[0].t()); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return sign(v[0]); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return square(v[0].slice(0, 1, 31, 3)); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return relu(v[0]); }, {x});
  }
  expect_exact_on_cuda([](const Inputs& v) { return sign(v[0]); }, {values_of({17}, kBool, 8)});
}

TEST(CudaOps2, BoolArithmeticAndLogicalOpsMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (const Layout& l : layouts()) {
    SCOPED_TRACE(l.name);
    Tensor a = values_of(l.a, kBool, 11), b = values_of(l.b, kBool, 12);
    expect_exact_on_cuda([&](const Inputs& v) { return add(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
    expect_exact_on_cuda([&](const Inputs& v) { return mul(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
    expect_exact_on_cuda([&](const Inputs& v) { return maximum(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
    expect_exact_on_cuda([&](const Inputs& v) { return logical_and(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
    expect_exact_on_cuda([&](const Inputs& v) { return logical_or(l.view_a(v[0]), l.view_b(v[1])); }, {a, b});
    expect_exact_on_cuda([&](const Inputs& v) { return logical_not(l.view_a(v[0])); }, {a});
  }
  // Logical ops of non-bool tensors (converted to bool first), NaN counting as true.
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = values_of({41}, dt, 13), b = values_of({41}, dt, 14);
    if (is_floating(dt)) a = where(le(a, 2), a, std::numeric_limits<double>::quiet_NaN());
    expect_exact_on_cuda([](const Inputs& v) { return logical_and(v[0], v[1]); }, {a, b});
    expect_exact_on_cuda([](const Inputs& v) { return logical_or(v[0], v[1]); }, {a, b});
    expect_exact_on_cuda([](const Inputs& v) { return logical_not(v[0]); }, {a});
  }
}

TEST(CudaOps2, ComparisonsOnEveryDtypeMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType)
    for (const Layout& l : layouts()) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + l.name);
      Tensor a = values_of(l.a, dt, 21), b = values_of(l.b, dt, 22);
      for (int op = 0; op < 6; ++op) {
        expect_exact_on_cuda(
            [&](const Inputs& v) {
              const Tensor x = l.view_a(v[0]), y = l.view_b(v[1]);
              switch (op) {
                case 0: return eq(x, y);
                case 1: return ne(x, y);
                case 2: return lt(x, y);
                case 3: return le(x, y);
                case 4: return gt(x, y);
                default: return ge(x, y);
              }
            },
            {a, b});
      }
    }
  // Mixed dtypes (promotion before the kernel) and a Scalar operand.
  expect_exact_on_cuda([](const Inputs& v) { return lt(v[0], v[1]); },
                       {values_of({19}, kInt32, 23), values_of({19}, kFloat32, 24)});
  expect_exact_on_cuda([](const Inputs& v) { return ne(v[0], Scalar(int64_t{3})); }, {values_of({19}, kInt64, 25)});
}

TEST(CudaOps2, PredicatesMatchCpuWithNonFiniteValues) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({7, 13}, dt, 31);
    if (is_floating(dt)) {
      x = where(ne(x, 1.0), x, inf);
      x = where(ne(x, -1.0), x, -inf);
      x = where(ne(x, 0.5), x, nan);
    }
    expect_exact_on_cuda([](const Inputs& v) { return isfinite(v[0]); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return isnan(v[0].t()); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return isinf(v[0].slice(1, 0, 13, 2)); }, {x});
  }
}

TEST(CudaOps2, WhereOnEveryDtypeMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor c = values_of({9, 1}, kBool, 41);
    Tensor a = values_of({1, 11}, dt, 42), b = values_of({9, 11}, dt, 43);
    expect_exact_on_cuda([](const Inputs& v) { return where(v[0], v[1], v[2].t().t()); }, {c, a, b});
    expect_exact_on_cuda([](const Inputs& v) { return where(v[0], v[1], v[2].slice(1, 0, 11, 2).t().t()); },
                         {c, a, b});
  }
  // A Scalar branch (a one-element CPU tensor beside CUDA tensors), as StepGuard uses it.
  expect_exact_on_cuda([](const Inputs& v) { return where(v[0], v[1], Scalar(int64_t{0})); },
                       {values_of({5}, kBool, 44), values_of({5}, kInt64, 45)});
}

// ------------------------------------------------------------------ integer/bool reductions

TEST(CudaOps2, SumProdMaxMinOfIntegerAndBoolTensorsMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const std::vector<Shape> dims_list = {{}, {0}, {1}, {0, 2}, {-1}};
  for (DType dt : {DType::i32, DType::i64, DType::u8, DType::boolean}) {
    for (const Shape& dims : dims_list) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " dims " + shape_str(dims));
      Tensor x = values_of({6, 131, 5}, dt, 51);
      expect_exact_on_cuda([&](const Inputs& v) { return sum(v[0], dims, false); }, {x});
      expect_exact_on_cuda([&](const Inputs& v) { return sum(v[0].transpose(0, 2), dims, true); }, {x});
      expect_exact_on_cuda([&](const Inputs& v) { return amax(v[0], dims, false); }, {x});
      expect_exact_on_cuda([&](const Inputs& v) { return amin(v[0], dims, false); }, {x});
    }
    // A long single row (one block) and a product small enough not to overflow.
    expect_exact_on_cuda([](const Inputs& v) { return sum(v[0]); }, {values_of({100003}, dt, 52)});
    expect_exact_on_cuda([](const Inputs& v) { return prod(v[0]); }, {random_ints({13}, dt == kBool ? kBool : dt, 53, 1, 3)});
  }
  // sum of a bool tensor is int64 on both backends.
  Tensor s = sum(values_of({77}, kBool, 54).to(kDev));
  EXPECT_EQ(s.dtype(), kInt64);
}

TEST(CudaOps2, LongReductionsInChunksMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Long rows (one output over 100003 elements) and long columns (20011 x 3, reduced over dim 0)
  // run in chunks whose accumulators a second kernel combines: integer/bool sums and max/min,
  // floating products and every norm.
  for (DType dt : {DType::i32, DType::i64, DType::u8, DType::boolean}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({100003}, dt, 185), c = values_of({20011, 3}, dt, 186);
    expect_exact_on_cuda([](const Inputs& v) { return sum(v[0]); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return amax(v[0], {0}, false); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return amin(v[0], {0}, false); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return sum(v[0], {0}, false); }, {c});
    expect_exact_on_cuda([](const Inputs& v) { return amax(v[0], {0}, true); }, {c});
  }
  // The StepGuard reduction: a bool sum over a whole gradient-sized tensor.
  Tensor g = random_tensor({1 << 20}, kFloat32, 187);
  g = where(le(g, 1.99), g, std::numeric_limits<double>::quiet_NaN());
  expect_exact_on_cuda([](const Inputs& v) { return sum(isfinite(v[0])); }, {g});
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({100003}, dt, 188), c = random_tensor({20011, 3}, dt, 189);
    const Tol t{tol_for(dt).atol * 10, tol_for(dt).rtol * 10};
    for (double p : {0.0, 1.0, 2.0, 3.0, inf, -inf}) {
      SCOPED_TRACE("p=" + std::to_string(p));
      expect_same_on_cuda([p](const Inputs& v) { return norm(v[0], p, {}, false); }, {x}, t, false);
      expect_same_on_cuda([p](const Inputs& v) { return norm(v[0], p, {0}, false); }, {c}, t, false);
    }
    // Products of values near 1 stay finite over 100003 factors.
    Tensor q = random_tensor({100003}, dt, 190, 0.999, 1.001);
    expect_same_on_cuda([](const Inputs& v) { return prod(v[0]); }, {q}, t, false);
  }
}

// ------------------------------------------------------------------ the StepGuard chain

TEST(CudaOps2, StepGuardOpChainMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (bool poison : {false, true}) {
    SCOPED_TRACE(poison ? "non-finite gradient" : "finite gradient");
    Tensor loss = scalar_tensor(1.5, {.dtype = kFloat32});
    Tensor g = random_tensor({129, 7}, kFloat32, 61);
    if (poison) g = where(le(g, 1.9), g, nan);
    Tensor counter = full({}, int64_t{4}, {.dtype = kInt64});
    expect_exact_on_cuda(
        [](const Inputs& v) {
          Tensor bad = logical_not(isfinite(v[0]));
          bad = logical_or(bad, ne(sum(isfinite(v[1])), Scalar(v[1].numel())));
          Tensor skipped = v[2] + bad.to(kInt64);
          Tensor consecutive = where(bad, v[2] + Scalar(int64_t{1}), Scalar(int64_t{0}));
          return stack({skipped, consecutive, bad.to(kInt64)});
        },
        {loss, g, counter});
  }
}

// ------------------------------------------------------------------ argmax / argmin, max / min along a dim

TEST(CudaOps2, ArgmaxArgminMatchCpuWithTiesAndNaN) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({5, 300, 3}, dt, 71);
    if (is_floating(dt)) x = where(ne(x, 2.5), x, nan);
    for (bool is_max : {true, false}) {
      auto arg = [is_max](const Tensor& t, std::optional<int64_t> d, bool keep) {
        return is_max ? argmax(t, d, keep) : argmin(t, d, keep);
      };
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], std::nullopt, false); }, {x});
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], 1, false); }, {x});  // columns (inner 3)
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0].transpose(1, 2), 2, true); }, {x});  // rows
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], 0, false); }, {x});
    }
  }
}

// Argmax/argmin over more than a million elements run in chunks (one candidate per chunk, picked
// in order by a second kernel). The chunk length is kernels::chunk_splits' (src/cuda/kernels.hpp):
// ceil(n / min(1024, ceil(n / 4096))) for a whole tensor; the extreme is placed as a tie on the
// two sides of a chunk boundary (the first index must win), again in later chunks, and a NaN in
// a late chunk must win over everything (first NaN). Long columns and the values of max/min too.
TEST(CudaOps2, LongArgmaxArgminInChunksMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t n = (1 << 20) + 12345;
  const int64_t splits = std::min<int64_t>(1024, (n + 4095) / 4096), chunk = (n + splits - 1) / splits;
  for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::u8, DType::boolean}) {
    SCOPED_TRACE(dtype_name(dt));
    for (bool is_max : {true, false}) {
      SCOPED_TRACE(is_max ? "max" : "min");
      // Values strictly inside (lo, hi), the extreme placed by hand.
      Tensor x = dt == DType::boolean ? ne(zeros({n}), is_max ? 0.0 : 1.0)
                 : is_floating(dt)    ? clamp(values_of({n}, dt, 191), -2.5, 100.0)
                                      : clamp(values_of({n}, dt, 191), int64_t{1}, int64_t{100});
      const double extreme = dt == DType::boolean ? (is_max ? 1.0 : 0.0)
                             : is_max             ? (dt == DType::u8 ? 150.0 : 90.0)
                                                  : (is_floating(dt) ? -3.0 : 0.0);
      Tensor flat = x.view({n});
      for (int64_t pos : {7 * chunk + chunk - 1, 8 * chunk, 8 * chunk + 1, 200 * chunk - 1, 200 * chunk, n - 1})
        flat.narrow(0, pos, 1).fill_(extreme);
      auto arg = [is_max](const Tensor& t, std::optional<int64_t> d) {
        return is_max ? argmax(t, d, false) : argmin(t, d, false);
      };
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], std::nullopt); }, {x});
      ASSERT_EQ(arg(x, std::nullopt).item<int64_t>(), 8 * chunk - 1);  // the CPU's answer, checked
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0].view({1, n}), 1); }, {x});
      expect_exact_on_cuda(
          [&](const Inputs& v) {
            return is_max ? max(v[0].view({1, n}), 1).first : min(v[0].view({1, n}), 1).first;
          },
          {x});
      // Long columns (inner 3): one candidate per (chunk, column).
      Tensor c = x.narrow(0, 0, 3 * 350001).view({350001, 3});
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], 0); }, {c});
      expect_exact_on_cuda([&](const Inputs& v) { return is_max ? max(v[0], 0).second : min(v[0], 0).second; }, {c});
      if (!is_floating(dt)) continue;
      // NaN in a late chunk (two of them: the first wins), after the ties.
      Tensor y = x.clone();
      y.view({n}).narrow(0, n - 1000, 1).fill_(nan);
      y.view({n}).narrow(0, n - 10, 1).fill_(nan);
      expect_exact_on_cuda([&](const Inputs& v) { return arg(v[0], std::nullopt); }, {y});
      ASSERT_EQ(arg(y, std::nullopt).item<int64_t>(), n - 1000);
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return is_max ? max(v[0].view({1, n}), 1).first : min(v[0].view({1, n}), 1).first;
          },
          {y}, kExact, false);
      expect_exact_on_cuda(
          [&](const Inputs& v) {
            return arg(v[0].narrow(0, 0, 3 * 350001).view({350001, 3}), 0);
          },
          {y.narrow(0, n - 3 * 350001, 3 * 350001)});
    }
  }
}

TEST(CudaOps2, MaxMinAlongDimMatchCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({7, 201}, dt, 81);
    for (int64_t d : {0, 1, -1}) {
      expect_same_on_cuda([d](const Inputs& v) { return max(v[0], d, false).first; }, {x}, tol_for(dt));
      expect_same_on_cuda([d](const Inputs& v) { return min(v[0].t(), d, true).first; }, {x}, tol_for(dt));
      expect_exact_on_cuda([d](const Inputs& v) { return max(v[0], d, false).second; }, {x});
    }
  }
  expect_exact_on_cuda([](const Inputs& v) { return min(v[0], 1, false).first; }, {values_of({4, 9}, kInt32, 82)});
}

// ------------------------------------------------------------------ clamp

TEST(CudaOps2, ClampMatchesCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({33, 17}, dt, 91);
    Tensor special = tensor<double>(std::vector<double>{nan, inf, -inf, 0.25}, {4}).to(dt);
    expect_same_on_cuda([](const Inputs& v) { return clamp(v[0], -0.5, 0.75); }, {x}, tol_for(dt));
    expect_same_on_cuda([](const Inputs& v) { return clamp(v[0].t(), std::nullopt, 0.3); }, {x}, tol_for(dt));
    expect_same_on_cuda([](const Inputs& v) { return clamp(v[0].slice(0, 0, 33, 2), -0.1, std::nullopt); }, {x}, tol_for(dt));
    expect_same_on_cuda([](const Inputs& v) { return clamp(v[0], -1.0, 1.0); }, {special}, tol_for(dt), false);
  }
  for (DType dt : kIntTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({45}, dt, 92);
    expect_exact_on_cuda([](const Inputs& v) { return clamp(v[0], int64_t{10}, int64_t{30}); }, {x});
    expect_exact_on_cuda([](const Inputs& v) { return clamp(v[0], std::nullopt, int64_t{5}); }, {x});
    // A float bound makes an integer tensor's result float.
    expect_same_on_cuda([](const Inputs& v) { return clamp(v[0], 2.5, std::nullopt); }, {x}, tol_for(kFloat32), false);
  }
  // In place, with the gradient through the clone of the old values.
  expect_same_on_cuda(
      [](const Inputs& v) {
        Tensor y = v[0] * 1.0;
        clamp_(y, -0.2, 0.2);
        return y;
      },
      {random_tensor({50}, kFloat32, 93)}, tol_for(kFloat32));
}

// ------------------------------------------------------------------ prod, norm, var / std

TEST(CudaOps2, ProdMatchesCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({23}, dt, 101, 0.8, 1.2);
    expect_same_on_cuda([](const Inputs& v) { return prod(v[0]); }, {x}, tol_for(dt));
    expect_same_on_cuda([](const Inputs& v) { return prod(v[0].reshape({23, 1}).expand({23, 3}).t()); }, {x},
                        tol_for(dt));
    // A zero: the gradient goes to the zero's slot only.
    Tensor z = x.clone();
    z.slice(0, 4, 5).fill_(0.0);
    expect_same_on_cuda([](const Inputs& v) { return prod(v[0]); }, {z}, tol_for(dt));
  }
}

TEST(CudaOps2, NormMatchesCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> orders = {0.0, 1.0, 2.0, 3.0, 0.5, inf, -inf};
  for (DType dt : kFloatTypes)
    for (double p : orders) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " p=" + std::to_string(p));
      Tensor x = random_tensor({9, 150}, dt, 111);
      const Tol t{tol_for(dt).atol * 10, tol_for(dt).rtol * 10};
      expect_same_on_cuda([p](const Inputs& v) { return norm(v[0], p, {}, false); }, {x}, t, p != 0.0);
      expect_same_on_cuda([p](const Inputs& v) { return norm(v[0], p, {1}, true); }, {x}, t, p != 0.0);
      expect_same_on_cuda([p](const Inputs& v) { return norm(v[0].t(), p, {1}, false); }, {x}, t, p != 0.0);
    }
}

TEST(CudaOps2, VarStdMatchCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes)
    for (int64_t correction : {0, 1}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " correction " + std::to_string(correction));
      Tensor x = random_tensor({6, 257, 3}, dt, 121, 10.0, 12.0);  // far from 0: two passes matter
      const Tol t{tol_for(dt).atol * 10, tol_for(dt).rtol * 10};
      for (const Shape& dims : std::vector<Shape>{{}, {1}, {0, 2}, {2}}) {
        expect_same_on_cuda([&](const Inputs& v) { return var(v[0], dims, correction, false); }, {x}, t);
        expect_same_on_cuda([&](const Inputs& v) { return ember::std(v[0].transpose(0, 1), dims, correction, true); },
                            {x}, t);
      }
    }
}

// Variance / standard deviation over more than a million elements (whole tensor, long rows,
// long columns) run in chunks: per-chunk sums, the means, per-chunk squared deviations about
// them, each combined in order by a second kernel; data far from 0 (a one-pass formula would
// lose the variance) and a NaN in a late chunk.
TEST(CudaOps2, LongVarStdInChunksMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t n = (1 << 20) + 7;
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const bool wide = dt == DType::f32 || dt == DType::f64;
    Tensor x = random_tensor({n}, dt, 195, wide ? 1000.0 : 10.0, wide ? 1002.0 : 12.0);
    const Tol t{tol_for(dt).atol * 10, tol_for(dt).rtol * 10};
    for (int64_t correction : {0, 1}) {
      SCOPED_TRACE("correction " + std::to_string(correction));
      expect_same_on_cuda([&](const Inputs& v) { return var(v[0], {}, correction, false); }, {x}, t, false);
      expect_same_on_cuda([&](const Inputs& v) { return ember::std(v[0], {}, correction, false); }, {x}, t, false);
      // Long rows (3 of 349999) and long columns (349999 x 3).
      Tensor r = x.narrow(0, 0, 3 * 349999);
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return var(v[0].view({3, 349999}), {1}, correction, false);
          },
          {r}, t, false);
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return ember::std(v[0].view({349999, 3}), {0}, correction, true);
          },
          {r}, t, false);
    }
    // A whole-tensor variance with its gradient (the backward is unchanged; a smaller tensor that
    // still runs in chunks).
    Tensor m = random_tensor({300001}, dt, 196, wide ? 1000.0 : 10.0, wide ? 1002.0 : 12.0);
    expect_same_on_cuda([](const Inputs& v) { return var(v[0], {}, 1, false); }, {m}, t);
    Tensor y = x.clone();
    y.narrow(0, n - 100, 1).fill_(nan);
    Tensor got = var(y.to(kDev), {}, 1, false);
    EXPECT_TRUE(std::isnan(got.item<double>()));
    EXPECT_TRUE(close_to(got, var(y, {}, 1, false), t));
  }
}

// ------------------------------------------------------------------ dropout and dtype conversion of offset views

TEST(CudaOps2, DropoutOfOffsetViewsEqualsCpuBitForBit) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Offset 0: four-element vector accesses plus a scalar tail (n % 4 != 0); offsets 1 and 2:
  // an input that is not aligned to four elements, which must take the scalar path.
  for (DType dt : kFloatTypes)
    for (int64_t n : {int64_t{1}, int64_t{6}, int64_t{1001}, int64_t{4099}})
      for (int64_t off : {int64_t{0}, int64_t{1}, int64_t{2}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " n " + std::to_string(n) + " offset " + std::to_string(off));
        Tensor base = random_tensor({n + 2}, dt, static_cast<uint32_t>(150 + n + off));
        Tensor bc = base.detach().requires_grad_(true);
        Tensor bg = base.to(kDev).requires_grad_(true);
        Generator gc(77 + static_cast<uint64_t>(n)), gg(77 + static_cast<uint64_t>(n));
        gc.reserve(5);  // a non-zero counter offset
        gg.reserve(5);
        Tensor yc = dropout(bc.slice(0, off, off + n), 0.4, true, &gc);
        Tensor yg = dropout(bg.slice(0, off, off + n), 0.4, true, &gg);
        ASSERT_TRUE(yg.is_cuda());
        EXPECT_TRUE(close_to(yg, yc, kExact)) << "output";
        EXPECT_EQ(gg.state(), gc.state());
        yc.sum().backward();
        yg.sum().backward();
        EXPECT_TRUE(close_to(bg.grad(), bc.grad(), kExact)) << "mask (the gradient of the sum)";
      }
}

TEST(CudaOps2, DTypeConversionOfOffsetViewsMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Contiguous sources and destinations take the vectorised kernel when both are aligned to four
  // elements (offset 0; 4099 leaves a tail of 3) and its scalar loop otherwise (offset 1).
  constexpr int64_t kN = 4099;
  uint32_t seed = 170;
  for (DType from : kEveryType)
    for (DType to : kEveryType)
      for (int64_t off : {int64_t{0}, int64_t{1}}) {
        SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to) + " offset " + std::to_string(off));
        Tensor h = values_of({kN + 1}, from, seed++);
        // Negative values to u8 are undefined in C++ (and differ between CPU and GPU casts).
        if (to == DType::u8 && from != DType::u8 && from != DType::boolean) h = abs(h);
        Tensor d = h.to(kDev);
        Tensor got = d.slice(0, off, off + kN).to(to);
        ASSERT_TRUE(got.is_cuda());
        EXPECT_TRUE(close_to(got, h.slice(0, off, off + kN).to(to), kExact));
        // Into an offset destination view.
        Tensor dst = empty({kN + 1}, {.dtype = to, .device = kDev}).slice(0, 1, kN + 1);
        dst.copy_(d.slice(0, off, off + kN));
        EXPECT_TRUE(close_to(dst, h.slice(0, off, off + kN).to(to), kExact)) << "offset destination";
      }
}

TEST(CudaOps2, FillOfOffsetAndStridedViewsMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Contiguous fills store 16 bytes at a time when aligned (offset 0, with a tail) and one element
  // at a time otherwise (offset 1); a transposed view takes the strided kernel.
  for (DType dt : kEveryType)
    for (int64_t off : {int64_t{0}, int64_t{1}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " offset " + std::to_string(off));
      Tensor h = values_of({1003}, dt, 180);
      Tensor d = h.to(kDev);
      h.slice(0, off, off + 999).fill_(3);
      d.slice(0, off, off + 999).fill_(3);
      EXPECT_TRUE(close_to(d, h, kExact));
      Tensor h2 = values_of({37, 29}, dt, 181), d2 = h2.to(kDev);
      h2.t().slice(0, off, 29).fill_(1);
      d2.t().slice(0, off, 29).fill_(1);
      EXPECT_TRUE(close_to(d2, h2, kExact)) << "strided";
    }
}

// ------------------------------------------------------------------ backend errors

TEST(CudaOps2, BackendRejectsWhatItCannotDo) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor f = zeros({4}, {.device = kDev}), b = zeros({4}, {.dtype = kBool, .device = kDev});
  Tensor i = zeros({4}, {.dtype = kInt64, .device = kDev});
  try {
    cuda_backend::binary(cpu::BinaryOp::logical_and, b, f, f);
    ADD_FAILURE() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("logical_and/logical_or take bool inputs, got float32"), std::string::npos)
        << e.what();
  }
  try {
    cuda_backend::binary(cpu::BinaryOp::div, i, i, i);
    ADD_FAILURE() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("needs floating-point inputs, got int64"), std::string::npos) << e.what();
  }
  try {
    cuda_backend::unary(cpu::UnaryOp::exp, i, i);
    ADD_FAILURE() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("needs a floating-point input, got int64"), std::string::npos) << e.what();
  }
  try {
    Tensor out = empty({}, {.dtype = kInt64, .device = kDev});
    cuda_backend::reduce(out, i, {1, 4, 1}, cpu::ReduceKind::kNormP, 2.0);
    ADD_FAILURE() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("norm on CUDA: expected a floating-point input, got int64"),
              std::string::npos)
        << e.what();
  }
  // The op layer's own checks stay in front of the kernels.
  EXPECT_THROW(argmax(zeros({0, 3}, {.device = kDev}), 0), IndexError);
  EXPECT_THROW(logsumexp(zeros({4}, {.dtype = kInt64, .device = kDev}), {0}), DTypeError);  // runs on CUDA now
}

// ------------------------------------------------------------------ masked_fill, triu / tril, one_hot, pad

TEST(CudaOps2, MaskedFillMatchesCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({9, 14}, dt, 131), m = values_of({1, 14}, kBool, 132);
    const bool grad = is_floating(dt);
    expect_same_on_cuda([](const Inputs& v) { return masked_fill(v[0], v[1], 3); }, {x, m}, tol_for(dt), grad);
    expect_same_on_cuda([](const Inputs& v) { return masked_fill(v[0].t(), v[1].t(), 1); },
                        {x, values_of({9, 1}, kBool, 133)}, tol_for(dt), grad);
    expect_same_on_cuda(
        [](const Inputs& v) {
          Tensor y = v[0] * 1;
          masked_fill_(y, v[1], 0);
          return y;
        },
        {x, m}, tol_for(dt), grad);
  }
  // A CPU mask beside a CUDA input is a device error.
  EXPECT_THROW(masked_fill(zeros({3}, {.device = kDev}), zeros({3}, {.dtype = kBool}), 1), DeviceError);
}

TEST(CudaOps2, TriangleOneHotPadMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({3, 7, 5}, dt, 141);
    const bool grad = is_floating(dt);
    for (int64_t d : {-2, 0, 1, 4}) {
      expect_same_on_cuda([d](const Inputs& v) { return triu(v[0], d); }, {x}, tol_for(dt), grad);
      expect_same_on_cuda([d](const Inputs& v) { return tril(v[0].transpose(1, 2), d); }, {x}, tol_for(dt), grad);
    }
    expect_same_on_cuda([](const Inputs& v) { return pad(v[0], {1, 2, 0, 3}, 0.5); }, {x}, tol_for(dt), grad);
    expect_same_on_cuda([](const Inputs& v) { return pad(v[0].t(), {-1, 2}); }, {x}, tol_for(dt), grad);
  }
  for (DType it : {DType::i64, DType::i32}) {
    Tensor idx = random_ints({4, 6}, it, 142, 0, 9);
    expect_exact_on_cuda([](const Inputs& v) { return one_hot(v[0], 10); }, {idx});
    expect_exact_on_cuda([](const Inputs& v) { return one_hot(v[0].t(), -1); }, {idx});
  }
  try {
    one_hot(full({3}, int64_t{5}, {.dtype = kInt64, .device = kDev}), 4);
    ADD_FAILURE() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("class value 5 must be smaller than num_classes = 4"), std::string::npos)
        << e.what();
  }
}
