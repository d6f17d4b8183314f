// conv2d against a naive direct convolution in double (f64 through im2col + GEMM, f32 through
// oneDNN when built with it), gradients by finite differences, nn::Conv2d, and error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using test::max_abs_diff;
using autograd::gradcheck;

namespace {

struct Cfg {
  int64_t n, c, h, w, o, kh, kw;
  IntPair stride, padding, dilation;
  int64_t groups;
  bool bias;
};

// Direct convolution in double from the definition.
std::vector<double> naive_conv(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                               const Cfg& c, int64_t& oh, int64_t& ow) {
  oh = (c.h + 2 * c.padding.h - c.dilation.h * (c.kh - 1) - 1) / c.stride.h + 1;
  ow = (c.w + 2 * c.padding.w - c.dilation.w * (c.kw - 1) - 1) / c.stride.w + 1;
  const int64_t cg = c.c / c.groups, og = c.o / c.groups;
  std::vector<double> y(static_cast<size_t>(c.n * c.o * oh * ow));
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t o = 0; o < c.o; ++o) {
      const int64_t grp = o / og;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = c.bias ? b[o] : 0.0;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ki = 0; ki < c.kh; ++ki)
              for (int64_t kj = 0; kj < c.kw; ++kj) {
                const int64_t iy = oy * c.stride.h - c.padding.h + ki * c.dilation.h;
                const int64_t ix = ox * c.stride.w - c.padding.w + kj * c.dilation.w;
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                s += x[((n * c.c + grp * cg + ci) * c.h + iy) * c.w + ix] * w[((o * cg + ci) * c.kh + ki) * c.kw + kj];
              }
          y[((n * c.o + o) * oh + oy) * ow + ox] = s;
        }
    }
  return y;
}

std::vector<Cfg> configs() {
  return {
      {2, 3, 7, 6, 4, 3, 3, 1, 0, 1, 1, true},       // plain
      {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, false},      // padding 1, no bias
      {2, 3, 9, 8, 5, 3, 2, 2, {2, 1}, 1, 1, true},  // stride 2, odd sizes, rect kernel
      {1, 4, 9, 9, 6, 3, 3, 1, 1, 2, 2, true},       // dilation 2, groups 2
      {3, 4, 6, 7, 4, 3, 3, {1, 2}, 2, 1, 4, true},  // depthwise (groups = C), padding 2
      {2, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1, true},     // the CNN's first layer, smaller
      {2, 6, 5, 5, 4, 1, 1, 1, 0, 1, 1, true},       // 1×1
      {1, 2, 5, 5, 2, 5, 5, 1, 0, 1, 1, true},       // kernel = input
  };
}

std::string cfg_str(const Cfg& c) {
  return "n" + std::to_string(c.n) + " c" + std::to_string(c.c) + " " + std::to_string(c.h) + "x" +
         std::to_string(c.w) + " o" + std::to_string(c.o) + " k" + std::to_string(c.kh) + "x" + std::to_string(c.kw) +
         " s" + std::to_string(c.stride.h) + "," + std::to_string(c.stride.w) + " p" + std::to_string(c.padding.h) +
         "," + std::to_string(c.padding.w) + " d" + std::to_string(c.dilation.h) + " g" + std::to_string(c.groups) +
         (c.bias ? " bias" : "");
}

void check_forward(DType dt, double tol) {
  manual_seed(7);
  for (const Cfg& c : configs()) {
    SCOPED_TRACE(cfg_str(c) + " " + dtype_name(dt));
    Tensor x = randn({c.n, c.c, c.h, c.w}, {.dtype = kFloat64});
    Tensor w = randn({c.o, c.c / c.groups, c.kh, c.kw}, {.dtype = kFloat64});
    Tensor b = randn({c.o}, {.dtype = kFloat64});
    int64_t oh = 0, ow = 0;
    const auto expect = naive_conv(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), c, oh, ow);
    Tensor y = conv2d(x.to(dt), w.to(dt), c.bias ? b.to(dt) : Tensor(), c.stride, c.padding, c.dilation, c.groups);
    ASSERT_EQ(y.shape(), (Shape{c.n, c.o, oh, ow}));
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), tol);
  }
}

}  // namespace

TEST(Conv2d, ForwardMatchesNaiveF64) { check_forward(kFloat64, 1e-12); }
TEST(Conv2d, ForwardMatchesNaiveF32) { check_forward(kFloat32, 1e-4); }
TEST(Conv2d, ForwardBFloat16ComputesInF32) { check_forward(kBFloat16, 0.35); }

TEST(Conv2d, NonContiguousInputAndUnbatched) {
  manual_seed(3);
  Tensor x = randn({3, 2, 6, 5}, {.dtype = kFloat64}).transpose(0, 1);  // (2, 3, 6, 5), strided
  Tensor w = randn({4, 3, 3, 3}, {.dtype = kFloat64});
  Tensor y = conv2d(x, w, Tensor(), 1, 1);
  Tensor ref = conv2d(x.contiguous(), w, Tensor(), 1, 1);
  EXPECT_LE(max_abs_diff(y.to_vector<double>(), ref.to_vector<double>()), 0.0);
  Tensor y1 = conv2d(x.select(0, 1), w, Tensor(), 1, 1);
  ASSERT_EQ(y1.shape(), (Shape{4, 6, 5}));
  EXPECT_LE(max_abs_diff(y1.to_vector<double>(), ref.select(0, 1).to_vector<double>()), 0.0);
}

TEST(Conv2d, GradcheckAllInputs) {
  manual_seed(11);
  const std::vector<Cfg> cfgs = {
      {2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, true},      {1, 2, 7, 7, 3, 3, 3, 2, 1, 1, 1, true},  // stride 2
      {2, 4, 6, 6, 4, 2, 3, 1, {0, 1}, 1, 2, true},                                           // groups 2
      {1, 2, 8, 7, 2, 3, 3, 1, 2, 2, 1, false},                                               // dilation 2
      {1, 3, 5, 5, 3, 3, 3, 1, 1, 1, 3, true},                                                // depthwise
  };
  for (const Cfg& c : cfgs) {
    SCOPED_TRACE(cfg_str(c));
    Tensor x = randn({c.n, c.c, c.h, c.w}, {.dtype = kFloat64}).requires_grad_();
    Tensor w = randn({c.o, c.c / c.groups, c.kh, c.kw}, {.dtype = kFloat64}).requires_grad_();
    std::vector<Tensor> in{x, w};
    if (c.bias) in.push_back(randn({c.o}, {.dtype = kFloat64}).requires_grad_());
    auto r = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), c.stride, c.padding, c.dilation, c.groups);
        },
        in);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// f32 gradients (oneDNN's backward primitives) against the f64 im2col ones.
TEST(Conv2d, F32GradientsMatchF64) {
  manual_seed(5);
  for (const Cfg& c : configs()) {
    SCOPED_TRACE(cfg_str(c));
    Tensor x = randn({c.n, c.c, c.h, c.w}, {.dtype = kFloat64});
    Tensor w = randn({c.o, c.c / c.groups, c.kh, c.kw}, {.dtype = kFloat64});
    Tensor b = randn({c.o}, {.dtype = kFloat64});
    std::vector<std::vector<double>> grads[2];
    for (int k = 0; k < 2; ++k) {
      const DType dt = k == 0 ? kFloat64 : kFloat32;
      Tensor xi = x.to(dt).detach().requires_grad_(), wi = w.to(dt).detach().requires_grad_(),
             bi = b.to(dt).detach().requires_grad_();
      Tensor y = conv2d(xi, wi, c.bias ? bi : Tensor(), c.stride, c.padding, c.dilation, c.groups);
      Tensor gy = ember::cos(arange(0, static_cast<double>(y.numel()), 1.0, {.dtype = dt})).reshape(y.shape());
      y.backward(gy);
      grads[k] = {xi.grad().to_vector<double>(), wi.grad().to_vector<double>()};
      if (c.bias) grads[k].push_back(bi.grad().to_vector<double>());
    }
    for (size_t i = 0; i < grads[0].size(); ++i)
      EXPECT_LE(max_abs_diff(grads[0][i], grads[1][i]), 2e-3) << "grad " << i;
  }
}

TEST(Conv2d, OnlyRequestedGradients) {
  manual_seed(1);
  Tensor x = randn({2, 1, 8, 8});  // the first layer's input: no gradient wanted
  Tensor w = randn({4, 1, 3, 3}).requires_grad_();
  Tensor b = randn({4});
  conv2d(x, w, b, 1, 1).sum().backward();
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // d sum / d w[o, 0, i, j] = sum of the input over the shifted window.
  Tensor xs = x.to(kFloat64);
  const auto gw = w.grad().to_vector<double>();
  const auto xv = xs.to_vector<double>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double s = 0;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t oy = 0; oy < 8; ++oy)
          for (int64_t ox = 0; ox < 8; ++ox) {
            const int64_t iy = oy - 1 + i, ix = ox - 1 + j;
            if (iy >= 0 && iy < 8 && ix >= 0 && ix < 8) s += xv[(n * 8 + iy) * 8 + ix];
          }
      for (int64_t o = 0; o < 4; ++o) EXPECT_NEAR(gw[(o * 3 + i) * 3 + j], s, 1e-3);
    }
}

TEST(Conv2d, EmptyBatch) {
  Tensor x = zeros({0, 2, 5, 5}).requires_grad_();
  Tensor w = ones({3, 2, 3, 3}).requires_grad_();
  Tensor y = conv2d(x, w);
  EXPECT_EQ(y.shape(), (Shape{0, 3, 3, 3}));
  y.sum().backward();
  EXPECT_EQ(w.grad().shape(), (Shape{3, 2, 3, 3}));
  EXPECT_EQ(w.grad().abs().sum().item<double>(), 0.0);
}

TEST(Conv2d, Errors) {
  Tensor x = zeros({8, 1, 28, 28});
  Tensor w = zeros({32, 3, 3, 3});
  try {
    conv2d(x, w);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d: expected input with 3 channels for weight of shape (32, 3, 3, 3), "
                                         "got input of shape (8, 1, 28, 28)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(conv2d(zeros({1, 28, 28, 1, 1}), zeros({2, 1, 3, 3})), ShapeError);  // rank
  EXPECT_THROW(conv2d(zeros({28, 28}), zeros({2, 1, 3, 3})), ShapeError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3})), ShapeError);                           // weight rank
  EXPECT_THROW(conv2d(zeros({1, 3, 8, 8}), zeros({4, 1, 3, 3}), Tensor(), 1, 0, 1, 2), ValueError);  // 2 ∤ 3
  EXPECT_THROW(conv2d(zeros({1, 4, 8, 8}), zeros({3, 2, 3, 3}), Tensor(), 1, 0, 1, 2), ValueError);  // 2 ∤ 3 out
  EXPECT_THROW(conv2d(zeros({1, 1, 2, 2}), zeros({2, 1, 3, 3})), ShapeError);                        // kernel > input
  EXPECT_THROW(conv2d(zeros({1, 1, 4, 4}), zeros({2, 1, 3, 3}), Tensor(), 1, 0, 2), ShapeError);     // dilated
  EXPECT_NO_THROW(conv2d(zeros({1, 1, 2, 2}), zeros({2, 1, 3, 3}), Tensor(), 1, 1));                 // padded: fits
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), Tensor(), 1, -1), ValueError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), Tensor(), 0), ValueError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), Tensor(), {1, -2}), ValueError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), Tensor(), 1, 0, 0), ValueError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), Tensor(), 1, 0, 1, 0), ValueError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}), zeros({3})), ShapeError);  // bias
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}), zeros({2, 1, 3, 3}, {.dtype = kFloat64})), DTypeError);
  EXPECT_THROW(conv2d(zeros({1, 1, 8, 8}, {.dtype = kInt64}), zeros({2, 1, 3, 3}, {.dtype = kInt64})), DTypeError);
  EXPECT_THROW(conv2d(Tensor(), zeros({2, 1, 3, 3})), ValueError);
}

TEST(Conv2dModule, ParametersAndInit) {
  manual_seed(0);
  nn::Conv2d conv(4, 8, 3, {.padding = 1});
  auto params = conv.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[0].second.shape(), (Shape{8, 4, 3, 3}));
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(params[1].second.shape(), (Shape{8}));
  // kaiming_uniform(a = √5) and the bias both give U(±1/√fan_in), fan_in = 4·3·3 = 36.
  const double bound = 1.0 / 6.0;
  for (const Tensor& p : {conv.weight, conv.bias}) {
    EXPECT_LE(p.abs().max().item<double>(), bound);
    EXPECT_GT(p.abs().max().item<double>(), bound * 0.5);
  }
  EXPECT_EQ(conv.forward(zeros({2, 4, 5, 5})).shape(), (Shape{2, 8, 5, 5}));
  EXPECT_EQ(conv.extra_repr(), "4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)");

  nn::Conv2d grouped(4, 8, {3, 1}, {.stride = 2, .groups = 2, .bias = false});
  EXPECT_EQ(grouped.named_parameters().size(), 1u);
  EXPECT_EQ(grouped.weight.shape(), (Shape{8, 2, 3, 1}));
  EXPECT_EQ(grouped.extra_repr(), "4, 8, kernel_size=(3, 1), stride=(2, 2), groups=2, bias=False");
  EXPECT_EQ(grouped.forward(zeros({1, 4, 7, 7})).shape(), (Shape{1, 8, 3, 4}));

  EXPECT_THROW(nn::Conv2d(3, 8, 3, {.groups = 2}), ValueError);
  EXPECT_THROW(nn::Conv2d(0, 8, 3), ValueError);
  EXPECT_THROW(nn::Conv2d(2, 8, 0), ValueError);
}

TEST(Conv2dModule, TrainsThroughBackward) {
  manual_seed(2);
  nn::Conv2d conv(1, 2, 3);
  Tensor x = randn({3, 1, 6, 6});
  conv.forward(x).pow(2).mean().backward();
  EXPECT_EQ(conv.weight.grad().shape(), (Shape{2, 1, 3, 3}));
  EXPECT_EQ(conv.bias.grad().shape(), (Shape{2}));
  EXPECT_GT(conv.weight.grad().abs().sum().item<double>(), 0.0);
}
