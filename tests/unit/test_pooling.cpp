// max_pool2d / avg_pool2d / adaptive_avg_pool2d against naive loops in double, PyTorch's tie
// and NaN rules, gradients by finite differences, the layers, and error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using test::max_abs_diff;
using autograd::gradcheck;

namespace {

struct P {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  const int64_t eff = d * (k - 1) + 1;
  const double v = static_cast<double>(in + 2 * p - eff) / static_cast<double>(s);
  int64_t o = static_cast<int64_t>(ceil ? std::ceil(v) : std::floor(v)) + 1;
  if (ceil && (o - 1) * s >= in + p) --o;  // the last window must start inside the input or left padding
  return o;
}

// Naive max pooling of one plane: value, and flat index of the first maximum.
void naive_max(const std::vector<double>& x, int64_t h, int64_t w, const P& p, std::vector<double>& y,
               std::vector<int64_t>& idx) {
  const int64_t oh = out_size(h, p.kh, p.sh, p.ph, p.dh, p.ceil), ow = out_size(w, p.kw, p.sw, p.pw, p.dw, p.ceil);
  y.assign(oh * ow, 0);
  idx.assign(oh * ow, -1);
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox) {
      double best = -std::numeric_limits<double>::infinity();
      int64_t bi = -1;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t iy = oy * p.sh - p.ph + i * p.dh, ix = ox * p.sw - p.pw + j * p.dw;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
          if (bi < 0 || x[iy * w + ix] > best) best = x[iy * w + ix], bi = iy * w + ix;
        }
      y[oy * ow + ox] = best;
      idx[oy * ow + ox] = bi;
    }
}

const std::vector<P> kMaxCfgs = {
    {2, 2, 2, 2, 0, 0, 1, 1, false},  // the CNN's pool
    {3, 3, 2, 2, 1, 1, 1, 1, false},  // overlapping, padded
    {3, 2, 1, 2, 1, 0, 1, 1, true},   // rectangular, ceil mode
    {2, 3, 2, 1, 1, 1, 2, 1, false},  // dilation
    {2, 2, 2, 2, 0, 0, 1, 1, true},   // 2×2 on odd input with ceil: partial last window
};

}  // namespace

TEST(MaxPool2d, MatchesNaive) {
  manual_seed(4);
  for (const P& p : kMaxCfgs)
    for (DType dt : {kFloat64, kFloat32, kBFloat16}) {
      SCOPED_TRACE(::testing::Message() << "k" << p.kh << "x" << p.kw << " s" << p.sh << "," << p.sw << " p" << p.ph
                                        << "," << p.pw << " d" << p.dh << "," << p.dw << " ceil" << p.ceil << " "
                                        << dtype_name(dt));
      const int64_t n = 2, c = 3, h = 7, w = 9;
      Tensor x = randn({n, c, h, w}).to(dt);
      auto [y, idx] = max_pool2d_with_indices(x, {p.kh, p.kw}, IntPair{p.sh, p.sw}, {p.ph, p.pw}, {p.dh, p.dw}, p.ceil);
      const int64_t oh = out_size(h, p.kh, p.sh, p.ph, p.dh, p.ceil), ow = out_size(w, p.kw, p.sw, p.pw, p.dw, p.ceil);
      ASSERT_EQ(y.shape(), (Shape{n, c, oh, ow}));
      ASSERT_EQ(idx.dtype(), kInt64);
      const auto xv = x.to_vector<double>();
      std::vector<double> ey;
      std::vector<int64_t> ei;
      for (int64_t pl = 0; pl < n * c; ++pl) {
        std::vector<double> yy;
        std::vector<int64_t> ii;
        naive_max(std::vector<double>(xv.begin() + pl * h * w, xv.begin() + (pl + 1) * h * w), h, w, p, yy, ii);
        ey.insert(ey.end(), yy.begin(), yy.end());
        ei.insert(ei.end(), ii.begin(), ii.end());
      }
      EXPECT_LE(max_abs_diff(y.to_vector<double>(), ey), 0.0);
      EXPECT_EQ(idx.to_vector<int64_t>(), ei);
    }
}

TEST(MaxPool2d, TiesPickFirstAndNaNPropagates) {
  // Windows: all ones (first wins), a tie of 1s, all threes, and two NaNs (the last NaN wins,
  // as PyTorch's `v > max || isnan(v)` scan).
  Tensor x = tensor<float>({1, 1, 1, 0,    //
                            1, 1, 0, 1,    //
                            3, 3, NAN, 4,  //
                            3, 3, 4, NAN},
                           {1, 1, 4, 4});
  auto [y, idx] = max_pool2d_with_indices(x, 2);
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 8, 15}));
  const auto yv = y.to_vector<double>();
  EXPECT_EQ(yv[0], 1.0);
  EXPECT_EQ(yv[1], 1.0);
  EXPECT_EQ(yv[2], 3.0);
  EXPECT_TRUE(std::isnan(yv[3]));
  // The generic path (3×3 window, stride 1) follows the same rules.
  auto [y2, idx2] = max_pool2d_with_indices(x, 3, 1);
  EXPECT_EQ(idx2.to_vector<int64_t>(), (std::vector<int64_t>{10, 10, 10, 15}));
  // Backward sends each gradient to its argmax; tied windows add up at the shared position.
  Tensor xg = tensor<double>({1, 1, 1, 1}, {1, 1, 2, 2}).requires_grad_();
  max_pool2d(xg, 2, 1, 1).sum().backward();  // 3×3 output, every window's first max
  EXPECT_EQ(xg.grad().to_vector<double>(), (std::vector<double>{4, 2, 2, 1}));
}

// A dilated window can fall entirely in the padding (kernel 2, dilation 3, padding 1 on a
// 2×2 input: the taps are -1 and 2). Its output is -inf, its index lies outside the plane, and the
// backward sends its gradient nowhere (it used to write past the end of the plane's gradient).
TEST(MaxPool2d, WindowOnlyInPaddingGetsNoGradient) {
  Tensor x = tensor<double>({1, 2, 3, 4}, {1, 1, 2, 2}).requires_grad_();
  auto [y, idx] = max_pool2d_with_indices(x, 2, 2, 1, 3);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(y.item<double>(), -std::numeric_limits<double>::infinity());
  const int64_t i = idx.item<int64_t>();
  EXPECT_TRUE(i < 0 || i >= 4) << i;
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0, 0}));
}

// Wide rows (16 outputs per vector step plus a tail) with ties and NaNs: f32 (vector path on
// AVX-512 machines) against f64 (scalar path).
TEST(MaxPool2d, WideRowsMatchScalarPath) {
  manual_seed(15);
  Tensor x = randint(-3, 4, {2, 3, 6, 42}).to(kFloat32);  // small integers: many ties
  x.view({-1}).slice(0, 0, -1, 37).fill_(NAN);
  auto [y32, i32] = max_pool2d_with_indices(x, 2);
  auto [y64, i64] = max_pool2d_with_indices(x.to(kFloat64), 2);
  ASSERT_EQ(y32.shape(), (Shape{2, 3, 3, 21}));
  EXPECT_EQ(i32.to_vector<int64_t>(), i64.to_vector<int64_t>());
  const auto a = y32.to_vector<double>(), b = y64.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i]))
      EXPECT_TRUE(std::isnan(a[i])) << i;
    else
      EXPECT_EQ(a[i], b[i]) << i;
  }
}

TEST(MaxPool2d, Gradcheck) {
  manual_seed(9);
  for (const P& p : kMaxCfgs) {
    // Distinct values: finite differences are only valid away from ties.
    Tensor x = (randperm(2 * 2 * 7 * 9).to(kFloat64) * 0.01).reshape({2, 2, 7, 9}).requires_grad_();
    auto r = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return max_pool2d(t[0], {p.kh, p.kw}, IntPair{p.sh, p.sw}, {p.ph, p.pw}, {p.dh, p.dw}, p.ceil);
        },
        {x}, {.eps = 1e-4});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

TEST(AvgPool2d, MatchesNaive) {
  manual_seed(6);
  const std::vector<P> cfgs = {
      {2, 2, 2, 2, 0, 0, 1, 1, false},
      {3, 3, 2, 2, 1, 1, 1, 1, false},
      {3, 2, 2, 1, 1, 1, 1, 1, true},
      {3, 3, 3, 3, 1, 0, 1, 1, true},
  };
  for (const P& p : cfgs)
    for (bool include_pad : {true, false})
      for (DType dt : {kFloat64, kFloat32}) {
        const int64_t h = 7, w = 8;
        Tensor x = randn({2, 2, h, w}).to(dt);
        Tensor y = avg_pool2d(x, {p.kh, p.kw}, IntPair{p.sh, p.sw}, {p.ph, p.pw}, p.ceil, include_pad);
        const int64_t oh = out_size(h, p.kh, p.sh, p.ph, 1, p.ceil), ow = out_size(w, p.kw, p.sw, p.pw, 1, p.ceil);
        ASSERT_EQ(y.shape(), (Shape{2, 2, oh, ow}));
        const auto xv = x.to_vector<double>();
        std::vector<double> expect;
        for (int64_t pl = 0; pl < 4; ++pl)
          for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
              double s = 0;
              int64_t in_count = 0, pad_count = 0;
              for (int64_t i = 0; i < p.kh; ++i)
                for (int64_t j = 0; j < p.kw; ++j) {
                  const int64_t iy = oy * p.sh - p.ph + i, ix = ox * p.sw - p.pw + j;
                  const bool in_padded = iy < h + p.ph && ix < w + p.pw;  // the right/bottom pad ends the window
                  if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                    s += xv[(pl * h + iy) * w + ix];
                    ++in_count;
                  }
                  if (in_padded) ++pad_count;
                }
              expect.push_back(s / static_cast<double>(include_pad ? pad_count : in_count));
            }
        EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), dt == kFloat64 ? 1e-12 : 1e-5)
            << "k" << p.kh << "x" << p.kw << " include_pad " << include_pad;
      }
}

TEST(AvgPool2d, Gradcheck) {
  manual_seed(10);
  Tensor x = randn({2, 2, 7, 6}, {.dtype = kFloat64}).requires_grad_();
  for (bool include_pad : {true, false}) {
    auto r = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return avg_pool2d(t[0], 3, IntPair{2, 1}, 1, true, include_pad);
        },
        {x});
    EXPECT_TRUE(r.ok) << r.message;
  }
  auto r = gradcheck([](const std::vector<Tensor>& t) { return avg_pool2d(t[0], 2); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(AdaptiveAvgPool2d, MatchesNaiveAndGradcheck) {
  manual_seed(12);
  const int64_t h = 7, w = 5;
  Tensor x = randn({2, 3, h, w}, {.dtype = kFloat64});
  for (IntPair os : {IntPair{3, 2}, IntPair{1, 1}, IntPair{7, 5}, IntPair{4, 7}}) {
    Tensor y = adaptive_avg_pool2d(x, os);
    ASSERT_EQ(y.shape(), (Shape{2, 3, os.h, os.w}));
    const auto xv = x.to_vector<double>();
    std::vector<double> expect;
    for (int64_t pl = 0; pl < 6; ++pl)
      for (int64_t oy = 0; oy < os.h; ++oy)
        for (int64_t ox = 0; ox < os.w; ++ox) {
          const int64_t hs = static_cast<int64_t>(std::floor(static_cast<double>(oy * h) / os.h));
          const int64_t he = static_cast<int64_t>(std::ceil(static_cast<double>((oy + 1) * h) / os.h));
          const int64_t ws = static_cast<int64_t>(std::floor(static_cast<double>(ox * w) / os.w));
          const int64_t we = static_cast<int64_t>(std::ceil(static_cast<double>((ox + 1) * w) / os.w));
          double s = 0;
          for (int64_t iy = hs; iy < he; ++iy)
            for (int64_t ix = ws; ix < we; ++ix) s += xv[(pl * h + iy) * w + ix];
          expect.push_back(s / static_cast<double>((he - hs) * (we - ws)));
        }
    EXPECT_LE(max_abs_diff(y.to_vector<double>(), expect), 1e-12);
    Tensor xg = x.detach().requires_grad_();
    auto r = gradcheck([&](const std::vector<Tensor>& t) { return adaptive_avg_pool2d(t[0], os); }, {xg});
    EXPECT_TRUE(r.ok) << r.message;
  }
  // (1, 1) is the global mean.
  EXPECT_NEAR(adaptive_avg_pool2d(x, 1).sum().item<double>(), x.mean({2, 3}).sum().item<double>(), 1e-12);
}

TEST(Pooling, UnbatchedInput) {
  manual_seed(13);
  Tensor x = randn({3, 6, 6});
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{3, 3, 3}));
  EXPECT_EQ(avg_pool2d(x, 3).shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(adaptive_avg_pool2d(x, {2, 3}).shape(), (Shape{3, 2, 3}));
  EXPECT_LE(max_abs_diff(max_pool2d(x, 2).to_vector<double>(), max_pool2d(x.unsqueeze(0), 2).to_vector<double>()), 0.0);
}

TEST(Pooling, Errors) {
  Tensor x = zeros({1, 1, 4, 4});
  EXPECT_THROW(max_pool2d(zeros({4, 4}), 2), ShapeError);
  EXPECT_THROW(max_pool2d(zeros({1, 1, 1, 4, 4}), 2), ShapeError);
  EXPECT_THROW(max_pool2d(x, 0), ValueError);
  EXPECT_THROW(max_pool2d(x, 2, IntPair{0}), ValueError);
  EXPECT_THROW(max_pool2d(x, 2, std::nullopt, 2), ValueError);  // padding > kernel / 2
  EXPECT_THROW(max_pool2d(x, 2, std::nullopt, -1), ValueError);
  EXPECT_THROW(max_pool2d(x, 2, std::nullopt, 0, 0), ValueError);  // dilation
  EXPECT_THROW(max_pool2d(x, 5), ShapeError);                      // output would be empty
  EXPECT_THROW(max_pool2d(zeros({1, 1, 4, 4}, {.dtype = kInt64}), 2), DTypeError);
  EXPECT_THROW(avg_pool2d(x, 5), ShapeError);
  EXPECT_THROW(avg_pool2d(x, 2, std::nullopt, 3), ValueError);
  EXPECT_THROW(avg_pool2d(zeros({4}), 2), ShapeError);
  EXPECT_THROW(adaptive_avg_pool2d(x, {0, 1}), ValueError);
  EXPECT_THROW(adaptive_avg_pool2d(zeros({1, 1, 0, 4}), 1), ShapeError);
  EXPECT_THROW(adaptive_avg_pool2d(Tensor(), 1), ValueError);
}

TEST(PoolingModules, ForwardAndRepr) {
  manual_seed(14);
  Tensor x = randn({2, 4, 8, 8});
  nn::MaxPool2d mp(2);
  EXPECT_EQ(mp.forward(x).shape(), (Shape{2, 4, 4, 4}));
  EXPECT_EQ(mp.extra_repr(), "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False");
  EXPECT_TRUE(mp.named_parameters().empty());
  nn::MaxPool2d mp3(3, {.stride = 1, .padding = 1});
  EXPECT_EQ(mp3.forward(x).shape(), (Shape{2, 4, 8, 8}));
  nn::AvgPool2d ap({2, 4});
  EXPECT_EQ(ap.forward(x).shape(), (Shape{2, 4, 4, 2}));
  EXPECT_EQ(ap.extra_repr(), "kernel_size=(2, 4), stride=(2, 4), padding=0");
  nn::AdaptiveAvgPool2d aap({1, 1});
  EXPECT_EQ(aap.forward(x).shape(), (Shape{2, 4, 1, 1}));
  EXPECT_EQ(aap.extra_repr(), "output_size=1");
  EXPECT_THROW(nn::MaxPool2d(0), ValueError);
  EXPECT_THROW(nn::AvgPool2d({2, 0}), ValueError);
  EXPECT_THROW(nn::AdaptiveAvgPool2d(0), ValueError);
}
