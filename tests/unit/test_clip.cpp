// clip_grad_norm_ and clip_grad_value_: totals and scaled gradients against values computed
// here in double, PyTorch's formula clamp(max_norm / (total + 1e-6), max = 1).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;
using namespace ember::optim;

namespace {

Tensor param_with_grad(const std::vector<double>& grad, DType dt = kFloat64) {
  Tensor p = zeros({static_cast<int64_t>(grad.size())}, {.dtype = dt, .requires_grad = true});
  p.set_grad(tensor(grad, {static_cast<int64_t>(grad.size())}).to(dt));
  return p;
}

void expect_vec_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(std::abs(got[i] - want[i]) <= tol) << "[" << i << "]: " << got[i] << " vs " << want[i];
}

TEST(ClipGradNorm, TwoNormScalesEveryGradient) {
  Tensor a = param_with_grad({3, -4}), b = param_with_grad({12});
  Tensor total = clip_grad_norm_({a, b}, 6.5);
  EXPECT_EQ(total.dim(), 0);
  EXPECT_EQ(total.dtype(), kFloat64);
  EXPECT_NEAR(total.item<double>(), 13.0, 1e-14);
  const double coef = 6.5 / (13.0 + 1e-6);
  expect_vec_near(a.grad().to_vector<double>(), {3 * coef, -4 * coef}, 1e-14);
  expect_vec_near(b.grad().to_vector<double>(), {12 * coef}, 1e-14);
}

TEST(ClipGradNorm, BelowTheLimitLeavesGradientsUnchanged) {
  Tensor a = param_with_grad({0.3, -0.4});
  Tensor total = clip_grad_norm_({a}, 1.0);
  EXPECT_NEAR(total.item<double>(), 0.5, 1e-15);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{0.3, -0.4}));  // coefficient clamped to exactly 1
}

TEST(ClipGradNorm, InfinityAndOneNorms) {
  Tensor a = param_with_grad({1, -7}), b = param_with_grad({5, 2});
  Tensor total = clip_grad_norm_({a, b}, 3.5, std::numeric_limits<double>::infinity());
  EXPECT_EQ(total.item<double>(), 7.0);
  const double c = 3.5 / (7 + 1e-6);
  expect_vec_near(a.grad().to_vector<double>(), {1 * c, -7 * c}, 1e-14);

  Tensor x = param_with_grad({1, -2}), y = param_with_grad({3});
  Tensor t1 = clip_grad_norm_({x, y}, 3.0, 1.0);
  EXPECT_NEAR(t1.item<double>(), 6.0, 1e-14);
  expect_vec_near(y.grad().to_vector<double>(), {3 * 3.0 / (6 + 1e-6)}, 1e-14);
}

TEST(ClipGradNorm, ThreeNorm) {
  Tensor a = param_with_grad({1, -2}), b = param_with_grad({2});
  Tensor total = clip_grad_norm_({a, b}, 100.0, 3.0);
  EXPECT_NEAR(total.item<double>(), std::cbrt(17.0), 1e-14);
}

TEST(ClipGradNorm, SkipsParametersWithoutGradients) {
  Tensor a = param_with_grad({6, 8});
  Tensor none = zeros({3}, {.dtype = kFloat64, .requires_grad = true});
  Tensor total = clip_grad_norm_({none, a}, 5.0);
  EXPECT_NEAR(total.item<double>(), 10.0, 1e-14);
  EXPECT_FALSE(none.grad().defined());
  Tensor t0 = clip_grad_norm_({none}, 1.0);
  EXPECT_EQ(t0.dim(), 0);
  EXPECT_EQ(t0.item<double>(), 0.0);
}

TEST(ClipGradNorm, MixedDtypesPromoteTheTotal) {
  Tensor a = param_with_grad({3}, kFloat32), b = param_with_grad({4}, kFloat64);
  Tensor total = clip_grad_norm_({a, b}, 1.0);
  EXPECT_EQ(total.dtype(), kFloat64);
  EXPECT_NEAR(total.item<double>(), 5.0, 1e-6);
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_NEAR(a.grad().item<double>(), 3.0 / (5 + 1e-6), 1e-6);
}

TEST(ClipGradNorm, FloatGradientsStayFloat) {
  Tensor a = param_with_grad({30, 40}, kFloat32);
  Tensor total = clip_grad_norm_({a}, 1.0);
  EXPECT_EQ(total.dtype(), kFloat32);
  EXPECT_NEAR(total.item<double>(), 50.0, 1e-5);
  expect_vec_near(a.grad().to_vector<double>(), {0.6, 0.8}, 1e-6);
}

TEST(ClipGradNorm, NonFiniteTotal) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = param_with_grad({1, nan});
  EXPECT_THROW(clip_grad_norm_({a}, 1.0, 2.0, /*error_if_nonfinite=*/true), ValueError);
  EXPECT_EQ(a.grad().to_vector<double>()[0], 1.0);  // untouched when it throws
  Tensor total = clip_grad_norm_({a}, 1.0);         // PyTorch's default: clip anyway (to NaN)
  EXPECT_TRUE(std::isnan(total.item<double>()));
  EXPECT_TRUE(std::isnan(a.grad().to_vector<double>()[0]));

  Tensor b = param_with_grad({std::numeric_limits<double>::infinity()});
  EXPECT_THROW(clip_grad_norm_({b}, 1.0, std::numeric_limits<double>::infinity(), true), ValueError);
}

TEST(ClipGradNorm, InvalidArguments) {
  Tensor a = param_with_grad({1});
  EXPECT_THROW(clip_grad_norm_({a}, 1.0, 0.0), ValueError);
  EXPECT_THROW(clip_grad_norm_({a}, 1.0, -2.0), ValueError);
  EXPECT_THROW(clip_grad_norm_({a, Tensor()}, 1.0), ValueError);
}

TEST(ClipGradNorm, DoesNotRecordAutograd) {
  Tensor a = param_with_grad({3, 4});
  Tensor total = clip_grad_norm_({a}, 1.0);
  EXPECT_FALSE(total.requires_grad());
  EXPECT_FALSE(a.grad().requires_grad());
}

TEST(ClipGradValue, ClampsInPlace) {
  Tensor a = param_with_grad({-3, 0.5, 2.5}), b = param_with_grad({1.5}, kFloat32);
  Tensor g_before = a.grad();
  clip_grad_value_({a, b}, 1.0);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{-1, 0.5, 1}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1}));
  EXPECT_TRUE(a.grad().is_same(g_before) || a.grad().shares_storage(g_before));
}

TEST(ClipGradValue, InvalidArguments) {
  Tensor a = param_with_grad({1});
  EXPECT_THROW(clip_grad_value_({a}, -0.1), ValueError);
  EXPECT_THROW(clip_grad_value_({Tensor()}, 1.0), ValueError);
}

}  // namespace
