// Elementwise ops: values against hand-computed results and std:: math for every dtype,
// broadcasting, non-contiguous inputs, 0-d and empty tensors, in-place variants, gradients
// (gradcheck in f64), and every error path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "../../src/cpu/streaming.hpp"  // the streaming-store threshold knob (private, for tests)
#include "ember/backend/cpu.hpp"

using namespace ember;
using autograd::gradcheck;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

/// Elementwise |got - want| <= atol + rtol |want|, rejecting NaN (unless both are NaN) and
/// requiring infinities to match exactly.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double rtol = 1e-6,
                  double atol = 1e-6, const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " [" << i << "] got " << got[i] << " want NaN";
      continue;
    }
    if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << what << " [" << i << "]";
      continue;
    }
    const double diff = std::fabs(got[i] - want[i]);
    EXPECT_TRUE(diff <= atol + rtol * std::fabs(want[i]))
        << what << " [" << i << "] got " << got[i] << " want " << want[i];
  }
}

void expect_close(const Tensor& got, const std::vector<double>& want, double rtol = 1e-6, double atol = 1e-6,
                  const std::string& what = "") {
  expect_close(vals(got), want, rtol, atol, what);
}

/// Applies f to each element of the vector.
std::vector<double> map(const std::vector<double>& v, const std::function<double(double)>& f) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f(v[i]);
  return r;
}

/// A tensor that claims to live on a CUDA device (no memory is touched): for the error paths.
Tensor fake_cuda_tensor() {
  static float storage[4] = {0, 0, 0, 0};
  return from_blob(storage, {4}, {.dtype = kFloat32, .device = Device::cuda(0)});
}

void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& in,
                      const std::string& what) {
  auto r = gradcheck(fn, in);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

Tensor f64(const std::vector<double>& v, const Shape& s, bool grad = true) {
  return tensor<double>(v, s, {.dtype = kFloat64, .requires_grad = grad});
}

}  // namespace

// ------------------------------------------------------------------ arithmetic values
TEST(ElementwiseArith, ValuesEveryDType) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64}) {
    Tensor a = tensor<double>({1, 2, 3, -4}, {4}, {.dtype = dt});
    Tensor b = tensor<double>({5, -6, 7, 8}, {4}, {.dtype = dt});
    SCOPED_TRACE(dtype_name(dt));
    EXPECT_EQ((a + b).dtype(), dt);
    expect_close(a + b, {6, -4, 10, 4});
    expect_close(a - b, {-4, 8, -4, -12});
    expect_close(a * b, {5, -12, 21, -32});
    expect_close(add(a, b, 2), {11, -10, 17, 12});
    expect_close(sub(a, b, 3), {-14, 20, -18, -28});
    const double tol = (dt == kFloat16 || dt == kBFloat16) ? 1e-2 : 1e-6;
    expect_close(a / b, {0.2, -1.0 / 3, 3.0 / 7, -0.5}, tol, 0);
    EXPECT_EQ((a / b).dtype(), is_floating(dt) ? dt : kFloat32);
  }
}

TEST(ElementwiseArith, UInt8WrapsAndBoolAddIsOr) {
  Tensor u = tensor<uint8_t>({250, 3});
  Tensor r = u + 10;
  EXPECT_EQ(r.dtype(), kUInt8);
  EXPECT_EQ(r.to_vector<int>(), (std::vector<int>{4, 13}));
  Tensor b1 = tensor<bool>({true, true, false, false});
  Tensor b2 = tensor<bool>({true, false, true, false});
  EXPECT_EQ((b1 + b2).dtype(), kBool);
  EXPECT_EQ((b1 + b2).to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ((b1 * b2).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_THROW(b1 - b2, DTypeError);
}

TEST(ElementwiseArith, Broadcasting) {
  Tensor a = tensor<float>({1, 2, 3}, {3, 1});
  Tensor b = tensor<float>({10, 20, 30, 40}, {1, 4});
  Tensor c = a + b;
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  expect_close(c, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  expect_close(b - a, {9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37});
  std::vector<double> x(24);
  for (int i = 0; i < 24; ++i) x[i] = i;
  Tensor big = tensor<double>(x, {2, 3, 4});
  Tensor row = tensor<double>({1, 2, 3, 4});
  std::vector<double> want(24);
  for (int i = 0; i < 24; ++i) want[i] = x[i] * (i % 4 + 1);
  expect_close(big * row, want);
  expect_close(row * big, want);
  EXPECT_EQ((big * row).shape(), (Shape{2, 3, 4}));
}

TEST(ElementwiseArith, NonContiguousInputs) {
  Tensor a = tensor<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.t();  // (3, 2): 0 3 / 1 4 / 2 5
  Tensor b = tensor<float>({1, 1, 2, 2, 3, 3}, {3, 2});
  expect_close(t * b, {0, 3, 2, 8, 6, 15});
  expect_close(t + t, {0, 6, 2, 8, 4, 10});
  Tensor s = tensor<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}).slice(0, 1, 10, 3);  // 1 4 7
  expect_close(s - tensor<float>({1, 1, 1}), {0, 3, 6});
  expect_close(s / 2, {0.5, 2, 3.5});
}

TEST(ElementwiseArith, ZeroDimAndEmpty) {
  Tensor s = scalar_tensor(3.0);
  Tensor r = s * scalar_tensor(4.0);
  EXPECT_EQ(r.dim(), 0);
  EXPECT_EQ(r.item<double>(), 12.0);
  Tensor e = zeros({0, 3});
  EXPECT_EQ((e + 1).shape(), (Shape{0, 3}));
  EXPECT_EQ((e * tensor<float>({1, 2, 3})).shape(), (Shape{0, 3}));
  EXPECT_EQ((e + e).numel(), 0);
}

TEST(ElementwiseArith, ScalarsAndOperators) {
  Tensor a = tensor<float>({1, 2, 4});
  expect_close(a + 1, {2, 3, 5});
  expect_close(1 + a, {2, 3, 5});
  expect_close(a - 1, {0, 1, 3});
  expect_close(10 - a, {9, 8, 6});
  expect_close(a * 2.5, {2.5, 5, 10});
  expect_close(2.5 * a, {2.5, 5, 10});
  expect_close(a / 4, {0.25, 0.5, 1});
  expect_close(8 / a, {8, 4, 2});
  expect_close(a.add(3), {4, 5, 7});
  expect_close(a.sub(3), {-2, -1, 1});
  expect_close(a.mul(a), {1, 4, 16});
  expect_close(a.div(a), {1, 1, 1});
  Tensor i = tensor<int32_t>({1, 2, 3});
  EXPECT_EQ((i + 2.5).dtype(), kFloat32);
  expect_close(i + 2.5, {3.5, 4.5, 5.5});
  EXPECT_EQ((i / 2).dtype(), kFloat32);
  expect_close(i / 2, {0.5, 1, 1.5});
  expect_close(1.0 / tensor<float>({0.0f, -0.0f}), {kInf, -kInf});
  EXPECT_THROW(add(i, i, 1.5), ValueError);
}

// ------------------------------------------------------------------ in-place arithmetic
TEST(ElementwiseInPlace, ArithmeticAndBroadcastOther) {
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  a.add_(tensor<float>({10, 20, 30}));
  expect_close(a, {11, 22, 33, 14, 25, 36});
  a.sub_(tensor<float>({1, 2}, {2, 1}), 2);
  expect_close(a, {9, 20, 31, 10, 21, 32});
  a.mul_(2);
  expect_close(a, {18, 40, 62, 20, 42, 64});
  a.div_(tensor<float>({2}));
  expect_close(a, {9, 20, 31, 10, 21, 32});
  a += 1;
  a -= 1;
  a *= tensor<float>({1, 0, 1});
  a /= 1;
  expect_close(a, {9, 0, 31, 10, 0, 32});
  // In place on a transposed view writes through to the base.
  Tensor base = zeros({2, 3});
  Tensor view = base.t();
  view.add_(tensor<float>({1, 2}));
  expect_close(base, {1, 1, 1, 2, 2, 2});
  // An overlapping, differently laid out view of self as the other operand.
  Tensor sq = tensor<float>({1, 2, 3, 4}, {2, 2});
  sq.add_(sq.t());
  expect_close(sq, {2, 5, 5, 8});
  // Castable promotions: int other into float self, f32 into f16 self.
  Tensor h = tensor<float>({1, 2}, {2}, {.dtype = kFloat16});
  h.add_(tensor<float>({0.5f, 0.25f}));
  EXPECT_EQ(h.dtype(), kFloat16);
  expect_close(h, {1.5, 2.25});
  Tensor i64 = tensor<int64_t>({1, 2});
  i64.mul_(tensor<int32_t>({3, 4}));
  EXPECT_EQ(i64.to_vector<int64_t>(), (std::vector<int64_t>{3, 8}));
}

TEST(ElementwiseInPlace, Errors) {
  Tensor a = zeros({2, 3});
  try {
    a.add_(ones({4, 2, 3}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(4, 2, 3)"), std::string::npos) << e.what();
  }
  Tensor i = tensor<int64_t>({1, 2});
  try {
    i.add_(1.5);
    FAIL() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("can't be cast"), std::string::npos) << e.what();
  }
  EXPECT_THROW(i.div_(tensor<int64_t>({1, 1})), DTypeError);
  EXPECT_THROW(i.mul_(tensor<float>({1, 1})), DTypeError);
  Tensor leaf = ones({2}, {.requires_grad = true});
  EXPECT_THROW(leaf.add_(1), AutogradError);
  EXPECT_THROW(leaf.mul_(ones({2})), AutogradError);
  {
    NoGradGuard ng;
    leaf.add_(1);  // allowed without grad mode
  }
  expect_close(leaf.detach(), {2, 2});
  // CUDA tensors reach the CUDA backend now; without a usable device (or without CUDA in the
  // build) that is a DeviceError. (With a device the fake tensor's host memory must not reach a kernel.)
  if (cuda::device_count() == 0) {
    Tensor cuda = fake_cuda_tensor();
    EXPECT_THROW(cuda.add_(1), DeviceError);
  }
}

TEST(ElementwiseErrors, BroadcastMismatchNamesBothShapes) {
  try {
    (void)(zeros({3, 2}) + zeros({4}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("(3, 2)"), std::string::npos) << m;
    EXPECT_NE(m.find("(4,)"), std::string::npos) << m;
  }
  EXPECT_THROW(mul(zeros({2, 3}), zeros({3, 2})), ShapeError);
  EXPECT_THROW(div(zeros({5}), zeros({2})), ShapeError);
}

TEST(ElementwiseErrors, CudaTensorsWithoutDeviceAreDeviceErrors) {
  EXPECT_THROW(Tensor() + zeros({4}), ValueError);
  if (cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device is present (tests/cuda covers CUDA ops)";
  Tensor c = fake_cuda_tensor();
  Tensor h = zeros({4});
  EXPECT_THROW(c + h, DeviceError);
  EXPECT_THROW(h * c, DeviceError);
  EXPECT_THROW(c / 2, DeviceError);
}

// ------------------------------------------------------------------ arithmetic gradients
TEST(ElementwiseGrad, ArithmeticWithBroadcastAndViews) {
  Tensor a = f64({0.5, -1.2, 2.0, 0.7, 1.1, -0.3}, {3, 2});
  Tensor b = f64({1.5, -0.8}, {1, 2});
  Tensor c = f64({0.9, 1.3, -1.7}, {3, 1});
  expect_gradcheck([](const auto& in) { return add(in[0], in[1], 2.5); }, {a, b}, "add alpha");
  expect_gradcheck([](const auto& in) { return sub(in[0], in[1], 0.5); }, {a, c}, "sub alpha");
  expect_gradcheck([](const auto& in) { return in[0] * in[1]; }, {a, b}, "mul");
  expect_gradcheck([](const auto& in) { return in[0] / in[1]; }, {a, b}, "div");
  expect_gradcheck([](const auto& in) { return in[1] / in[0]; }, {c, a}, "div broadcast lhs");
  // Non-contiguous: transposed and stepped slices.
  Tensor m = f64({0.5, -1.2, 2.0, 0.7, 1.1, -0.3, 0.4, 1.9}, {2, 4});
  expect_gradcheck([](const auto& in) { return in[0].t().slice(0, 0, 4, 2) * in[1].slice(1, 0, 4, 2).t(); },
                   {m, m.detach().clone().requires_grad_()}, "mul transposed");
  expect_gradcheck([](const auto& in) { return in[0].slice(1, 1, 4, 2) / (in[0].slice(1, 0, 4, 2) + 3.0); }, {m},
                   "div sliced");
  expect_gradcheck([](const auto& in) { return 2.0 - in[0] * 3.0 + in[0] / 4.0 - 1.5 / (in[0] + 5.0); }, {m},
                   "scalar ops");
}

TEST(ElementwiseGrad, MixedDtypesGiveGradientsInInputDtype) {
  Tensor a = tensor<float>({1, 2}, {2}, {.requires_grad = true});
  Tensor b = tensor<double>({3, 4}, {2}, {.dtype = kFloat64, .requires_grad = true});
  Tensor y = (a * b).sum();
  EXPECT_EQ(y.dtype(), kFloat64);
  y.backward();
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat64);
  expect_close(a.grad(), {3, 4});
  expect_close(b.grad(), {1, 2});
  Tensor i = tensor<int32_t>({5, 6});
  Tensor z = tensor<float>({1, 2}, {2}, {.requires_grad = true});
  (z * i).sum().backward();
  expect_close(z.grad(), {5, 6});
}

TEST(ElementwiseGrad, InPlaceArithmetic) {
  Tensor a0 = f64({0.5, -1.2, 2.0, 0.7}, {2, 2});
  Tensor b0 = f64({1.5, -0.8}, {2});
  expect_gradcheck(
      [](const auto& in) {
        Tensor t = in[0] * 1.0;  // a non-leaf copy we may modify
        t.add_(in[1], 2.0);
        t.sub_(in[1]);
        t.mul_(in[1]);
        t.div_(in[1] + 3.0);
        t.mul_(2.0);
        t.add_(1.0);
        return t;
      },
      {a0, b0}, "in-place chain");
  // mul_ saves the old value of self for other's gradient.
  Tensor x = f64({2, 3}, {2});
  Tensor w = f64({5, 7}, {2});
  Tensor t = x * 1.0;
  t.mul_(w);
  t.sum().backward();
  expect_close(w.grad(), {2, 3});
  expect_close(x.grad(), {5, 7});
}

TEST(ElementwiseGrad, SavedInputModifiedInPlaceIsDetected) {
  Tensor x = f64({1, 2}, {2});
  Tensor w = f64({3, 4}, {2});
  Tensor h = x * 1.0;
  Tensor y = h * w;  // saves h for w's gradient
  h.add_(1.0);
  EXPECT_THROW(y.sum().backward(), AutogradError);
}

// ------------------------------------------------------------------ unary values
namespace {

/// Checks op(x) against ref in f32, f64, f16 and bf16 for the given inputs.
void check_unary_float(const char* name, const std::function<Tensor(const Tensor&)>& op,
                       const std::function<double(double)>& ref, const std::vector<double>& xs) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    Tensor x = tensor<double>(xs, {static_cast<int64_t>(xs.size())}, {.dtype = dt});
    Tensor y = op(x);
    EXPECT_EQ(y.dtype(), dt) << name;
    // Reference from the inputs as rounded to dt, compared at dt's precision.
    // The reference is rounded to dt as well (f16 overflows to inf where f64 does not).
    const std::vector<double> xr = vals(x);
    const std::vector<double> want = vals(tensor<double>(map(xr, ref), {x.numel()}, {.dtype = kFloat64}).to(dt));
    const double tol = dt == kFloat64 ? 1e-12 : dt == kFloat32 ? 2e-6 : dt == kFloat16 ? 2e-3 : 1.6e-2;
    expect_close(y, want, tol, tol, std::string(name) + " " + dtype_name(dt));
  }
}

double gelu_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
// 0.5 x (1 + tanh u) written as x / (1 + e^{-2u}) (an identity), so the reference does not
// cancel for negative x.
double gelu_tanh_ref(double x) {
  const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
  return x / (1 + std::exp(-2 * u));
}
double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

TEST(ElementwiseUnary, FloatOpsEveryFloatDType) {
  const std::vector<double> xs = {-3.5, -1.25, -0.5, -0.01, 0.0, 0.02, 0.3, 0.75, 1.5, 2.5, 4.0};
  const std::vector<double> pos = {0.01, 0.3, 0.75, 1.0, 1.5, 2.5, 4.0, 100.0};
  check_unary_float(
      "neg", [](const Tensor& t) { return -t; }, [](double v) { return -v; }, xs);
  check_unary_float(
      "abs", [](const Tensor& t) { return t.abs(); }, [](double v) { return std::fabs(v); }, xs);
  check_unary_float(
      "sign", [](const Tensor& t) { return sign(t); }, [](double v) { return double((v > 0) - (v < 0)); }, xs);
  check_unary_float(
      "exp", [](const Tensor& t) { return t.exp(); }, [](double v) { return std::exp(v); }, xs);
  check_unary_float(
      "log", [](const Tensor& t) { return t.log(); }, [](double v) { return std::log(v); }, pos);
  check_unary_float(
      "log1p", [](const Tensor& t) { return log1p(t); }, [](double v) { return std::log1p(v); }, pos);
  check_unary_float(
      "sqrt", [](const Tensor& t) { return t.sqrt(); }, [](double v) { return std::sqrt(v); }, pos);
  check_unary_float(
      "rsqrt", [](const Tensor& t) { return t.rsqrt(); }, [](double v) { return 1 / std::sqrt(v); }, pos);
  check_unary_float(
      "square", [](const Tensor& t) { return square(t); }, [](double v) { return v * v; }, xs);
  check_unary_float(
      "reciprocal", [](const Tensor& t) { return reciprocal(t); }, [](double v) { return 1 / v; }, pos);
  check_unary_float(
      "sin", [](const Tensor& t) { return sin(t); }, [](double v) { return std::sin(v); }, xs);
  check_unary_float(
      "cos", [](const Tensor& t) { return cos(t); }, [](double v) { return std::cos(v); }, xs);
  check_unary_float(
      "erf", [](const Tensor& t) { return erf(t); }, [](double v) { return std::erf(v); }, xs);
  check_unary_float(
      "tanh", [](const Tensor& t) { return t.tanh(); }, [](double v) { return std::tanh(v); }, xs);
  check_unary_float(
      "sigmoid", [](const Tensor& t) { return t.sigmoid(); }, sigmoid_ref, xs);
  check_unary_float(
      "relu", [](const Tensor& t) { return t.relu(); }, [](double v) { return v > 0 ? v : 0; }, xs);
  check_unary_float(
      "gelu", [](const Tensor& t) { return gelu(t); }, gelu_ref, xs);
  check_unary_float(
      "gelu_tanh", [](const Tensor& t) { return gelu(t, "tanh"); }, gelu_tanh_ref, xs);
  check_unary_float(
      "silu", [](const Tensor& t) { return silu(t); }, [](double v) { return v * sigmoid_ref(v); }, xs);
  check_unary_float(
      "clamp", [](const Tensor& t) { return t.clamp(-1.0, 2.0); },
      [](double v) { return std::min(std::max(v, -1.0), 2.0); }, xs);
  check_unary_float(
      "clamp_min", [](const Tensor& t) { return clamp(t, 0.5, std::nullopt); },
      [](double v) { return std::max(v, 0.5); }, xs);
  check_unary_float(
      "pow2.5", [](const Tensor& t) { return t.pow(2.5); }, [](double v) { return std::pow(v, 2.5); }, pos);
  check_unary_float(
      "pow2", [](const Tensor& t) { return t.pow(2); }, [](double v) { return v * v; }, xs);
  check_unary_float(
      "pow_scalar_base", [](const Tensor& t) { return pow(2.0, t); }, [](double v) { return std::pow(2.0, v); }, xs);
}

TEST(ElementwiseUnary, IntegerInputs) {
  Tensor i = tensor<int32_t>({-3, 0, 2, 5});
  EXPECT_EQ((-i).dtype(), kInt32);
  EXPECT_EQ((-i).to_vector<int>(), (std::vector<int>{3, 0, -2, -5}));
  EXPECT_EQ(i.abs().to_vector<int>(), (std::vector<int>{3, 0, 2, 5}));
  EXPECT_EQ(sign(i).to_vector<int>(), (std::vector<int>{-1, 0, 1, 1}));
  EXPECT_EQ(square(i).to_vector<int>(), (std::vector<int>{9, 0, 4, 25}));
  EXPECT_EQ(i.relu().to_vector<int>(), (std::vector<int>{0, 0, 2, 5}));
  EXPECT_EQ(i.clamp(-1, 3).to_vector<int>(), (std::vector<int>{-1, 0, 2, 3}));
  EXPECT_EQ(i.clamp(-1, 3).dtype(), kInt32);
  EXPECT_EQ(i.clamp(0.5, std::nullopt).dtype(), kFloat32);
  expect_close(i.clamp(0.5, std::nullopt), {0.5, 0.5, 2, 5});
  for (auto [name, t] :
       {std::pair{"exp", i.exp()}, std::pair{"sqrt", i.abs().sqrt()}, std::pair{"sigmoid", i.sigmoid()},
        std::pair{"reciprocal", reciprocal(i)}, std::pair{"erf", erf(i)}}) {
    EXPECT_EQ(t.dtype(), kFloat32) << name;
  }
  expect_close(i.exp(), {std::exp(-3.0), 1, std::exp(2.0), std::exp(5.0)}, 1e-6);
  Tensor u = tensor<uint8_t>({0, 7, 255});
  EXPECT_EQ(u.abs().to_vector<int>(), (std::vector<int>{0, 7, 255}));
  EXPECT_EQ(u.pow(2).to_vector<int>(), (std::vector<int>{0, 49, 1}));  // 255^2 wraps mod 256
  Tensor i64 = tensor<int64_t>({2, 3, -2});
  EXPECT_EQ(i64.pow(3).to_vector<int64_t>(), (std::vector<int64_t>{8, 27, -8}));
  EXPECT_EQ(pow(i64, tensor<int64_t>({10, 0, 3})).to_vector<int64_t>(), (std::vector<int64_t>{1024, 1, -8}));
  EXPECT_THROW(i64.pow(-1), ValueError);
  EXPECT_EQ(i64.pow(0.5).dtype(), kFloat32);
}

TEST(ElementwiseUnary, SpecialValues) {
  Tensor x = tensor<float>({float(kNaN), float(kInf), float(-kInf), 0.0f, -0.0f});
  expect_close(x.exp(), {kNaN, kInf, 0, 1, 1});
  expect_close(x.tanh(), {kNaN, 1, -1, 0, 0});
  expect_close(x.sigmoid(), {kNaN, 1, 0, 0.5, 0.5});
  expect_close(erf(x), {kNaN, 1, -1, 0, 0});
  expect_close(x.relu(), {kNaN, kInf, 0, 0, 0});
  expect_close(x.clamp(-1.0, 1.0), {kNaN, 1, -1, 0, 0});
  expect_close(gelu(x), {kNaN, kInf, kNaN, 0, 0});
  expect_close(x.abs(), {kNaN, kInf, kInf, 0, 0});
  expect_close(x.sqrt(), {kNaN, kInf, kNaN, 0, 0});
  expect_close(tensor<float>({-1.0f}).log(), {kNaN});
  expect_close(tensor<float>({0.0f}).log(), {-kInf});
  EXPECT_EQ(isnan(x).to_vector<bool>(), (std::vector<bool>{true, false, false, false, false}));
  EXPECT_EQ(isinf(x).to_vector<bool>(), (std::vector<bool>{false, true, true, false, false}));
  EXPECT_EQ(isfinite(x).to_vector<bool>(), (std::vector<bool>{false, false, false, true, true}));
  Tensor h = x.to(kFloat16);
  EXPECT_EQ(isnan(h).to_vector<bool>(), (std::vector<bool>{true, false, false, false, false}));
  EXPECT_EQ(isfinite(tensor<int32_t>({1, 2})).to_vector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(isnan(tensor<int32_t>({1})).to_vector<bool>(), (std::vector<bool>{false}));
  // exp overflows to inf exactly past log(FLT_MAX) and underflows gradually into subnormals.
  expect_close(tensor<float>({88.7f, 88.8f, -100.0f, -104.0f}).exp(),
               {std::exp(double(88.7f)), kInf, std::exp(-100.0), std::exp(-104.0)}, 1e-6, 2e-45);
}

TEST(ElementwiseUnary, NonContiguousZeroDimEmpty) {
  Tensor a = tensor<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  expect_close(a.t().exp(), map({0, 3, 1, 4, 2, 5}, [](double v) { return std::exp(v); }));
  expect_close(gelu(a.t()), map({0, 3, 1, 4, 2, 5}, gelu_ref));
  expect_close(a.slice(1, 0, 3, 2).sigmoid(), map({0, 2, 3, 5}, sigmoid_ref));
  expect_close(tensor<float>({1, -2}).expand({3, 2}).relu(), {1, 0, 1, 0, 1, 0});
  Tensor s = scalar_tensor(0.5);
  EXPECT_EQ(s.tanh().dim(), 0);
  EXPECT_NEAR(s.tanh().item<double>(), std::tanh(0.5), 1e-7);
  Tensor e = zeros({0, 4});
  EXPECT_EQ(gelu(e).shape(), (Shape{0, 4}));
  EXPECT_EQ(e.exp().numel(), 0);
  EXPECT_EQ(isnan(e).shape(), (Shape{0, 4}));
}

// ------------------------------------------------------------------ vectorised f32 math accuracy
namespace {

/// Max relative error of op over n points spread over [lo, hi] (plus their negatives' tiny
/// magnitudes), against ref in double; points where the reference is below `floor` in magnitude
/// are measured in absolute terms against `floor`.
double max_rel_error(const std::function<Tensor(const Tensor&)>& op, const std::function<double(double)>& ref,
                     double lo, double hi, int64_t n, double floor = 1e-30) {
  std::vector<float> xs;
  for (int64_t i = 0; i < n; ++i) xs.push_back(static_cast<float>(lo + (hi - lo) * double(i) / double(n - 1)));
  for (float t = 1e-30f; t < 1.0f; t *= 3.7f) {  // tiny magnitudes, both signs
    xs.push_back(t);
    xs.push_back(-t);
  }
  Tensor x = tensor<float>(xs);
  const std::vector<float> y = op(x).to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i] < lo || xs[i] > hi) continue;
    const double want = ref(xs[i]);
    const double err = std::fabs(double(y[i]) - want) / std::max(std::fabs(want), floor);
    if (!(err <= worst)) worst = err;  // NaN makes worst NaN, which fails the caller's check
  }
  return worst;
}

}  // namespace

// The f32 kernels use polynomial approximations (src/cpu/vec_math.hpp), not libm. Measured max
// relative errors (2026-11-21, AVX-512 clone): exp 7.6e-8, tanh 1.5e-7, sigmoid 1.5e-7, erf 1.6e-7,
// gelu 3.6e-7, gelu tanh 7.1e-7, silu 1.7e-7. The bound checked is 1e-6.
TEST(ElementwiseVecMath, F32ApproximationsWithinOneMicro) {
  constexpr int64_t kN = 200001;
  const double exp_err =
      max_rel_error([](const Tensor& t) { return t.exp(); }, [](double v) { return std::exp(v); }, -87.0, 88.5, kN);
  EXPECT_LE(exp_err, 1e-6) << "exp";
  const double tanh_err =
      max_rel_error([](const Tensor& t) { return t.tanh(); }, [](double v) { return std::tanh(v); }, -20.0, 20.0, kN);
  EXPECT_LE(tanh_err, 1e-6) << "tanh";
  const double sig_err = max_rel_error([](const Tensor& t) { return t.sigmoid(); }, sigmoid_ref, -80.0, 80.0, kN);
  EXPECT_LE(sig_err, 1e-6) << "sigmoid";
  const double erf_err =
      max_rel_error([](const Tensor& t) { return erf(t); }, [](double v) { return std::erf(v); }, -10.0, 10.0, kN);
  EXPECT_LE(erf_err, 1e-6) << "erf";
  // GELU is relative-accurate down to x = -5.6 (value -5.9e-8); beyond, |gelu| < 1e-7 and the
  // error is absolute (below 1e-8).
  const double gelu_err = max_rel_error([](const Tensor& t) { return gelu(t); }, gelu_ref, -5.6, 20.0, kN);
  EXPECT_LE(gelu_err, 1e-6) << "gelu";
  const double gelu_tail = max_rel_error([](const Tensor& t) { return gelu(t); }, gelu_ref, -30.0, -5.6, 10001, 1.0);
  EXPECT_LE(gelu_tail, 1e-8) << "gelu tail (absolute)";
  // tanh-GELU's far negative tail is x e^{-2u} with |2u| up to 70 at x = -9: the f32 rounding of
  // u alone (6e-8 relative) then moves the result by |2u| * 6e-8. Relative accuracy is checked
  // down to x = -3 (value -3.6e-3); beyond, the values are below 4e-3 and checked absolutely.
  const double gt_err = max_rel_error([](const Tensor& t) { return gelu(t, "tanh"); }, gelu_tanh_ref, -3.0, 20.0, kN);
  EXPECT_LE(gt_err, 1e-6) << "gelu tanh";
  const double gt_tail =
      max_rel_error([](const Tensor& t) { return gelu(t, "tanh"); }, gelu_tanh_ref, -30.0, -3.0, 10001, 1.0);
  EXPECT_LE(gt_tail, 1e-8) << "gelu tanh tail (absolute)";
  const double silu_err = max_rel_error([](const Tensor& t) { return silu(t); },
                                        [](double v) { return v * sigmoid_ref(v); }, -80.0, 80.0, kN);
  EXPECT_LE(silu_err, 1e-6) << "silu";
  std::cout << "max relative errors: exp " << exp_err << " tanh " << tanh_err << " sigmoid " << sig_err << " erf "
            << erf_err << " gelu " << gelu_err << " gelu_tanh " << gt_err << " silu " << silu_err
            << "; tails (absolute): gelu " << gelu_tail << " gelu_tanh " << gt_tail << "\n";
}

TEST(ElementwiseVecMath, F32FusedGradientsMatchF64) {
  // The fused f32 backward kernels against the f64 (std::) ones.
  std::vector<double> xs;
  for (int i = 0; i <= 4000; ++i) xs.push_back(-10.0 + 20.0 * i / 4000.0);
  const int64_t n = static_cast<int64_t>(xs.size());
  using Fn = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, Fn>> fns = {
      {"gelu", [](const Tensor& t) { return gelu(t); }},
      {"gelu_tanh", [](const Tensor& t) { return gelu(t, "tanh"); }},
      {"silu", [](const Tensor& t) { return silu(t); }},
      {"tanh", [](const Tensor& t) { return t.tanh(); }},
      {"sigmoid", [](const Tensor& t) { return t.sigmoid(); }},
      {"relu", [](const Tensor& t) { return t.relu(); }},
  };
  for (const auto& [name, fn] : fns) {
    Tensor x32 = tensor<double>(xs, {n}, {.dtype = kFloat32, .requires_grad = true});
    Tensor x64 = tensor<double>(vals(x32.detach()), {n}, {.dtype = kFloat64, .requires_grad = true});
    fn(x32).sum().backward();
    fn(x64).sum().backward();
    EXPECT_EQ(x32.grad().dtype(), kFloat32);
    expect_close(x32.grad(), vals(x64.grad()), 2e-6, 2e-6, name);
  }
}

// ------------------------------------------------------------------ comparisons, logical, where
TEST(ElementwiseCompare, ValuesAndPromotion) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8}) {
    Tensor a = tensor<double>({1, 2, 3}, {3}, {.dtype = dt});
    Tensor b = tensor<double>({3, 2, 1}, {3}, {.dtype = dt});
    SCOPED_TRACE(dtype_name(dt));
    EXPECT_EQ(eq(a, b).dtype(), kBool);
    EXPECT_EQ(eq(a, b).to_vector<bool>(), (std::vector<bool>{false, true, false}));
    EXPECT_EQ(ne(a, b).to_vector<bool>(), (std::vector<bool>{true, false, true}));
    EXPECT_EQ(lt(a, b).to_vector<bool>(), (std::vector<bool>{true, false, false}));
    EXPECT_EQ(le(a, b).to_vector<bool>(), (std::vector<bool>{true, true, false}));
    EXPECT_EQ(gt(a, b).to_vector<bool>(), (std::vector<bool>{false, false, true}));
    EXPECT_EQ(ge(a, b).to_vector<bool>(), (std::vector<bool>{false, true, true}));
    EXPECT_EQ(gt(a, 1).to_vector<bool>(), (std::vector<bool>{false, true, true}));
    EXPECT_EQ(le(a, 2).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  }
  // Promotion: an int tensor compared with 1.5 compares in float, not after truncating 1.5.
  Tensor i = tensor<int32_t>({1, 2});
  EXPECT_EQ(gt(i, 1.5).to_vector<bool>(), (std::vector<bool>{false, true}));
  EXPECT_EQ(eq(i, 1.0).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_EQ(eq(tensor<float>({1.5f}), tensor<double>({1.5})).item<bool>(), true);
  // NaN compares unequal to everything.
  Tensor n = tensor<float>({float(kNaN)});
  EXPECT_FALSE(eq(n, n).item<bool>());
  EXPECT_TRUE(ne(n, n).item<bool>());
  EXPECT_FALSE(lt(n, 0).item<bool>());
  // Broadcasting and a non-contiguous input.
  Tensor m = tensor<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor c = gt(m.t(), tensor<float>({1, 3}));
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  EXPECT_EQ(c.to_vector<bool>(), (std::vector<bool>{false, false, false, true, true, true}));
  // No gradient flows through comparisons.
  Tensor g = tensor<float>({1, 2}, {2}, {.requires_grad = true});
  EXPECT_FALSE(gt(g, 1).requires_grad());
}

TEST(ElementwiseCompare, Logical) {
  Tensor a = tensor<bool>({true, true, false, false});
  Tensor b = tensor<bool>({true, false, true, false});
  EXPECT_EQ(logical_and(a, b).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(logical_or(a, b).to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(logical_not(a).to_vector<bool>(), (std::vector<bool>{false, false, true, true}));
  // Non-bool inputs are truthy where nonzero.
  Tensor f = tensor<float>({0.0f, 2.5f, -1.0f, float(kNaN)});
  EXPECT_EQ(logical_not(f).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(logical_and(f, tensor<int32_t>({1, 1, 0, 1})).to_vector<bool>(),
            (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(logical_or(tensor<bool>({false}), tensor<bool>({false, true})).shape(), (Shape{2}));
}

TEST(ElementwiseCompare, Where) {
  Tensor cond = tensor<bool>({true, false, true});
  Tensor a = tensor<float>({1, 2, 3});
  Tensor b = tensor<float>({10, 20, 30});
  expect_close(where(cond, a, b), {1, 20, 3});
  expect_close(where(cond, a, -1.0), {1, -1, 3});
  // Broadcasting all three: cond (2, 1), a (3), b 0-d.
  Tensor c2 = tensor<bool>({true, false}, {2, 1});
  Tensor r = where(c2, a, scalar_tensor(7.0f));
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  expect_close(r, {1, 2, 3, 7, 7, 7});
  // Promotion: int and float branches give float.
  Tensor ri = where(cond, tensor<int32_t>({1, 2, 3}), b);
  EXPECT_EQ(ri.dtype(), kFloat32);
  expect_close(ri, {1, 20, 3});
  Tensor ii = where(cond, tensor<int64_t>({1, 2, 3}), 5);
  EXPECT_EQ(ii.dtype(), kInt64);
  EXPECT_EQ(ii.to_vector<int64_t>(), (std::vector<int64_t>{1, 5, 3}));
  // Non-contiguous.
  Tensor m = tensor<float>({0, 1, 2, 3}, {2, 2});
  expect_close(where(gt(m.t(), 0.5), m.t(), 9.0), {9, 2, 1, 3});
  EXPECT_THROW(where(tensor<int32_t>({1, 0, 1}), a, b), DTypeError);
  EXPECT_THROW(where(tensor<float>({1, 0, 1}), a, b), DTypeError);
  EXPECT_THROW(where(cond, a, zeros({2})), ShapeError);
}

TEST(ElementwiseCompare, EqualAndAllclose) {
  Tensor a = tensor<float>({1, 2, 3});
  EXPECT_TRUE(equal(a, tensor<float>({1, 2, 3})));
  EXPECT_FALSE(equal(a, tensor<float>({1, 2, 4})));
  EXPECT_FALSE(equal(a, tensor<float>({1, 2, 3}, {3, 1})));  // shapes differ: no broadcasting
  EXPECT_TRUE(equal(a, tensor<int64_t>({1, 2, 3})));         // compared after promotion
  EXPECT_FALSE(equal(tensor<float>({float(kNaN)}), tensor<float>({float(kNaN)})));
  EXPECT_TRUE(equal(zeros({0}), zeros({0})));
  EXPECT_TRUE(equal(a.t(), a));
  EXPECT_TRUE(allclose(a, a + 1e-6));
  EXPECT_FALSE(allclose(a, a + 1e-3));
  EXPECT_TRUE(allclose(a, a + 1e-3, 1e-5, 1e-2));
  EXPECT_TRUE(allclose(a, a * (1 + 1e-4), 1e-3, 0));
  EXPECT_FALSE(allclose(a, a * (1 + 1e-2), 1e-3, 0));
  Tensor n = tensor<float>({1.0f, float(kNaN), float(kInf)});
  EXPECT_FALSE(allclose(n, n));
  EXPECT_TRUE(allclose(n, n, 1e-5, 1e-8, true));
  EXPECT_FALSE(allclose(tensor<float>({float(kInf)}), tensor<float>({float(-kInf)})));
  EXPECT_FALSE(allclose(tensor<float>({1.0f}), tensor<float>({float(kInf)})));
  EXPECT_TRUE(allclose(tensor<float>({1, 1}), tensor<float>({1})));  // broadcasts
  EXPECT_THROW(allclose(a, zeros({2})), ShapeError);
  EXPECT_THROW(allclose(a, a, -1.0), ValueError);
}

TEST(ElementwiseBinary, MaximumMinimumPow) {
  Tensor a = tensor<float>({1, 5, float(kNaN), -2});
  Tensor b = tensor<float>({3, 2, 0, float(kNaN)});
  expect_close(maximum(a, b), {3, 5, kNaN, kNaN});
  expect_close(minimum(a, b), {1, 2, kNaN, kNaN});
  EXPECT_EQ(maximum(tensor<int32_t>({1, 7}), tensor<int64_t>({4, 2})).to_vector<int64_t>(),
            (std::vector<int64_t>{4, 7}));
  EXPECT_EQ(maximum(tensor<int32_t>({1, 7}), tensor<int64_t>({4, 2})).dtype(), kInt64);
  expect_close(maximum(tensor<float>({1, 5}, {2, 1}), tensor<float>({2, 3, 4})), {2, 3, 4, 5, 5, 5});
  expect_close(pow(tensor<float>({2, 3, 4}), tensor<float>({3, 0.5, -1})), {8, std::sqrt(3.0), 0.25});
  expect_close(pow(tensor<float>({2, 3}), tensor<float>({2}, {1, 1})), {4, 9});
  for (DType dt : {kFloat64, kFloat16, kBFloat16}) {
    Tensor x = tensor<double>({1.5, 2, 3}, {3}, {.dtype = dt});
    const double tol = dt == kFloat64 ? 1e-12 : 2e-2;
    expect_close(maximum(x, x * 0.5 + 1), {1.75, 2, 3}, tol, tol, dtype_name(dt));
    expect_close(pow(x, x), {std::pow(1.5, 1.5), 4, 27}, tol, tol, dtype_name(dt));
  }
}

// ------------------------------------------------------------------ unary and binary gradients
TEST(ElementwiseGrad, UnaryOps) {
  // Inputs away from kinks (0 for abs/relu/clamp bounds) so finite differences are smooth.
  Tensor x = f64({-1.7, -0.6, -0.2, 0.3, 0.8, 1.9}, {2, 3});
  Tensor p = f64({0.2, 0.7, 1.3, 2.2, 3.1, 0.45}, {2, 3});
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  const std::vector<std::pair<const char*, Fn>> on_x = {
      {"neg", [](const auto& in) { return -in[0]; }},
      {"abs", [](const auto& in) { return in[0].abs(); }},
      {"sign", [](const auto& in) { return sign(in[0]) * in[0]; }},
      {"exp", [](const auto& in) { return in[0].exp(); }},
      {"square", [](const auto& in) { return square(in[0]); }},
      {"sin", [](const auto& in) { return sin(in[0]); }},
      {"cos", [](const auto& in) { return cos(in[0]); }},
      {"erf", [](const auto& in) { return erf(in[0]); }},
      {"tanh", [](const auto& in) { return in[0].tanh(); }},
      {"sigmoid", [](const auto& in) { return in[0].sigmoid(); }},
      {"relu", [](const auto& in) { return in[0].relu(); }},
      {"gelu", [](const auto& in) { return gelu(in[0]); }},
      {"gelu_tanh", [](const auto& in) { return gelu(in[0], "tanh"); }},
      {"silu", [](const auto& in) { return silu(in[0]); }},
      {"clamp", [](const auto& in) { return in[0].clamp(-1.0, 1.0); }},
      {"clamp_max", [](const auto& in) { return clamp(in[0], std::nullopt, 0.5); }},
      {"pow3", [](const auto& in) { return in[0].pow(3); }},
      {"pow2", [](const auto& in) { return in[0].pow(2); }},
      {"pow0", [](const auto& in) { return in[0].pow(0) + in[0]; }},
      {"exp_base", [](const auto& in) { return pow(1.7, in[0]); }},
      // Non-contiguous inputs.
      {"gelu_t", [](const auto& in) { return gelu(in[0].t()); }},
      {"tanh_slice", [](const auto& in) { return in[0].slice(1, 0, 3, 2).tanh(); }},
      {"relu_expand",
       [](const auto& in) {
         return in[0].unsqueeze(0).expand({2, 2, 3}).relu();
       }},
  };
  for (const auto& [name, fn] : on_x) expect_gradcheck(fn, {x}, name);
  const std::vector<std::pair<const char*, Fn>> on_p = {
      {"log", [](const auto& in) { return in[0].log(); }},
      {"log1p", [](const auto& in) { return log1p(in[0]); }},
      {"sqrt", [](const auto& in) { return in[0].sqrt(); }},
      {"rsqrt", [](const auto& in) { return in[0].rsqrt(); }},
      {"reciprocal", [](const auto& in) { return reciprocal(in[0]); }},
      {"pow2.5", [](const auto& in) { return in[0].pow(2.5); }},
      {"log_t", [](const auto& in) { return in[0].t().log(); }},
  };
  for (const auto& [name, fn] : on_p) expect_gradcheck(fn, {p}, name);
}

TEST(ElementwiseGrad, BinaryOpsWithBroadcast) {
  Tensor a = f64({0.5, 1.2, 2.0, 0.7, 1.1, 0.3}, {2, 3});
  Tensor b = f64({1.5, 0.8, 1.4}, {3});
  Tensor e = f64({1.3, -0.7}, {2, 1});
  expect_gradcheck([](const auto& in) { return maximum(in[0], in[1]); }, {a, b}, "maximum");
  expect_gradcheck([](const auto& in) { return minimum(in[0], in[1]); }, {a, b}, "minimum");
  expect_gradcheck([](const auto& in) { return pow(in[0], in[1]); }, {a, b}, "pow");
  expect_gradcheck([](const auto& in) { return pow(in[0], in[1]); }, {a, e}, "pow broadcast exponent");
  expect_gradcheck([](const auto& in) { return pow(in[0].t(), in[1].t()); }, {a, a.detach().clone().requires_grad_()},
                   "pow transposed");
  Tensor cond = tensor<bool>({true, false, true}, {3});
  expect_gradcheck([cond](const auto& in) { return where(cond, in[0], in[1]); }, {a, b}, "where");
  expect_gradcheck([cond](const auto& in) { return where(cond, in[0], 2.0); }, {a}, "where scalar");
}

TEST(ElementwiseGrad, TiesAndZeroBase) {
  // maximum/minimum split the gradient at ties.
  Tensor a = tensor<double>({1, 2, 3}, {3}, {.dtype = kFloat64, .requires_grad = true});
  Tensor b = tensor<double>({1, 5, 0}, {3}, {.dtype = kFloat64, .requires_grad = true});
  maximum(a, b).sum().backward();
  expect_close(a.grad(), {0.5, 0, 1});
  expect_close(b.grad(), {0.5, 1, 0});
  a.set_grad(Tensor());
  b.set_grad(Tensor());
  minimum(a, b).sum().backward();
  expect_close(a.grad(), {0.5, 1, 0});
  expect_close(b.grad(), {0.5, 0, 1});
  // pow at base 0: d/dbase of 0^2 is 0, of 0^0 is 0; d/dexponent at base 0 (e >= 0) is 0, not NaN.
  Tensor base = tensor<double>({0, 0, 2}, {3}, {.dtype = kFloat64, .requires_grad = true});
  Tensor ex = tensor<double>({2, 0, 3}, {3}, {.dtype = kFloat64, .requires_grad = true});
  pow(base, ex).sum().backward();
  expect_close(base.grad(), {0, 0, 12});
  expect_close(ex.grad(), {0, 0, 8 * std::log(2.0)});
  Tensor z = tensor<double>({0, 3}, {2}, {.dtype = kFloat64, .requires_grad = true});
  z.pow(2).sum().backward();
  expect_close(z.grad(), {0, 6});
  Tensor s = tensor<double>({0, 1}, {2}, {.dtype = kFloat64, .requires_grad = true});
  s.pow(0).sum().backward();
  expect_close(s.grad(), {0, 0});
  // relu at 0 and clamp at its bounds pass gradient as torch does: relu'(0) = 0, clamp' = 1
  // at x == min or x == max.
  Tensor r = tensor<double>({0, -1, 2}, {3}, {.dtype = kFloat64, .requires_grad = true});
  r.relu().sum().backward();
  expect_close(r.grad(), {0, 0, 1});
  Tensor c = tensor<double>({-1, 1, 0.5, 3}, {4}, {.dtype = kFloat64, .requires_grad = true});
  c.clamp(-1.0, 1.0).sum().backward();
  expect_close(c.grad(), {1, 1, 1, 0});
  // sign has a zero gradient.
  Tensor sg = tensor<double>({-2, 3}, {2}, {.dtype = kFloat64, .requires_grad = true});
  sign(sg).sum().backward();
  expect_close(sg.grad(), {0, 0});
}

TEST(ElementwiseGrad, InPlaceReluAndClamp) {
  Tensor x = f64({-1.5, 0.4, 2.2, -0.3}, {2, 2});
  expect_gradcheck(
      [](const auto& in) {
        Tensor t = in[0] * 2.0;
        relu_(t);
        return t;
      },
      {x}, "relu_");
  expect_gradcheck(
      [](const auto& in) {
        Tensor t = in[0] * 1.0;
        clamp_(t, -1.0, 0.5);
        return t * t;
      },
      {x}, "clamp_");
  Tensor v = tensor<float>({-1, 2, 5});
  relu_(v);
  expect_close(v, {0, 2, 5});
  clamp_(v, std::nullopt, 3);
  expect_close(v, {0, 2, 3});
  Tensor base = tensor<float>({-1, 2, -3, 4}, {2, 2});
  Tensor col = base.t();
  relu_(col);  // in place through a non-contiguous view
  expect_close(base, {0, 2, 0, 4});
}

// ------------------------------------------------------------------ error paths
TEST(ElementwiseErrors, DTypeAndValueErrors) {
  Tensor b = tensor<bool>({true, false});
  EXPECT_THROW(-b, DTypeError);
  EXPECT_THROW(neg(b), DTypeError);
  EXPECT_THROW(b.abs(), DTypeError);
  EXPECT_THROW(b.relu(), DTypeError);
  EXPECT_THROW(gelu(tensor<int32_t>({1})), DTypeError);
  EXPECT_THROW(silu(tensor<int32_t>({1})), DTypeError);
  EXPECT_THROW(gelu(zeros({2}), "fast"), ValueError);
  EXPECT_THROW(clamp(zeros({2}), std::nullopt, std::nullopt), ValueError);
  EXPECT_THROW(clamp(b, 0, 1), DTypeError);
  Tensor i = tensor<int32_t>({1, 2});
  EXPECT_THROW(clamp_(i, 0.5, std::nullopt), DTypeError);
  EXPECT_THROW(pow(b, b), DTypeError);
  Tensor leaf = ones({2}, {.requires_grad = true});
  EXPECT_THROW(relu_(leaf), AutogradError);
  EXPECT_THROW(clamp_(leaf, 0, 1), AutogradError);
}

TEST(ElementwiseErrors, UnaryAndOtherOpsOnCudaTensors) {
  Tensor c = fake_cuda_tensor();
  // No CUDA kernels yet: refused before anything is allocated or touched.
  EXPECT_THROW(equal(c, c), NotImplemented);
  // A CPU condition of several elements beside a CUDA operand: a device error, never a CPU kernel.
  EXPECT_THROW(where(gt(zeros({4}), 0), c, zeros({4})), DeviceError);
  if (cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device is present (tests/cuda covers CUDA ops)";
  // CUDA kernels exist: without a usable device (or CUDA in the build) they are DeviceErrors.
  EXPECT_THROW(c.exp(), DeviceError);
  EXPECT_THROW(gelu(c), DeviceError);
  EXPECT_THROW(relu_(c), DeviceError);
  EXPECT_THROW(eq(c, c), DeviceError);
  EXPECT_THROW(maximum(c, zeros({4})), DeviceError);
  EXPECT_THROW(c.pow(2), DeviceError);
  EXPECT_THROW(c.clamp(0, 1), DeviceError);
  EXPECT_THROW(isnan(c), DeviceError);
  EXPECT_THROW(logical_not(c), DeviceError);
}

// ------------------------------------------------------------------ large results (streaming stores)
/// Sets the streaming-store threshold (bytes) for a scope.
class StreamingThreshold {
 public:
  explicit StreamingThreshold(int64_t bytes) : prev_(cpu::detail::set_streaming_threshold(bytes)) {}
  ~StreamingThreshold() { cpu::detail::set_streaming_threshold(prev_); }
  StreamingThreshold(const StreamingThreshold&) = delete;
  StreamingThreshold& operator=(const StreamingThreshold&) = delete;

 private:
  int64_t prev_;
};
constexpr int64_t kNeverStream = std::numeric_limits<int64_t>::max();

TEST(ElementwiseLarge, StreamedResultsMatchSmallPath) {
  // Above the threshold (forced to 0 here) f32 results are written with non-temporal stores;
  // check every element, with an odd size and a destination that is not 16-byte aligned.
  StreamingThreshold always(0);
  const int64_t streamed_before = cpu::detail::streamed_elements();
  constexpr int64_t kN = 5000003;
  std::vector<float> va(kN + 1), vb(kN);
  for (int64_t i = 0; i <= kN; ++i) va[i] = static_cast<float>((i % 2001) - 1000) * 0.004f;
  for (int64_t i = 0; i < kN; ++i) vb[i] = static_cast<float>((i % 997) + 1) * 0.01f;
  Tensor base = tensor<float>(va);
  Tensor a = base.slice(0, 1, kN + 1);  // offset by one element
  Tensor b = tensor<float>(vb);
  auto check = [&](const Tensor& got, const std::function<double(int64_t)>& want, const char* what) {
    ASSERT_EQ(got.numel(), kN) << what;
    const std::vector<float> g = got.to_vector<float>();
    int64_t bad = 0;
    for (int64_t i = 0; i < kN; ++i) {
      const double w = want(i);
      if (!(std::fabs(g[i] - w) <= 1e-6 * (1 + std::fabs(w)))) ++bad;
    }
    EXPECT_EQ(bad, 0) << what;
  };
  check(
      a + b, [&](int64_t i) { return double(va[i + 1]) + vb[i]; }, "add");
  check(
      a * 3.0, [&](int64_t i) { return double(va[i + 1]) * 3; }, "mul scalar");
  check(
      2.0 - b, [&](int64_t i) { return 2.0 - vb[i]; }, "scalar minus");
  check(
      gelu(a), [&](int64_t i) { return gelu_ref(va[i + 1]); }, "gelu");
  check(
      a.clamp(-1.0, 1.0), [&](int64_t i) { return std::clamp<double>(va[i + 1], -1, 1); }, "clamp");
  Tensor c = a.clone();
  Tensor view = base.slice(0, 1, kN + 1);
  view.add_(b);  // in place into the misaligned view
  check(
      view, [&](int64_t i) { return double(va[i + 1]) + vb[i]; }, "add_ in place");
  EXPECT_TRUE(equal(c + b, view));
  EXPECT_GE(cpu::detail::streamed_elements() - streamed_before, 6 * kN);  // the path was taken
}

// ------------------------------------------------------------------ streaming-store path details
/// Bit patterns of an f32 tensor (so signed zeros count), every NaN as one canonical NaN: the
/// NaN's sign is not part of the contract (k_sigmoid's vector body and scalar remainder differ).
std::vector<uint32_t> f32_bits(const Tensor& t) {
  const std::vector<float> v = t.contiguous().to_vector<float>();
  std::vector<uint32_t> r(v.size());
  std::memcpy(r.data(), v.data(), v.size() * sizeof(float));
  for (size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i])) r[i] = 0x7fc00000u;
  return r;
}

/// n floats spread over [-8, 8) with NaN, +-inf, +-0 and a denormal at the start, middle and end
/// (the normal-store head, the streamed body and the tail).
std::vector<float> streaming_input(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = -8.0f + 16.0f * static_cast<float>(s >> 8) / 16777216.0f;
  }
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            0.0f,
                            -0.0f,
                            1e-40f};
  for (int64_t k = 0; k < 6 && k < n; ++k) {
    v[static_cast<size_t>(k)] = specials[k];
    v[static_cast<size_t>(n / 2 + k) % static_cast<size_t>(n)] = specials[k];
    v[static_cast<size_t>(n - 1 - k)] = specials[k];
  }
  return v;
}

/// Runs `op(out)` into a view of n elements starting `offset` floats into a sentinel-filled
/// buffer, once with streaming off and once forced on, and expects bit-identical results, the
/// sentinels around the view untouched, and (if `expect_stream`) all n elements streamed.
void expect_streaming_identical(const std::function<void(const Tensor&)>& op, int64_t n, int64_t offset,
                                const std::string& what, bool expect_stream = true) {
  constexpr float kSentinel = 12345.5f;
  auto run = [&](int64_t threshold, int64_t* streamed) {
    Tensor buf = full({n + 32}, kSentinel);
    Tensor out = buf.slice(0, offset, offset + n);
    StreamingThreshold t(threshold);
    const int64_t before = cpu::detail::streamed_elements();
    op(out);
    *streamed = cpu::detail::streamed_elements() - before;
    return buf;
  };
  int64_t streamed_normal = 0, streamed = 0;
  const Tensor normal = run(kNeverStream, &streamed_normal);
  const Tensor fast = run(0, &streamed);
  EXPECT_EQ(streamed_normal, 0) << what;
  EXPECT_EQ(streamed, expect_stream ? n : 0) << what << " n=" << n << " offset=" << offset;
  const std::vector<uint32_t> want = f32_bits(normal), got = f32_bits(fast);
  ASSERT_EQ(got.size(), want.size());
  int64_t bad = 0, first_bad = -1;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      ++bad;
    }
  EXPECT_EQ(bad, 0) << what << " n=" << n << " offset=" << offset << ": first difference at " << first_bad;
  const std::vector<float> g = fast.to_vector<float>();
  for (int64_t i = 0; i < offset; ++i) EXPECT_EQ(g[static_cast<size_t>(i)], kSentinel) << what << " before " << i;
  for (int64_t i = offset + n; i < n + 32; ++i)
    EXPECT_EQ(g[static_cast<size_t>(i)], kSentinel) << what << " after " << i;
}

TEST(ElementwiseStreaming, ThresholdKnob) {
  const int64_t def = cpu::detail::set_streaming_threshold(-1);  // back to the default
  const int64_t machine = cpu::detail::get_streaming_threshold();
  EXPECT_GT(machine, 0);
  EXPECT_EQ(cpu::detail::set_streaming_threshold(4096), machine);
  EXPECT_EQ(cpu::detail::get_streaming_threshold(), 4096);
  cpu::detail::set_streaming_threshold(def);
}

TEST(ElementwiseStreaming, ThresholdIsStrictAndShortRowsStayNormal) {
  constexpr int64_t kN = 4099;
  const Tensor x = tensor<float>(streaming_input(kN, 7));
  auto streamed_by = [&](int64_t threshold, const Tensor& in) {
    StreamingThreshold t(threshold);
    const int64_t before = cpu::detail::streamed_elements();
    const Tensor y = gelu(in);
    EXPECT_EQ(y.numel(), in.numel());
    return cpu::detail::streamed_elements() - before;
  };
  EXPECT_EQ(streamed_by(4 * kN, x), 0);  // output bytes == threshold: normal stores
  EXPECT_EQ(streamed_by(4 * kN - 1, x), kN);
  const Tensor short_row = x.slice(0, 0, cpu::kStreamMinRow - 1);
  EXPECT_EQ(streamed_by(0, short_row), 0);  // too short to stream
  EXPECT_EQ(streamed_by(0, x.slice(0, 0, cpu::kStreamMinRow)), cpu::kStreamMinRow);
  // Rows of a 2-D result that do not coalesce are streamed one by one (unaligned row starts).
  Tensor wide = zeros({3, 2051});
  Tensor rows = wide.slice(1, 5, 5 + 2000);
  {
    StreamingThreshold t(0);
    const int64_t before = cpu::detail::streamed_elements();
    cpu::unary(cpu::UnaryOp::relu, rows, tensor<float>(streaming_input(6000, 3)).reshape({3, 2000}));
    EXPECT_EQ(cpu::detail::streamed_elements() - before, 6000);
  }
  EXPECT_EQ(vals(wide.slice(1, 0, 5)), std::vector<double>(15, 0.0));
  EXPECT_EQ(vals(wide.slice(1, 2005, 2051)), std::vector<double>(3 * 46, 0.0));
  std::vector<double> want =
      map(vals(tensor<float>(streaming_input(6000, 3))), [](double v) { return v < 0 ? 0.0 : v; });
  expect_close(rows.reshape({6000}), want, 0, 0);
}

TEST(ElementwiseStreaming, UnaryBitIdenticalToNormalStores) {
  using cpu::UnaryOp;
  const std::pair<const char*, UnaryOp> ops[] = {
      {"gelu", UnaryOp::gelu},       {"gelu_tanh", UnaryOp::gelu_tanh}, {"exp", UnaryOp::exp}, {"tanh", UnaryOp::tanh},
      {"sigmoid", UnaryOp::sigmoid}, {"relu", UnaryOp::relu},           {"neg", UnaryOp::neg}, {"sqrt", UnaryOp::sqrt}};
  for (const int64_t n : {int64_t{1024}, int64_t{1025}, int64_t{4099}, int64_t{200003}})
    for (const int64_t offset : {0, 1, 3, 15}) {
      // The input is misaligned by a different amount than the output.
      const Tensor base = tensor<float>(streaming_input(n + 7, static_cast<uint32_t>(n)));
      const Tensor x = base.slice(0, 7, n + 7);
      for (const auto& [name, op] : ops)
        expect_streaming_identical([&, op = op](const Tensor& out) { cpu::unary(op, out, x); }, n, offset, name);
      expect_streaming_identical([&](const Tensor& out) { cpu::clamp(out, x, Scalar(-1.5), Scalar(2.0)); }, n, offset,
                                 "clamp");
    }
}

TEST(ElementwiseStreaming, BinaryBitIdenticalToNormalStores) {
  using cpu::BinaryOp;
  for (const int64_t n : {int64_t{1024}, int64_t{1031}, int64_t{4099}, int64_t{200003}})
    for (const int64_t offset : {0, 1, 3, 15}) {
      const Tensor a = tensor<float>(streaming_input(n, 1));
      const Tensor b0 = tensor<float>(streaming_input(n + 3, 2));
      const Tensor b = b0.slice(0, 3, n + 3);
      const Tensor s = scalar_tensor(0.37, {.dtype = kFloat32});  // 0-d: the vector-scalar path
      auto bin = [&](BinaryOp op, const Tensor& x, const Tensor& y, double alpha, const char* what) {
        expect_streaming_identical([&](const Tensor& out) { cpu::binary(op, out, x, y, alpha); }, n, offset, what);
      };
      bin(BinaryOp::add, a, b, 1.0, "add");
      bin(BinaryOp::add, a, b, 2.5, "add alpha 2.5");
      bin(BinaryOp::sub, a, b, 0.75, "sub alpha 0.75");
      bin(BinaryOp::mul, a, b, 1.0, "mul");
      bin(BinaryOp::div, a, b, 1.0, "div");
      bin(BinaryOp::maximum, a, b, 1.0, "maximum");
      bin(BinaryOp::gelu_backward, a, b, 1.0, "gelu_backward");
      bin(BinaryOp::mul, a, s, 1.0, "mul scalar");
      bin(BinaryOp::sub, s, b, 1.0, "scalar minus");
    }
}

TEST(ElementwiseStreaming, MatchesStridedPathAndExactArithmetic) {
  // Streamed contiguous results against the same op through transposed (strided) views, and
  // against double arithmetic rounded once to f32 (exact for + * / of two floats).
  StreamingThreshold always(0);
  constexpr int64_t kRows = 301, kCols = 677;  // odd sizes, 203777 elements
  const Tensor at = tensor<float>(streaming_input(kRows * kCols, 11)).reshape({kCols, kRows});
  const Tensor bt = tensor<float>(streaming_input(kRows * kCols, 12)).reshape({kCols, kRows});
  const Tensor a = at.t(), b = bt.t();  // [kRows, kCols], not contiguous
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  const std::vector<float> va = ac.to_vector<float>(), vb = bc.to_vector<float>();
  const std::pair<const char*, std::function<Tensor(const Tensor&, const Tensor&)>> ops[] = {
      {"add", [](const Tensor& x, const Tensor& y) { return x + y; }},
      {"sub", [](const Tensor& x, const Tensor& y) { return x - y; }},
      {"mul", [](const Tensor& x, const Tensor& y) { return x * y; }},
      {"div", [](const Tensor& x, const Tensor& y) { return x / y; }}};
  for (const auto& [name, f] : ops) {
    const int64_t before = cpu::detail::streamed_elements();
    const Tensor fast = f(ac, bc);
    EXPECT_EQ(cpu::detail::streamed_elements() - before, kRows * kCols) << name;
    EXPECT_EQ(f32_bits(fast), f32_bits(f(a, b))) << name;
    const std::vector<float> got = fast.to_vector<float>();
    int64_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double x = va[i], y = vb[i];
      const double w = name[0] == 'a' ? x + y : name[0] == 's' ? x - y : name[0] == 'm' ? x * y : x / y;
      const float want = static_cast<float>(w);
      std::uint32_t gb, wb;
      std::memcpy(&gb, &got[i], 4);
      std::memcpy(&wb, &want, 4);
      if (std::isnan(want) ? !std::isnan(got[i]) : gb != wb) ++bad;
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

TEST(ElementwiseStreaming, NaNAndInfinityPropagate) {
  StreamingThreshold always(0);
  constexpr int64_t kN = 3001;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> va(kN, 1.0f), vb(kN, 2.0f);
  for (const int64_t i : {int64_t{0}, int64_t{1}, int64_t{1500}, kN - 2, kN - 1}) {
    va[static_cast<size_t>(i)] = (i % 2) ? nan : inf;
    vb[static_cast<size_t>(i)] = (i % 2) ? 3.0f : -inf;
  }
  const Tensor base = tensor<float>(std::vector<float>(1, 0.0f));
  const Tensor a = cat({base, tensor<float>(va)}, 0).slice(0, 1, kN + 1);  // misaligned by one float
  const Tensor b = tensor<float>(vb);
  const std::vector<float> sum = (a + b).to_vector<float>(), prod = (a * b).to_vector<float>(),
                           g = gelu(a).to_vector<float>();
  for (int64_t i = 0; i < kN; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (std::isnan(va[k])) {
      EXPECT_TRUE(std::isnan(sum[k]) && std::isnan(prod[k]) && std::isnan(g[k])) << i;
    } else if (std::isinf(va[k])) {
      EXPECT_TRUE(std::isnan(sum[k])) << i;  // inf + -inf
      EXPECT_EQ(prod[k], -inf) << i;
      EXPECT_EQ(g[k], inf) << i;
    } else {
      EXPECT_EQ(sum[k], 3.0f) << i;
      EXPECT_EQ(prod[k], 2.0f) << i;
      EXPECT_NEAR(g[k], gelu_ref(1.0), 1e-6) << i;
    }
  }
}
