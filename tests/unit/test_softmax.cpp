// softmax / log_softmax: values against a double-precision reference, stability, layouts
// (last dim, middle dim, views), dtypes, errors and gradients by central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;

namespace {

std::vector<double> rand_values(int64_t n, uint32_t seed, double lo = -3.0, double hi = 3.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

/// Reference softmax along `dim` of a row-major tensor of `shape`, in double.
std::vector<double> ref_softmax(const std::vector<double>& v, const Shape& shape, int64_t dim, bool log) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) inner *= shape[d];
  const int64_t n = shape[dim];
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, v[(o * n + k) * inner + i]);
      for (int64_t k = 0; k < n; ++k) s += std::exp(v[(o * n + k) * inner + i] - m);
      for (int64_t k = 0; k < n; ++k) {
        const double x = v[(o * n + k) * inner + i];
        out[(o * n + k) * inner + i] = log ? x - m - std::log(s) : std::exp(x - m) / s;
      }
    }
  return out;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(got[i] - want[i]);
    ASSERT_TRUE(diff <= atol + rtol * std::fabs(want[i]))
        << what << " [" << i << "]: got " << got[i] << " want " << want[i];
  }
}

/// Central differences in f64 of L = sum(fn(x) * w) against autograd.
void check_grad(const std::function<Tensor(const Tensor&)>& fn, const std::vector<double>& v, const Shape& shape) {
  Tensor x = tensor(v, shape).requires_grad_(true);
  Tensor y = fn(x);
  std::vector<double> w = rand_values(y.numel(), 99, 0.5, 1.5);
  y.backward(tensor(w, y.shape()));
  ASSERT_TRUE(x.grad().defined());
  std::vector<double> analytic = x.grad().to_vector<double>();
  auto loss = [&](const std::vector<double>& in) {
    NoGradGuard ng;
    std::vector<double> out = fn(tensor(in, shape)).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * w[i];
    return s;
  };
  const double eps = 1e-6;
  for (size_t i = 0; i < v.size(); ++i) {
    std::vector<double> p = v, m = v;
    p[i] += eps;
    m[i] -= eps;
    const double num = (loss(p) - loss(m)) / (2 * eps);
    EXPECT_TRUE(std::fabs(num - analytic[i]) <= 1e-6 + 1e-5 * std::fabs(num))
        << "element " << i << ": analytic " << analytic[i] << " numeric " << num;
  }
}

}  // namespace

TEST(Softmax, MatchesReferenceEveryDimAndDtype) {
  const Shape shape{3, 5, 7};
  std::vector<double> v = rand_values(numel_of(shape), 1);
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
    Tensor x = tensor(v, shape).to(dt);
    std::vector<double> vd = x.to_vector<double>();
    const double tol = dt == kFloat64 ? 1e-12 : dt == kFloat32 ? 1e-6 : dt == kFloat16 ? 2e-3 : 1e-2;
    for (int64_t dim : {0, 1, 2, -1}) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      for (bool log : {false, true}) {
        Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
        EXPECT_EQ(y.dtype(), dt);
        EXPECT_EQ(y.shape(), shape);
        expect_close(y.to_vector<double>(), ref_softmax(vd, shape, d, log), tol, tol,
                     std::string(dtype_name(dt)) + " dim " + std::to_string(dim) + (log ? " log" : ""));
      }
    }
  }
}

TEST(Softmax, RowsSumToOneAndLongRows) {
  // A vocabulary-sized row and many short rows (parallel path).
  for (Shape shape : std::vector<Shape>{{2, 50257}, {4096, 17}}) {
    std::vector<double> v = rand_values(numel_of(shape), 2, -10, 10);
    Tensor y = softmax(tensor(v, shape).to(kFloat32), 1);
    std::vector<double> s = y.sum({1}).to_vector<double>();
    for (double e : s) EXPECT_TRUE(std::fabs(e - 1.0) <= 1e-5) << e;
    expect_close(y.to_vector<double>(), ref_softmax(tensor(v, shape).to(kFloat32).to_vector<double>(), shape, 1, false),
                 1e-7, 1e-5, shape_str(shape));
  }
}

TEST(Softmax, NonContiguousInputs) {
  std::vector<double> v = rand_values(6 * 8, 3);
  Tensor x = tensor(v, {6, 8});
  Tensor xt = x.t();  // (8, 6)
  std::vector<double> vt = xt.contiguous().to_vector<double>();
  for (int64_t dim : {0, 1})
    expect_close(softmax(xt, dim).to_vector<double>(), ref_softmax(vt, {8, 6}, dim, false), 1e-12, 1e-12, "transpose");
  Tensor sl = x.slice(1, 0, 8, 3);  // (6, 3)
  std::vector<double> vs = sl.contiguous().to_vector<double>();
  expect_close(log_softmax(sl, 1).to_vector<double>(), ref_softmax(vs, {6, 3}, 1, true), 1e-12, 1e-12, "slice");
}

TEST(Softmax, NumericallyStable) {
  Tensor x = tensor(std::vector<float>{1000.f, 1001.f, 1002.f, -1000.f});
  std::vector<double> ref = ref_softmax({1000, 1001, 1002, -1000}, {4}, 0, false);
  expect_close(softmax(x, 0).to_vector<double>(), ref, 1e-6, 1e-5, "large");
  std::vector<double> lref = ref_softmax({1000, 1001, 1002, -1000}, {4}, 0, true);
  expect_close(log_softmax(x, 0).to_vector<double>(), lref, 1e-3, 1e-5, "large log");
  // A -inf entry gets probability 0 (log-probability -inf).
  Tensor m = tensor(std::vector<double>{0.0, -INFINITY, 0.0});
  EXPECT_EQ(softmax(m, 0).to_vector<double>(), (std::vector<double>{0.5, 0.0, 0.5}));
  EXPECT_EQ(log_softmax(m, 0).to_vector<double>()[1], -INFINITY);
  // Same in f32 (the vectorised row kernel), with a causal-mask-like row of 40.
  std::vector<float> row(40, 0.0f);
  for (int i = 20; i < 40; ++i) row[i] = -INFINITY;
  std::vector<double> p = softmax(tensor(row), 0).to_vector<double>();
  for (int i = 0; i < 40; ++i) EXPECT_EQ(p[i], i < 20 ? 0.05f : 0.0f) << i;
  // A NaN anywhere in a row makes the row NaN, as in PyTorch.
  std::vector<float> nrow(40, 1.0f);
  nrow[33] = NAN;
  for (double e : softmax(tensor(nrow), 0).to_vector<double>()) EXPECT_TRUE(std::isnan(e));
}

TEST(Softmax, ZeroDimAndEmpty) {
  EXPECT_EQ(softmax(scalar_tensor(3.0), 0).item<double>(), 1.0);
  EXPECT_EQ(log_softmax(scalar_tensor(3.0), -1).item<double>(), 0.0);
  EXPECT_EQ(softmax(zeros({0, 4}), 1).shape(), (Shape{0, 4}));
  EXPECT_EQ(softmax(zeros({4, 0}), 1).shape(), (Shape{4, 0}));
}

TEST(Softmax, Errors) {
  EXPECT_THROW(softmax(zeros({2, 3}), 2), IndexError);
  EXPECT_THROW(log_softmax(zeros({2, 3}), -3), IndexError);
  EXPECT_THROW(softmax(tensor(std::vector<int64_t>{1, 2}), 0), DTypeError);
  try {
    softmax(zeros({2, 3}), 5);
    FAIL();
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("softmax"), std::string::npos) << e.what();
  }
}

TEST(Softmax, Gradients) {
  std::vector<double> v = rand_values(24, 4);
  for (int64_t dim : {0, 1, 2}) {
    check_grad([dim](const Tensor& x) { return softmax(x, dim); }, v, {2, 3, 4});
    check_grad([dim](const Tensor& x) { return log_softmax(x, dim); }, v, {2, 3, 4});
  }
  check_grad([](const Tensor& x) { return softmax(x.transpose(0, 2), 1); }, v, {2, 3, 4});
  check_grad([](const Tensor& x) { return log_softmax(x.slice(2, 0, 4, 2), -1); }, v, {2, 3, 4});
}

TEST(Softmax, BackwardMatchesClosedFormF32) {
  // Closed form: d/dx_j of sum_i w_i y_i = y_j (w_j - sum_i w_i y_i).
  std::vector<double> v = rand_values(2 * 300, 5);
  Tensor x = tensor(v, {2, 300}).to(kFloat32).requires_grad_(true);
  Tensor y = softmax(x, 1);
  std::vector<double> w = rand_values(600, 6);
  y.backward(tensor(w, {2, 300}).to(kFloat32));
  std::vector<double> yv = y.detach().to_vector<double>(), gv = x.grad().to_vector<double>();
  for (int r = 0; r < 2; ++r) {
    double dot = 0;
    for (int j = 0; j < 300; ++j) dot += w[r * 300 + j] * yv[r * 300 + j];
    for (int j = 0; j < 300; ++j) {
      const double want = yv[r * 300 + j] * (w[r * 300 + j] - dot);
      EXPECT_TRUE(std::fabs(gv[r * 300 + j] - want) <= 1e-6 + 1e-4 * std::fabs(want)) << j;
    }
  }
}

TEST(Softmax, LowPrecisionBackwardAlongEveryDimMatchesF64) {
  // f32 takes the transposed-rows path for non-innermost dims, f16/bf16 the column kernels
  // computing in f32; all are compared with f64 (column kernels in double).
  const Shape shape{5, 6, 7};
  std::vector<double> v = rand_values(numel_of(shape), 7);
  std::vector<double> w = rand_values(numel_of(shape), 8);
  auto grad_of = [&](DType dt, int64_t dim, bool log) {
    Tensor x = tensor(v, shape).to(dt).requires_grad_(true);
    Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
    y.backward(tensor(w, shape).to(dt));
    return x.grad().to_vector<double>();
  };
  for (int64_t dim : {0, 1, 2}) {
    for (bool log : {false, true}) {
      const std::vector<double> ref = grad_of(kFloat64, dim, log);
      for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
        const double tol = dt == kFloat32 ? 1e-5 : dt == kFloat16 ? 2e-2 : 1e-1;
        expect_close(grad_of(dt, dim, log), ref, tol, tol,
                     std::string(dtype_name(dt)) + " dim " + std::to_string(dim) + (log ? " log" : ""));
      }
    }
  }
}
