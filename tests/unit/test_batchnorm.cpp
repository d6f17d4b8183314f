// batch_norm against the closed form computed per channel in double, running-stat updates by
// hand, eval mode, gradients by finite differences (training and eval), the BatchNorm layers
// (names, buffers, train/eval, momentum=None), and error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using test::max_abs_diff;
using autograd::gradcheck;

namespace {

// Per-channel mean and biased variance of a (N, C, S) tensor in double.
void moments(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  const auto v = x.to_vector<double>();
  mean.assign(c, 0);
  var.assign(c, 0);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < s; ++k) sum += v[(i * c + ch) * s + k];
    mean[ch] = sum / static_cast<double>(n * s);
    double q = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < s; ++k) q += std::pow(v[(i * c + ch) * s + k] - mean[ch], 2);
    var[ch] = q / static_cast<double>(n * s);
  }
}

std::vector<double> closed_form(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                const std::vector<double>& w, const std::vector<double>& b, double eps) {
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  auto v = x.to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < s; ++k) {
        double& e = v[(i * c + ch) * s + k];
        e = (e - mean[ch]) / std::sqrt(var[ch] + eps) * w[ch] + b[ch];
      }
  return v;
}

}  // namespace

TEST(BatchNorm, TrainingMatchesClosedFormAndUpdatesRunningStats) {
  manual_seed(21);
  for (const Shape& shape : {Shape{16, 3}, Shape{4, 5, 7}, Shape{3, 4, 5, 6}})
    for (DType dt : {kFloat64, kFloat32}) {
      SCOPED_TRACE(shape_str(shape) + " " + dtype_name(dt));
      const int64_t c = shape[1];
      Tensor x = (randn(shape) * 3.0 + 5.0).to(dt);
      Tensor w = randn({c}).to(dt), b = randn({c}).to(dt);
      Tensor rm = randn({c}), rv = rand({c}) + 0.5;  // f32 running stats, also for f64 input
      const auto rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
      const double eps = 1e-3, m = 0.25;
      Tensor y = batch_norm(x, rm, rv, w, b, true, m, eps);
      std::vector<double> mean, var;
      moments(x, mean, var);
      const auto expect = closed_form(x, mean, var, w.to_vector<double>(), b.to_vector<double>(), eps);
      EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), dt == kFloat64 ? 1e-12 : 2e-5);
      const double n = static_cast<double>(x.numel() / c);
      const auto rm1 = rm.to_vector<double>(), rv1 = rv.to_vector<double>();
      for (int64_t ch = 0; ch < c; ++ch) {
        EXPECT_NEAR(rm1[ch], (1 - m) * rm0[ch] + m * mean[ch], 1e-5);
        EXPECT_NEAR(rv1[ch], (1 - m) * rv0[ch] + m * var[ch] * n / (n - 1), 1e-4);  // unbiased
      }
    }
}

TEST(BatchNorm, LargeMeanKeepsF32Accuracy) {
  // |mean| / std = 10⁴: a one-pass E[x²] − E[x]² in f32 would lose every digit of the variance.
  manual_seed(22);
  Tensor x = randn({64, 2, 16, 16}) + 1e4;
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  std::vector<double> mean, var;
  moments(x, mean, var);
  const auto expect = closed_form(x, mean, var, {1.0, 1.0}, {0.0, 0.0}, 1e-5);
  // f32 rounds the subtracted mean to about ulp(10⁴) / 2 = 5e-4.
  EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), 2e-3);
}

TEST(BatchNorm, EvalUsesRunningStats) {
  manual_seed(23);
  Tensor x = randn({4, 3, 5, 5}, {.dtype = kFloat64});
  Tensor rm = tensor<double>({0.5, -1.0, 2.0}), rv = tensor<double>({1.5, 0.25, 4.0});
  Tensor w = tensor<double>({1.0, 2.0, -1.0}), b = tensor<double>({0.0, 0.5, 1.0});
  Tensor y = batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
  const auto expect = closed_form(x, {0.5, -1.0, 2.0}, {1.5, 0.25, 4.0}, {1.0, 2.0, -1.0}, {0.0, 0.5, 1.0}, 1e-5);
  EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), 1e-12);
  // Eval leaves the running statistics alone.
  EXPECT_EQ(rm.to_vector<double>(), (std::vector<double>{0.5, -1.0, 2.0}));
  EXPECT_EQ(rv.to_vector<double>(), (std::vector<double>{1.5, 0.25, 4.0}));
}

TEST(BatchNorm, GradcheckTraining) {
  manual_seed(24);
  for (const Shape& shape : {Shape{5, 3}, Shape{3, 2, 4, 3}}) {
    const int64_t c = shape[1];
    Tensor x = randn(shape, {.dtype = kFloat64}).requires_grad_();
    Tensor w = randn({c}, {.dtype = kFloat64}).requires_grad_();
    Tensor b = randn({c}, {.dtype = kFloat64}).requires_grad_();
    Tensor rm = zeros({c}, {.dtype = kFloat64}), rv = ones({c}, {.dtype = kFloat64});
    auto r = gradcheck(
        [&](const std::vector<Tensor>& t) { return batch_norm(t[0], rm, rv, t[1], t[2], true, 0.1, 1e-5); }, {x, w, b});
    EXPECT_TRUE(r.ok) << shape_str(shape) << ": " << r.message;
    // Without affine parameters.
    auto r2 = gradcheck(
        [&](const std::vector<Tensor>& t) { return batch_norm(t[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
        {x});
    EXPECT_TRUE(r2.ok) << r2.message;
  }
}

TEST(BatchNorm, GradcheckEval) {
  manual_seed(25);
  Tensor x = randn({3, 2, 4, 3}, {.dtype = kFloat64}).requires_grad_();
  Tensor w = randn({2}, {.dtype = kFloat64}).requires_grad_();
  Tensor b = randn({2}, {.dtype = kFloat64}).requires_grad_();
  Tensor rm = tensor<double>({0.3, -0.2}), rv = tensor<double>({0.7, 1.9});
  auto r = gradcheck(
      [&](const std::vector<Tensor>& t) { return batch_norm(t[0], rm, rv, t[1], t[2], false, 0.1, 1e-5); }, {x, w, b});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(BatchNorm, TrainingInputGradientClosedForm) {
  // With w = 1, b = 0 and upstream gradient 1 everywhere, the input gradient is exactly 0
  // (the normalised output's sum does not depend on x); with upstream y itself it is 0 too
  // up to eps (sum of y² = n is constant).
  manual_seed(26);
  Tensor x = randn({8, 3, 4, 4}).requires_grad_();
  batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0).sum().backward();
  EXPECT_LE(x.grad().abs().max().item<double>(), 1e-5);
}

TEST(BatchNorm, Errors) {
  Tensor x = zeros({4, 3, 2, 2});
  Tensor c3 = zeros({3}), c2 = zeros({2});
  EXPECT_THROW(batch_norm(zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true), ShapeError);
  EXPECT_THROW(batch_norm(x, c2, ones({2}), Tensor(), Tensor(), true), ShapeError);
  EXPECT_THROW(batch_norm(x, c3, ones({3}), c2, Tensor(), true), ShapeError);
  EXPECT_THROW(batch_norm(x, c3, ones({3}), Tensor(), c2, true), ShapeError);
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false), ValueError);  // eval needs stats
  EXPECT_THROW(batch_norm(x, c3, Tensor(), Tensor(), Tensor(), true), ValueError);
  EXPECT_THROW(batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true), ValueError);  // 1 value
  EXPECT_NO_THROW(batch_norm(zeros({1, 3}), c3, ones({3}), Tensor(), Tensor(), false));
  EXPECT_THROW(batch_norm(x, c3, ones({3}), zeros({3}, {.dtype = kFloat64}), Tensor(), true), DTypeError);
  EXPECT_THROW(batch_norm(zeros({4, 3}, {.dtype = kInt64}), Tensor(), Tensor(), Tensor(), Tensor(), true), DTypeError);
  EXPECT_THROW(batch_norm(x, c3, ones({3}), Tensor(), Tensor(), true, 0.1, -1.0), ValueError);
}

TEST(BatchNormModule, NamesShapesAndBuffers) {
  nn::BatchNorm2d bn(32);
  auto params = bn.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(bn.weight.to_vector<double>(), std::vector<double>(32, 1.0));
  EXPECT_EQ(bn.bias.to_vector<double>(), std::vector<double>(32, 0.0));
  auto buffers = bn.named_buffers();
  ASSERT_EQ(buffers.size(), 3u);
  EXPECT_EQ(buffers[0].first, "running_mean");
  EXPECT_EQ(buffers[1].first, "running_var");
  EXPECT_EQ(buffers[2].first, "num_batches_tracked");
  EXPECT_EQ(bn.running_mean.shape(), (Shape{32}));
  EXPECT_EQ(bn.running_var.to_vector<double>(), std::vector<double>(32, 1.0));
  EXPECT_EQ(bn.num_batches_tracked.dim(), 0);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), kInt64);
  auto sd = bn.state_dict();
  EXPECT_EQ(sd.size(), 5u);
  EXPECT_TRUE(sd.count("num_batches_tracked"));
  EXPECT_EQ(bn.extra_repr(), "32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True");

  nn::BatchNorm1d plain(4, {.affine = false, .track_running_stats = false});
  EXPECT_TRUE(plain.named_parameters().empty());
  EXPECT_TRUE(plain.named_buffers().empty());
}

TEST(BatchNormModule, TrainEvalBehaviour) {
  manual_seed(27);
  nn::BatchNorm2d bn(3);
  Tensor x = randn({6, 3, 4, 4}) * 2.0 + 1.0;
  Tensor y = bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  std::vector<double> mean, var;
  moments(x, mean, var);
  const double n = 6 * 16;
  const auto rm = bn.running_mean.to_vector<double>(), rv = bn.running_var.to_vector<double>();
  for (int ch = 0; ch < 3; ++ch) {
    EXPECT_NEAR(rm[ch], 0.1 * mean[ch], 1e-5);
    EXPECT_NEAR(rv[ch], 0.9 + 0.1 * var[ch] * n / (n - 1), 1e-5);
  }
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);

  bn.eval();
  const auto rm2 = bn.running_mean.to_vector<double>(), rv2 = bn.running_var.to_vector<double>();
  Tensor ye = bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(bn.running_mean.to_vector<double>(), rm2);
  const auto expect = closed_form(x, rm2, rv2, std::vector<double>(3, 1.0), std::vector<double>(3, 0.0), 1e-5);
  EXPECT_LE(max_abs_diff(ye.to_vector<double>(), expect), 1e-5);

  // Without running stats, eval still normalises with batch statistics.
  nn::BatchNorm2d nostats(3, {.track_running_stats = false});
  nostats.eval();
  Tensor yb = nostats.forward(x);
  EXPECT_LE(max_abs_diff(yb.to_vector<double>(), y.to_vector<double>()), 1e-5);

  EXPECT_THROW(bn.forward(zeros({2, 3})), ShapeError);
  nn::BatchNorm1d bn1(3);
  EXPECT_THROW(bn1.forward(zeros({2, 3, 4, 4})), ShapeError);
  EXPECT_EQ(bn1.forward(randn({5, 3, 7})).shape(), (Shape{5, 3, 7}));
  EXPECT_THROW(nn::BatchNorm2d(0), ValueError);
}

TEST(BatchNormModule, CumulativeMomentum) {
  manual_seed(28);
  nn::BatchNorm1d bn(2, {.momentum = std::nullopt});
  Tensor a = randn({10, 2}), b = randn({10, 2});
  bn.forward(a);
  bn.forward(b);
  std::vector<double> ma, va, mb, vb;
  moments(a, ma, va);
  moments(b, mb, vb);
  const auto rm = bn.running_mean.to_vector<double>();
  // factor 1 then 1/2: the plain average of the two batch means.
  for (int ch = 0; ch < 2; ++ch) EXPECT_NEAR(rm[ch], 0.5 * (ma[ch] + mb[ch]), 1e-5);
  EXPECT_EQ(bn.extra_repr(), "2, eps=1e-05, momentum=None, affine=True, track_running_stats=True");
}

TEST(BatchNormModule, ParametersGetGradients) {
  manual_seed(29);
  nn::BatchNorm2d bn(2);
  Tensor x = randn({4, 2, 3, 3});
  (bn.forward(x) * arange(0.0, 72.0, 1.0, {.dtype = kFloat32}).reshape({4, 2, 3, 3})).sum().backward();
  EXPECT_EQ(bn.weight.grad().shape(), (Shape{2}));
  EXPECT_EQ(bn.bias.grad().shape(), (Shape{2}));
  EXPECT_FALSE(bn.running_mean.requires_grad());
}
