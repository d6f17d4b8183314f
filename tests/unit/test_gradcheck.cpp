// gradcheck itself: it must pass correct gradients, catch wrong ones (with a useful message),
// catch NaN, treat unused inputs correctly, and leave the caller's tensors alone.
//
// The functions checked here are built from view ops and custom autograd::Functions whose
// forward and backward are written with raw loops, so these tests depend only on the core.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <ember/ember.hpp>

using namespace ember;
using autograd::gradcheck;

namespace {

/// out[i] = f(x[i]) computed on the host in double, returned in x's dtype.
template <class F>
Tensor map_host(const Tensor& x, F f) {
  std::vector<double> v = x.to_vector<double>();
  for (auto& e : v) e = f(e);
  return tensor<double>(v, {x.numel()}).reshape(x.shape()).to(x.dtype());
}

/// out[i] = f(a[i], b[i]) (same shapes).
template <class F>
Tensor zip_host(const Tensor& a, const Tensor& b, F f) {
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) va[i] = f(va[i], vb[i]);
  return tensor<double>(va, {a.numel()}).reshape(a.shape()).to(a.dtype());
}

/// y = x^3 with a backward scaled by `kScale` (1 is correct).
template <int kScale>
struct Cube : autograd::Function<Cube<kScale>> {
  static Tensor forward(autograd::Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return map_host(x, [](double v) { return v * v * v; });
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, const std::vector<Tensor>& g) {
    Tensor x = ctx.saved()[0];
    return {zip_host(g[0], x, [](double gv, double xv) { return kScale * 3.0 * xv * xv * gv; })};
  }
};

/// y = a * b elementwise; backward for b is wrong when kWrongB.
template <bool kWrongB>
struct Product : autograd::Function<Product<kWrongB>> {
  static Tensor forward(autograd::Context& ctx, const Tensor& a, const Tensor& b) {
    ctx.save_for_backward({a, b});
    return zip_host(a, b, [](double x, double y) { return x * y; });
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, const std::vector<Tensor>& g) {
    auto s = ctx.saved();
    Tensor ga = zip_host(g[0], s[1], [](double gv, double bv) { return gv * bv; });
    Tensor gb = zip_host(g[0], s[0], [](double gv, double av) { return gv * av + (kWrongB ? 1e-3 : 0.0); });
    return {ga, gb};
  }
};

/// Returns a gradient full of NaN.
struct NanGrad : autograd::Function<NanGrad> {
  static Tensor forward(autograd::Context&, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) {
    return {full_like(g[0], std::numeric_limits<double>::quiet_NaN())};
  }
};

/// Ignores b in forward but claims a gradient for it in backward.
struct PhantomGrad : autograd::Function<PhantomGrad> {
  static Tensor forward(autograd::Context&, const Tensor& a, const Tensor& b) {
    (void)b;
    return a.clone();
  }
  static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) {
    return {g[0], ones_like(g[0])};
  }
};

Tensor sample(const Shape& shape, double scale = 1.0, DType dt = kFloat64) {
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = scale * (0.3 + 0.17 * static_cast<double>(i % 7) - 0.05 * static_cast<double>(i % 3));
  return tensor<double>(v, {numel_of(shape)}).reshape(shape).to(dt).requires_grad_();
}

}  // namespace

TEST(Gradcheck, PassesForViews) {
  Tensor x = sample({3, 4});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return in[0].t().slice(0, 1, 4).select(1, 2); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_TRUE(r.message.empty());
  auto r2 = gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].permute({1, 0}).reshape({12}).view({2, 6});
      },
      {x});
  EXPECT_TRUE(r2) << r2.message;
  auto r3 = gradcheck([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).expand({2, 3, 4}); }, {x});
  EXPECT_TRUE(r3) << r3.message;
}

TEST(Gradcheck, PassesForNonlinearCustomFunction) {
  Tensor x = sample({5});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return Cube<1>::apply(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  Tensor a = sample({2, 3}), b = sample({2, 3}, -2.0);
  auto r2 = gradcheck([](const std::vector<Tensor>& in) { return Product<false>::apply(in[0], in[1]); }, {a, b});
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(Gradcheck, CatchesWrongGradientAndNamesIt) {
  Tensor x = sample({4});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return Cube<2>::apply(in[0]); }, {x});
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_NE(r.message.find("input 0"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("element 0"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("analytic"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("numeric"), std::string::npos) << r.message;
}

TEST(Gradcheck, CatchesSmallErrorInSecondInput) {
  Tensor a = sample({2, 2}), b = sample({2, 2});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return Product<true>::apply(in[0], in[1]); }, {a, b});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("input 1"), std::string::npos) << r.message;
  // Tight tolerances make even exact formulas fail only by rounding; loose ones accept the 1e-3 error.
  auto loose = gradcheck([](const std::vector<Tensor>& in) { return Product<true>::apply(in[0], in[1]); }, {a, b},
                         {.eps = 1e-6, .atol = 1e-2, .rtol = 1e-2});
  EXPECT_TRUE(loose.ok) << loose.message;
}

TEST(Gradcheck, RejectsNaN) {
  Tensor x = sample({3});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return NanGrad::apply(in[0]); }, {x},
                     {.eps = 1e-6, .atol = 1e30, .rtol = 1e30});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("not finite"), std::string::npos) << r.message;
}

TEST(Gradcheck, UnusedInputMayHaveNoGradient) {
  Tensor a = sample({3}), b = sample({2});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return in[0].unsqueeze(1); }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
  // ... but a non-zero gradient for an input that does not affect the output is an error.
  Tensor c = sample({3});
  auto bad = gradcheck([](const std::vector<Tensor>& in) { return PhantomGrad::apply(in[0], in[1]); }, {a, c});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.message.find("input 1"), std::string::npos) << bad.message;
}

TEST(Gradcheck, ConvertsF32InputsToF64AndLeavesCallerTensorsAlone) {
  Tensor x = sample({2, 3}, 1.0, kFloat32);
  std::vector<float> before = x.to_vector<float>();
  DType seen = kFloat32;
  auto r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        seen = in[0].dtype();
        return Cube<1>::apply(in[0]);
      },
      {x});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(seen, kFloat64);
  EXPECT_EQ(x.dtype(), kFloat32);
  EXPECT_EQ(x.to_vector<float>(), before);
  EXPECT_FALSE(x.grad().defined());
}

TEST(Gradcheck, PassesIntegerInputsThrough) {
  Tensor x = sample({4});
  Tensor idx = tensor<int64_t>({2});
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) {
        EXPECT_EQ(in[1].dtype(), kInt64);
        return in[0].narrow(0, in[1].item<int64_t>(), 2);
      },
      {x, idx});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Gradcheck, ZeroDimOutput) {
  Tensor x = sample({3});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return in[0].select(0, 1); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Gradcheck, Errors) {
  Tensor x = tensor<double>({1.0, 2.0});  // does not require grad
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {x}), ValueError);
  Tensor y = sample({2});
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return in[0].detach().to(kInt64); }, {y}), DTypeError);
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>&) { return Tensor(); }, {y}), ValueError);
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {y}, {.eps = 0.0}), ValueError);
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {y}, {.eps = 1e-6, .atol = -1.0}),
               ValueError);
}
