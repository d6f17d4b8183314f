// Reductions: values against naive double-precision loops, dtypes, dims, keepdim, views,
// empty and 0-d tensors, error paths, and gradients by central differences.
#include <gtest/gtest.h>

#include <algorithm>
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
        if (!m[d])
          want_shape.push_back(shape[d]);
        else if (keep)
          want_shape.push_back(1);
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
    expect_close(xt.sum(dims).to_vector<double>(), naive_reduce(vt, {8, 6}, mask_of(dims, 2), naive_sum), 1e-12, 1e-12,
                 "transpose " + shape_str(dims));
  }
  Tensor sl = x.slice(1, 1, 8, 3);  // columns 1, 4, 7
  std::vector<double> vs;
  for (int i = 0; i < 6; ++i)
    for (int j : {1, 4, 7}) vs.push_back(v[i * 8 + j]);
  for (Shape dims : std::vector<Shape>{{0}, {1}, {}})
    expect_close(sl.sum(dims, true).to_vector<double>(), naive_reduce(vs, {6, 3}, mask_of(dims, 2), naive_sum), 1e-12,
                 1e-12, "slice " + shape_str(dims));
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

TEST(Sum, WideColumnsWithChunkedRows) {
  // (70000, 20) over dim 0: the column-tile path with the rows split into fixed chunks.
  const Shape shape{70000, 20};
  std::vector<double> v = rand_values(numel_of(shape), 5);
  Tensor x = tensor(v, shape).to(kFloat32);
  std::vector<double> vf = x.to_vector<double>();
  expect_close(x.sum({0}).to_vector<double>(), naive_reduce(vf, shape, {true, false}, naive_sum), 1e-3, 1e-6, "sum");
  expect_close(amax(x, {0}).to_vector<double>(),
               naive_reduce(vf, shape, {true, false},
                            [](const std::vector<double>& g) { return *std::max_element(g.begin(), g.end()); }),
               0, 0, "amax");
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

TEST(Mean, Gradient) {
  check_grad([](const Tensor& x) { return x.mean(); }, rand_tensor({3, 4}, 11));
  check_grad([](const Tensor& x) { return x.mean({0}, true); }, rand_tensor({3, 4}, 12));
  check_grad([](const Tensor& x) { return x.t().mean({-1}); }, rand_tensor({3, 4}, 13));
}

// ------------------------------------------------------------------ prod

TEST(Prod, ValuesAndDtypes) {
  std::vector<double> v{1.5, -2.0, 3.0, 0.5, 2.0, -1.0};
  EXPECT_DOUBLE_EQ(prod(tensor(v)).item<double>(), 9.0);
  EXPECT_EQ(prod(tensor(v).to(kFloat32)).dtype(), kFloat32);
  Tensor i = tensor(std::vector<int32_t>{2, 3, -4});
  EXPECT_EQ(prod(i).dtype(), kInt64);
  EXPECT_EQ(prod(i).item<int64_t>(), -24);
  EXPECT_EQ(prod(zeros({0})).item<double>(), 1.0);
  // Non-contiguous: every other element.
  EXPECT_DOUBLE_EQ(prod(tensor(v).slice(0, 0, 6, 2)).item<double>(), 1.5 * 3.0 * 2.0);
}

TEST(Prod, GradientWithAndWithoutZeros) {
  check_grad([](const Tensor& x) { return prod(x); }, tensor(std::vector<double>{1.5, -2.0, 3.0, 0.5}));
  check_grad([](const Tensor& x) { return prod(x); }, tensor(std::vector<double>{1.5, 0.0, 3.0, 0.5}, {2, 2}));
  check_grad([](const Tensor& x) { return prod(x); }, tensor(std::vector<double>{0.0, 2.0, 0.0, 0.5}));
  check_grad([](const Tensor& x) { return prod(x.t()); }, rand_tensor({2, 3}, 14));
}

// ------------------------------------------------------------------ max / min / amax / amin / argmax

double naive_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double naive_min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

TEST(MaxMin, WholeTensorEveryDtype) {
  std::vector<double> v = rand_values(30, 20, -50, 50);
  for (double& x : v) x = std::round(x);
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64}) {
    Tensor x = tensor(v, {5, 6}).to(dt);
    EXPECT_EQ(x.max().item<double>(), naive_max(v)) << dtype_name(dt);
    EXPECT_EQ(x.min().item<double>(), naive_min(v)) << dtype_name(dt);
    EXPECT_EQ(x.max().dtype(), dt);
    EXPECT_EQ(x.t().max().item<double>(), naive_max(v));
  }
  Tensor u = tensor(std::vector<uint8_t>{3, 250, 7});
  EXPECT_EQ(u.max().item<int64_t>(), 250);
  EXPECT_EQ(u.min().item<int64_t>(), 3);
  Tensor b = tensor(std::vector<bool>{false, true, false});
  EXPECT_EQ(b.max().item<bool>(), true);
  EXPECT_EQ(b.min().item<bool>(), false);
  EXPECT_EQ(scalar_tensor(4.0).max().item<double>(), 4.0);
}

TEST(MaxMin, NanPropagates) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = tensor(std::vector<double>{1.0, nan, 3.0, 2.0}, {2, 2});
  EXPECT_TRUE(std::isnan(x.max().item<double>()));
  EXPECT_TRUE(std::isnan(x.min().item<double>()));
  EXPECT_EQ(argmax(x).item<int64_t>(), 1);
  auto [v, i] = max(x, 1);
  std::vector<double> vv = v.to_vector<double>();
  EXPECT_TRUE(std::isnan(vv[0]));
  EXPECT_EQ(vv[1], 3.0);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

TEST(MaxMin, AlongDimValuesIndicesAndTies) {
  // Ties: the first index wins.
  Tensor x = tensor(std::vector<double>{1, 5, 5, 2, 0, 0, 7, 0, -1}, {3, 3});
  auto [v1, i1] = max(x, 1);
  EXPECT_EQ(v1.to_vector<double>(), (std::vector<double>{5, 2, 7}));
  EXPECT_EQ(i1.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(i1.dtype(), kInt64);
  auto [v0, i0] = min(x, 0, true);
  EXPECT_EQ(v0.shape(), (Shape{1, 3}));
  EXPECT_EQ(v0.to_vector<double>(), (std::vector<double>{1, 0, -1}));
  EXPECT_EQ(i0.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  auto [vn, in] = max(x, -2);
  EXPECT_EQ(vn.to_vector<double>(), (std::vector<double>{7, 5, 5}));
  EXPECT_EQ(in.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 0}));
  EXPECT_EQ(argmax(x).item<int64_t>(), 6);
  EXPECT_EQ(argmin(x).item<int64_t>(), 8);
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(argmin(x, 0, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(x.argmax(std::nullopt, true).shape(), (Shape{1, 1}));
  EXPECT_EQ(x.t().argmax().item<int64_t>(), 2);  // x.t() flattened: 1 2 7 5 0 0 5 0 -1
}

TEST(MaxMin, AlongDimMatchesNaiveOnLargerViews) {
  const Shape shape{4, 300, 7};
  std::vector<double> v = rand_values(numel_of(shape), 21);
  Tensor x = tensor(v, shape);
  for (int64_t d : {0, 1, 2}) {
    std::vector<bool> m(3, false);
    m[d] = true;
    auto [vals, idx] = max(x, d);
    expect_close(vals.to_vector<double>(), naive_reduce(v, shape, m, naive_max), 0, 0, "max dim");
    expect_close(min(x, d).first.to_vector<double>(), naive_reduce(v, shape, m, naive_min), 0, 0, "min dim");
    // indices point at the values
    Tensor picked = amax(x, {d});
    expect_close(picked.to_vector<double>(), vals.to_vector<double>(), 0, 0, "amax == max");
    std::vector<int64_t> ii = idx.to_vector<int64_t>();
    std::vector<double> vv = vals.to_vector<double>();
    Shape out_shape;
    for (int64_t k = 0; k < 3; ++k)
      if (k != d) out_shape.push_back(shape[k]);
    for (size_t o = 0; o < ii.size(); ++o) {
      Shape oi = unravel(static_cast<int64_t>(o), out_shape);
      oi.insert(oi.begin() + d, ii[o]);
      int64_t flat = (oi[0] * shape[1] + oi[1]) * shape[2] + oi[2];
      EXPECT_EQ(v[flat], vv[o]);
    }
  }
  Tensor xt = x.transpose(0, 2);  // (7, 300, 4) non-contiguous
  std::vector<double> vt = xt.contiguous().to_vector<double>();
  expect_close(amin(xt, {0, 2}).to_vector<double>(), naive_reduce(vt, {7, 300, 4}, {true, false, true}, naive_min), 0,
               0, "amin over dims 0, 2 of a transpose");
  expect_close(amax(xt, {1}, true).to_vector<double>(), naive_reduce(vt, {7, 300, 4}, {false, true, false}, naive_max),
               0, 0, "amax over middle of a transpose");
}

TEST(MaxMin, EmptyErrors) {
  EXPECT_THROW(zeros({0}).max(), ValueError);
  EXPECT_THROW(zeros({2, 0}).min(), ValueError);
  EXPECT_THROW(argmax(zeros({0, 3})), ValueError);
  EXPECT_THROW(max(zeros({2, 0}), 1), IndexError);
  EXPECT_THROW(argmin(zeros({2, 0}), 1), IndexError);
  EXPECT_THROW(amax(zeros({2, 0}), {1}), IndexError);
  // Reducing a non-empty dim of an empty tensor is fine: the result is empty.
  EXPECT_EQ(max(zeros({0, 3}), 1).first.shape(), (Shape{0}));
  EXPECT_EQ(amax(zeros({0, 3}), {1}).shape(), (Shape{0}));
  EXPECT_THROW(max(zeros({2, 3}), 2), IndexError);
  EXPECT_THROW(argmax(zeros({2, 3}), -3), IndexError);
  EXPECT_THROW(amin(zeros({2, 3}), {0, 0}), ValueError);
}

TEST(MaxMin, Gradients) {
  check_grad([](const Tensor& x) { return x.max(); }, rand_tensor({3, 4}, 22));
  check_grad([](const Tensor& x) { return x.min(); }, rand_tensor({3, 4}, 23));
  check_grad([](const Tensor& x) { return max(x, 1).first; }, rand_tensor({3, 4}, 24));
  check_grad([](const Tensor& x) { return min(x.t(), 0, true).first; }, rand_tensor({3, 4}, 25));
  check_grad([](const Tensor& x) { return amax(x, {0, 2}); }, rand_tensor({2, 3, 4}, 26));
  check_grad([](const Tensor& x) { return amin(x.transpose(0, 1), {1}, true); }, rand_tensor({2, 3, 4}, 27));
}

TEST(MaxMin, TiesSplitGradientEvenlyForAmax) {
  Tensor x = tensor(std::vector<double>{1, 3, 3, 0, 2, 2}, {2, 3});
  x.requires_grad_(true);
  amax(x, {1}).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0.5, 0.5, 0, 0.5, 0.5}));
  Tensor y = tensor(std::vector<double>{1, 3, 3}).requires_grad_(true);
  max(y, 0).first.backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{0, 1, 0}));  // the selected index only
}

// ------------------------------------------------------------------ var / std

double naive_var(const std::vector<double>& v, int64_t corr) {
  double m = naive_sum(v) / static_cast<double>(v.size()), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(std::max<int64_t>(0, static_cast<int64_t>(v.size()) - corr));
}

TEST(VarStd, ValuesDimsCorrectionDtypes) {
  const Shape shape{3, 5, 4};
  std::vector<double> v = rand_values(60, 30, 1000.0, 1001.0);  // far from 0: tests the two-pass scheme
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor x = tensor(v, shape).to(dt);
    std::vector<double> vd = x.to_vector<double>();
    const double tol = dt == kFloat64 ? 1e-9 : 1e-4;
    for (int64_t corr : {0, 1, 2}) {
      for (Shape dims : std::vector<Shape>{{}, {1}, {0, 2}, {-1}}) {
        auto f = [corr](const std::vector<double>& g) { return naive_var(g, corr); };
        auto fs = [corr](const std::vector<double>& g) { return std::sqrt(naive_var(g, corr)); };
        expect_close(var(x, dims, corr).to_vector<double>(), naive_reduce(vd, shape, mask_of(dims, 3), f), tol, tol,
                     "var" + shape_str(dims));
        expect_close(ember::std(x, dims, corr, true).to_vector<double>(), naive_reduce(vd, shape, mask_of(dims, 3), fs),
                     tol, tol, "std" + shape_str(dims));
      }
    }
    Tensor xt = x.transpose(0, 2);
    std::vector<double> vt = xt.contiguous().to_vector<double>();
    auto f1 = [](const std::vector<double>& g) { return naive_var(g, 1); };
    expect_close(var(xt, {1}).to_vector<double>(), naive_reduce(vt, {4, 5, 3}, {false, true, false}, f1), tol, tol,
                 "var of a transpose");
  }
  Tensor h = tensor(std::vector<double>{1, 2, 3, 4}).to(kBFloat16);
  EXPECT_NEAR(var(h).item<double>(), 5.0 / 3.0, 1e-2);
  EXPECT_EQ(var(h).dtype(), kBFloat16);
  EXPECT_TRUE(std::isnan(var(tensor(std::vector<double>{2.0})).item<double>()));  // 0/0 as PyTorch
}

TEST(VarStd, Errors) {
  EXPECT_THROW(var(tensor(std::vector<int64_t>{1, 2})), DTypeError);
  EXPECT_THROW(ember::std(zeros({2, 2}), {2}), IndexError);
}

TEST(VarStd, Gradients) {
  check_grad([](const Tensor& x) { return var(x); }, rand_tensor({3, 4}, 31));
  check_grad([](const Tensor& x) { return var(x, {1}, 0, true); }, rand_tensor({3, 4}, 32));
  check_grad([](const Tensor& x) { return ember::std(x.t(), {0}); }, rand_tensor({3, 4}, 33));
  check_grad([](const Tensor& x) { return ember::std(x, {0, 2}, 1, true); }, rand_tensor({3, 2, 4}, 34));
}

TEST(VarStd, ZeroStdGivesZeroGradient) {
  Tensor x = full({2, 3}, 1.5, {.dtype = kFloat64});
  x.requires_grad_(true);
  ember::std(x, {1}).sum().backward();
  for (double g : x.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
}

// ------------------------------------------------------------------ norm

TEST(Norm, OrdersDimsAndViews) {
  const Shape shape{3, 4};
  std::vector<double> v = rand_values(12, 40);
  Tensor x = tensor(v, shape);
  auto pnorm = [](double p) {
    return [p](const std::vector<double>& g) {
      if (std::isinf(p)) {
        double m = p > 0 ? 0 : INFINITY;
        for (double e : g) m = p > 0 ? std::max(m, std::fabs(e)) : std::min(m, std::fabs(e));
        return m;
      }
      double s = 0;
      for (double e : g) s += p == 0 ? (e != 0) : std::pow(std::fabs(e), p);
      return p == 0 ? s : std::pow(s, 1 / p);
    };
  };
  for (double p : std::vector<double>{2.0, 1.0, 3.0, 0.5, 0.0, INFINITY, -INFINITY}) {
    for (Shape dims : std::vector<Shape>{{}, {0}, {-1}}) {
      expect_close(norm(x, p, dims).to_vector<double>(), naive_reduce(v, shape, mask_of(dims, 2), pnorm(p)), 1e-12,
                   1e-12, "p=" + std::to_string(p) + shape_str(dims));
    }
  }
  EXPECT_NEAR(norm(tensor(std::vector<float>{3, 4})).item<double>(), 5.0, 1e-6);
  EXPECT_EQ(norm(x.t(), 2, {0}, true).shape(), (Shape{1, 3}));
  EXPECT_THROW(norm(tensor(std::vector<int64_t>{3, 4})), DTypeError);
}

TEST(Norm, Gradients) {
  for (double p : std::vector<double>{2.0, 1.0, 3.0, 1.5, INFINITY, -INFINITY}) {
    check_grad([p](const Tensor& x) { return norm(x, p); }, rand_tensor({3, 4}, 41));
    check_grad([p](const Tensor& x) { return norm(x.t(), p, {1}, true); }, rand_tensor({3, 4}, 42));
  }
}

TEST(Norm, ZeroNormGivesZeroGradient) {
  Tensor x = zeros({3}, {.dtype = kFloat64, .requires_grad = true});
  norm(x).backward();
  for (double g : x.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
}

// ------------------------------------------------------------------ logsumexp

TEST(Logsumexp, StableValues) {
  const Shape shape{3, 4};
  std::vector<double> v = rand_values(12, 50, -5, 5);
  auto lse = [](const std::vector<double>& g) {
    double m = naive_max(g), s = 0;
    for (double e : g) s += std::exp(e - m);
    return m + std::log(s);
  };
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor x = tensor(v, shape).to(dt);
    std::vector<double> vd = x.to_vector<double>();
    for (Shape dims : std::vector<Shape>{{}, {0}, {1}, {-1}}) {
      expect_close(logsumexp(x, dims).to_vector<double>(), naive_reduce(vd, shape, mask_of(dims, 2), lse), 1e-6, 1e-6,
                   shape_str(dims));
    }
  }
  // No overflow for large inputs (naive exp would give inf).
  Tensor big = tensor(std::vector<float>{1000.f, 1000.f});
  EXPECT_NEAR(logsumexp(big, {0}).item<double>(), 1000.0 + std::log(2.0), 1e-3);
  Tensor ninf = full({3}, -INFINITY);
  EXPECT_EQ(logsumexp(ninf, {0}).item<double>(), -INFINITY);
  Tensor pinf = tensor(std::vector<double>{1.0, INFINITY});
  EXPECT_EQ(logsumexp(pinf, {0}).item<double>(), INFINITY);
  EXPECT_EQ(logsumexp(zeros({0, 2}), {0}).to_vector<double>(), (std::vector<double>{-INFINITY, -INFINITY}));
  EXPECT_THROW(logsumexp(tensor(std::vector<int64_t>{1, 2}), {0}), DTypeError);
}

TEST(Logsumexp, Gradient) {
  check_grad([](const Tensor& x) { return logsumexp(x, {1}); }, rand_tensor({3, 4}, 51));
  check_grad([](const Tensor& x) { return logsumexp(x.t(), {0, 1}, true); }, rand_tensor({3, 4}, 52));
}

// ------------------------------------------------------------------ cumsum

TEST(Cumsum, ValuesDimsDtypes) {
  Tensor x = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(cumsum(x, 1).to_vector<double>(), (std::vector<double>{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(cumsum(x, 0).to_vector<double>(), (std::vector<double>{1, 2, 3, 5, 7, 9}));
  EXPECT_EQ(cumsum(x, -1).to_vector<double>(), (std::vector<double>{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(cumsum(x.t(), 1).to_vector<double>(), (std::vector<double>{1, 5, 2, 7, 3, 9}));
  Tensor i = tensor(std::vector<int32_t>{1, 2, 3});
  EXPECT_EQ(cumsum(i, 0).dtype(), kInt64);
  EXPECT_EQ(cumsum(i, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(cumsum(x.to(kFloat16), 1).dtype(), kFloat16);
  EXPECT_EQ(cumsum(scalar_tensor(2.0), 0).item<double>(), 2.0);
  EXPECT_EQ(cumsum(zeros({0, 3}), 0).shape(), (Shape{0, 3}));
  EXPECT_THROW(cumsum(x, 2), IndexError);
  // Long f32 prefix stays accurate (double accumulator).
  std::vector<double> c = cumsum(full({1000000}, 0.1f), 0).to_vector<double>();
  EXPECT_TRUE(std::fabs(c.back() - 1e5) <= 1e-2) << c.back();
}

TEST(Cumsum, Gradient) {
  check_grad([](const Tensor& x) { return cumsum(x, 1); }, rand_tensor({3, 4}, 61));
  check_grad([](const Tensor& x) { return cumsum(x, 0); }, rand_tensor({3, 4}, 62));
  check_grad([](const Tensor& x) { return cumsum(x.t(), 0); }, rand_tensor({3, 4}, 63));
}

// ------------------------------------------------------------------ cross-checks

TEST(Reduction, SameBitsForAnyThreadCount) {
  // Fixed chunking: the result must not depend on how many threads ran it.
  Tensor x = rand_tensor({3, 200000}, 70);
  Tensor xt = rand_tensor({200000, 3}, 71);
  const int before = get_num_threads();
  std::vector<std::vector<double>> runs;
  for (int t : {1, 2}) {
    set_num_threads(t);
    std::vector<double> r;
    for (Tensor s : {x.sum(), x.sum({1}), xt.sum({0}), x.mean({1}), var(x, {1}), norm(xt, 2, {0})})
      for (double e : s.to_vector<double>()) r.push_back(e);
    runs.push_back(r);
  }
  set_num_threads(before);
  ASSERT_EQ(runs[0].size(), runs[1].size());
  for (size_t i = 0; i < runs[0].size(); ++i) EXPECT_EQ(runs[0][i], runs[1][i]) << i;
}

TEST(Reduction, AutogradGradcheckAgrees) {
  // The shared gradcheck (its own weights and step) on a composite of several reductions.
  auto fn = [](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    return sum(x, {1}) + var(x, {1}) + norm(x, 2, {1}) + logsumexp(x, {1}) + amax(x, {1}) + mean(cumsum(x, 1), {1});
  };
  Tensor x = rand_tensor({3, 5}, 72, kFloat64).requires_grad_(true);
  autograd::GradcheckResult r = autograd::gradcheck(fn, {x});
  EXPECT_TRUE(r.ok) << r.message;
  auto fs = [](const std::vector<Tensor>& in) { return log_softmax(in[0], 0) + softmax(in[0].t(), 1).t(); };
  autograd::GradcheckResult rs = autograd::gradcheck(fs, {x});
  EXPECT_TRUE(rs.ok) << rs.message;
}
