// Elementwise ops: values against hand-computed results and std:: math for every dtype,
// broadcasting, non-contiguous inputs, 0-d and empty tensors, in-place variants, gradients
// (gradcheck in f64), and every error path.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <ember/ember.hpp>

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
  Tensor cuda = fake_cuda_tensor();
  EXPECT_THROW(cuda.add_(1), NotImplemented);
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

TEST(ElementwiseErrors, CudaTensorsAreNotImplemented) {
  Tensor c = fake_cuda_tensor();
  Tensor h = zeros({4});
  EXPECT_THROW(c + h, NotImplemented);
  EXPECT_THROW(h * c, NotImplemented);
  EXPECT_THROW(c / 2, NotImplemented);
  EXPECT_THROW(Tensor() + h, ValueError);
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
  expect_gradcheck([](const auto& in) { return in[0].t().slice(0, 0, 4, 2) * in[1].slice(1, 0, 4, 2).t(); }, {m, m.detach().clone().requires_grad_()},
                   "mul transposed");
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
