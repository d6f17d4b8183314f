// Reductions: values against naive double-precision loops, dtypes, dims, keepdim, views,
// empty and 0-d tensors, error paths, and gradients by central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;

namespace {

/// Deterministic pseudo-random doubles in [lo, hi).
std::vector<double> rand_values(int64_t n, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

Tensor rand_tensor(const Shape& shape, uint32_t seed, DType dt = kFloat32) {
  return tensor(rand_values(numel_of(shape), seed), shape).to(dt);
}

/// Row-major multi-index of flat index i.
Shape unravel(int64_t i, const Shape& shape) {
  Shape idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

/// Naive reference: reduces `vals` (row-major, `shape`) over the dims in `mask` with `f`
/// applied to the list of values of each output; output in row-major kept-dim order.
std::vector<double> naive_reduce(const std::vector<double>& vals, const Shape& shape, const std::vector<bool>& mask,
                                 const std::function<double(const std::vector<double>&)>& f) {
  Shape out_shape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!mask[d]) out_shape.push_back(shape[d]);
  std::vector<std::vector<double>> groups(static_cast<size_t>(numel_of(out_shape)));
  for (int64_t i = 0; i < numel_of(shape); ++i) {
    Shape idx = unravel(i, shape);
    int64_t o = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      if (!mask[d]) o = o * shape[d] + idx[d];
    groups[o].push_back(vals[i]);
  }
  std::vector<double> out;
  for (auto& gr : groups) out.push_back(f(gr));
  return out;
}

double naive_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(got[i] - want[i]);
    EXPECT_TRUE(diff <= atol + rtol * std::fabs(want[i]))
        << what << " [" << i << "]: got " << got[i] << " want " << want[i];
  }
}

std::vector<bool> mask_of(const Shape& dims, int64_t nd) {
  std::vector<bool> m(static_cast<size_t>(nd), dims.empty());
  for (int64_t d : dims) m[d < 0 ? d + nd : d] = true;
  return m;
}

/// Central-difference gradient check in f64 of scalar L = sum(fn(x) * w) against autograd.
void check_grad(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x0, double eps = 1e-6,
                double tol = 1e-6) {
  Tensor x = x0.to(kFloat64).detach().contiguous().clone();
  x.requires_grad_(true);
  Tensor y = fn(x);
  std::vector<double> w = rand_values(y.numel(), 1234, 0.5, 1.5);
  Tensor wt = tensor(w, y.shape().empty() ? Shape{} : y.shape());
  if (y.shape().empty()) wt = wt.reshape({});
  y.backward(wt.to(kFloat64));
  ASSERT_TRUE(x.grad().defined());
  std::vector<double> analytic = x.grad().to_vector<double>();
  auto loss = [&](const Tensor& xin) {
    NoGradGuard ng;
    std::vector<double> out = fn(xin).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * w[i];
    return s;
  };
  std::vector<double> base = x.detach().to_vector<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    std::vector<double> p = base, m = base;
    p[i] += eps;
    m[i] -= eps;
    const double num = (loss(tensor(p, x.shape())) - loss(tensor(m, x.shape()))) / (2 * eps);
    EXPECT_TRUE(std::fabs(num - analytic[i]) <= tol + 1e-5 * std::fabs(num))
        << "element " << i << ": analytic " << analytic[i] << " numeric " << num;
  }
}

}  // namespace

// ------------------------------------------------------------------ sum

TEST(Sum, AllDimsAndSubsetsMatchNaiveF64) {
  const Shape shape{3, 4, 5};
  std::vector<double> v = rand_values(60, 1);
  Tensor x = tensor(v, shape);
  for (Shape dims : std::vector<Shape>{{}, {0}, {1}, {2}, {-1}, {0, 1}, {1, 2}, {0, 2}, {2, 0}, {0, 1, 2}}) {
    for (bool keep : {false, true}) {
      Tensor s = x.sum(dims, keep);
      std::vector<bool> m = mask_of(dims, 3);
      Shape want_shape;
      for (int64_t d = 0; d < 3; ++d)
        if (!m[d]) want_shape.push_back(shape[d]);
        else if (keep) want_shape.push_back(1);
      EXPECT_EQ(s.shape(), want_shape) << shape_str(dims);
      EXPECT_EQ(s.dtype(), kFloat64);
      expect_close(s.to_vector<double>(), naive_reduce(v, shape, m, naive_sum), 1e-12, 1e-12, shape_str(dims));
    }
  }
}

TEST(Sum, EveryDtype) {
  std::vector<double> v = rand_values(24, 2, -3, 3);
  for (double& x : v) x = std::round(x);  // exact in every dtype
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64}) {
    Tensor x = tensor(v, {4, 6}).to(dt);
    Tensor s = x.sum({1});
    EXPECT_EQ(s.dtype(), is_floating(dt) ? dt : kInt64) << dtype_name(dt);
    expect_close(s.to_vector<double>(), naive_reduce(v, {4, 6}, {false, true}, naive_sum), 0, 0, dtype_name(dt));
    EXPECT_EQ(x.sum().item<double>(), naive_sum(v)) << dtype_name(dt);
  }
  Tensor b = tensor(std::vector<bool>{true, false, true, true});
  EXPECT_EQ(b.sum().dtype(), kInt64);
  EXPECT_EQ(b.sum().item<int64_t>(), 3);
  Tensor u = tensor(std::vector<uint8_t>{200, 200, 200});
  EXPECT_EQ(u.sum().item<int64_t>(), 600);  // no uint8 wraparound
}

TEST(Sum, NonContiguousInputs) {
  std::vector<double> v = rand_values(6 * 8, 3);
  Tensor x = tensor(v, {6, 8});
  Tensor xt = x.t();  // (8, 6)
  std::vector<double> vt(48);
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 6; ++j) vt[i * 6 + j] = v[j * 8 + i];
  for (Shape dims : std::vector<Shape>{{0}, {1}, {}}) {
    expect_close(xt.sum(dims).to_vector<double>(), naive_reduce(vt, {8, 6}, mask_of(dims, 2), naive_sum), 1e-12,
                 1e-12, "transpose " + shape_str(dims));
  }
  Tensor sl = x.slice(1, 1, 8, 3);  // columns 1, 4, 7
  std::vector<double> vs;
  for (int i = 0; i < 6; ++i)
    for (int j : {1, 4, 7}) vs.push_back(v[i * 8 + j]);
  for (Shape dims : std::vector<Shape>{{0}, {1}, {}})
    expect_close(sl.sum(dims, true).to_vector<double>(), naive_reduce(vs, {6, 3}, mask_of(dims, 2), naive_sum),
                 1e-12, 1e-12, "slice " + shape_str(dims));
}

TEST(Sum, LongF32SumIsAccurate) {
  Tensor x = full({10000000}, 0.1f);
  const double s = x.sum().item<double>();
  EXPECT_TRUE(std::fabs(s - 1e6) <= 1e-3 * 1e6) << s;
  // Also over a column layout (reducing dim 0 of (10^6, 10)).
  Tensor c = full({1000000, 10}, 0.1f).sum({0});
  for (double e : c.to_vector<double>()) EXPECT_TRUE(std::fabs(e - 1e5) <= 1e-3 * 1e5) << e;
}

TEST(Sum, LargeMatchesNaiveAcrossLayouts) {
  // Big enough to run chunked/parallel paths: rows, columns and middle dims.
  const Shape shape{3, 70000, 5};
  std::vector<double> v = rand_values(numel_of(shape), 4);
  Tensor x = tensor(v, shape).to(kFloat32);
  std::vector<double> vf = x.to_vector<double>();
  for (Shape dims : std::vector<Shape>{{1}, {0, 1}, {1, 2}, {2}, {}})
    expect_close(x.sum(dims).to_vector<double>(), naive_reduce(vf, shape, mask_of(dims, 3), naive_sum), 1e-3, 1e-5,
                 shape_str(dims));
}

TEST(Sum, EmptyAndZeroDim) {
  Tensor e = zeros({0, 3});
  EXPECT_EQ(e.sum().item<double>(), 0.0);
  Tensor s0 = e.sum({0});
  EXPECT_EQ(s0.shape(), (Shape{3}));
  expect_close(s0.to_vector<double>(), {0, 0, 0}, 0, 0, "empty dim 0");
  EXPECT_EQ(e.sum({1}).shape(), (Shape{0}));
  Tensor z = scalar_tensor(2.5);
  EXPECT_EQ(z.sum().item<double>(), 2.5);
  EXPECT_EQ(z.sum({0}).shape(), Shape{});
  EXPECT_EQ(z.sum({-1}, true).shape(), Shape{});
}

TEST(Sum, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(x.sum({2}), IndexError);
  EXPECT_THROW(x.sum({-3}), IndexError);
  EXPECT_THROW(x.sum({1, -1}), ValueError);
  EXPECT_THROW(scalar_tensor(1.0).sum({1}), IndexError);
  try {
    x.sum({5});
    FAIL();
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("sum"), std::string::npos) << e.what();
  }
}

TEST(Sum, Gradient) {
  check_grad([](const Tensor& x) { return x.sum(); }, rand_tensor({3, 4}, 5));
  check_grad([](const Tensor& x) { return x.sum({1}); }, rand_tensor({3, 4}, 6));
  check_grad([](const Tensor& x) { return x.sum({0, 2}, true); }, rand_tensor({2, 3, 4}, 7));
  check_grad([](const Tensor& x) { return x.t().sum({1}); }, rand_tensor({3, 4}, 8));
  check_grad([](const Tensor& x) { return x.slice(1, 0, 4, 2).sum({0}); }, rand_tensor({3, 4}, 9));
}

TEST(Sum, IntegerHasNoGradHistory) {
  Tensor x = tensor(std::vector<int64_t>{1, 2, 3});
  EXPECT_FALSE(x.sum().requires_grad());
}

// ------------------------------------------------------------------ mean

TEST(Mean, ValuesDimsAndDtypes) {
  const Shape shape{4, 3, 2};
  std::vector<double> v = rand_values(24, 10);
  auto naive_mean = [](const std::vector<double>& g) { return naive_sum(g) / static_cast<double>(g.size()); };
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    Tensor x = tensor(v, shape).to(dt);
    std::vector<double> vd = x.to_vector<double>();
    const double tol = dt == kFloat64 ? 1e-12 : dt == kFloat32 ? 1e-6 : 1e-2;
    for (Shape dims : std::vector<Shape>{{}, {0}, {-1}, {0, 2}}) {
      Tensor m = x.mean(dims, true);
      EXPECT_EQ(m.dtype(), dt);
      EXPECT_EQ(m.dim(), 3);
      expect_close(m.to_vector<double>(), naive_reduce(vd, shape, mask_of(dims, 3), naive_mean), tol, tol,
                   std::string(dtype_name(dt)) + shape_str(dims));
    }
  }
  EXPECT_NEAR(tensor(v, shape).mean().item<double>(), naive_mean(v), 1e-12);
  EXPECT_TRUE(std::isnan(zeros({0}).mean().item<double>()));
}

TEST(Mean, IntegerInputIsAnError) {
  EXPECT_THROW(tensor(std::vector<int64_t>{1, 2}).mean(), DTypeError);
  try {
    tensor(std::vector<int32_t>{1, 2}).mean({0});
    FAIL();
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("could not infer output dtype"), std::string::npos) << e.what();
  }
}
