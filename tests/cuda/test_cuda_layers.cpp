// The CNN's layers on CUDA against the CPU backend (the truth): max / average / adaptive
// average pooling (forward, indices, gradients), batch norm (training and evaluation, running
// statistics, gradients of input, weight and bias) and dropout, whose mask must equal the CPU's
// bit for bit for the same seed and generator offset. All skip without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "cuda_diff.hpp"

using namespace ember;
using namespace ember::cuda_test;
using Inputs = std::vector<Tensor>;

namespace {

Tol scaled(Tol t, double k) { return {t.atol * k, t.rtol * k}; }

/// The bytes of two tensors (same dtype and shape; b may live on the device) are equal.
::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return ::testing::AssertionFailure() << "dtype/shape differ: " << dtype_name(got.dtype()) << " "
                                         << shape_str(got.shape()) << " vs " << dtype_name(want.dtype()) << " "
                                         << shape_str(want.shape());
  const Tensor g = got.cpu().contiguous(), w = want.cpu().contiguous();
  const auto* gp = static_cast<const unsigned char*>(g.data_ptr());
  const auto* wp = static_cast<const unsigned char*>(w.data_ptr());
  const size_t es = g.element_size();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < g.numel(); ++i)
    if (std::memcmp(gp + i * es, wp + i * es, es) != 0) {
      if (first < 0) first = i;
      ++bad;
    }
  if (bad > 0)
    return ::testing::AssertionFailure() << bad << " of " << g.numel() << " elements differ, first " << first;
  return ::testing::AssertionSuccess();
}

struct PoolCase {
  Shape shape;
  IntPair k, s, p, d;
  bool ceil;
};

// Odd sizes, overlapping windows (stride < kernel), padding, dilation, ceil_mode, 3-d inputs.
const std::vector<PoolCase> kPoolCases = {
    {{3, 5, 13, 11}, 2, 2, 0, 1, false},                     // the CNN's 2×2 / 2 (odd sizes drop the edge)
    {{2, 3, 13, 11}, 3, 2, 1, 1, true},                      // overlap, padding, ceil_mode
    {{2, 3, 12, 9}, {3, 2}, {1, 2}, {1, 0}, {2, 1}, false},  // dilation, rectangular
    {{4, 9, 7}, {2, 3}, {3, 1}, {1, 1}, 1, true},            // unbatched, ceil_mode with a ragged end
    {{1, 1, 1, 1}, 1, 1, 0, 1, false},
};

}  // namespace

TEST(CudaLayers, MaxPool2dForwardIndicesAndGradients) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 1;
  for (DType dt : kFloatTypes) {
    for (const PoolCase& c : kPoolCases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.shape));
      Tensor x = random_tensor(c.shape, dt, seed++);
      const auto [yc, ic] = max_pool2d_with_indices(x, c.k, c.s, c.p, c.d, c.ceil);
      Tensor xg = x.to(kDev).requires_grad_(true);
      const auto [yg, ig] = max_pool2d_with_indices(xg, c.k, c.s, c.p, c.d, c.ceil);
      ASSERT_TRUE(ig.is_cuda());
      EXPECT_TRUE(same_bits(ig, ic)) << "indices";
      EXPECT_TRUE(same_bits(yg, yc)) << "a max is an element of the input: exact";
      // Gradient against the CPU computed in the accumulation type from the same values and
      // rounded once, which is what the device does (the CPU's 16-bit scatter rounds after
      // every addition, so overlapping windows could differ from it by a few ulps).
      const DType acc = dt == kFloat64 ? kFloat64 : kFloat32;
      Tensor w = random_tensor(yc.shape(), dt, seed++);
      Tensor xr = x.to(acc).requires_grad_(true);
      (max_pool2d(xr, c.k, c.s, c.p, c.d, c.ceil) * w.to(acc)).sum().backward();
      (yg * w.to(kDev)).sum().backward();
      ASSERT_TRUE(xg.grad().defined());
      EXPECT_TRUE(close_to(xg.grad(), xr.grad().to(dt), tol_for(dt))) << "gradient";
      // And through the public path against the CPU op in dt itself (looser for 16-bit types).
      expect_same_on_cuda([&](const Inputs& v) { return max_pool2d(v[0], c.k, c.s, c.p, c.d, c.ceil); }, {x},
                          scaled(tol_for(dt), dt == kFloat16 || dt == kBFloat16 ? 16 : 4));
    }
  }
}

TEST(CudaLayers, MaxPool2dNaNTiesAndViews) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Ties (first maximum wins), NaN (wins, the last one), -inf windows.
  std::vector<float> v(2 * 7 * 9);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 3);
  v[4] = NAN;
  v[5] = NAN;
  v[30] = NAN;
  for (int i = 63; i < 72; ++i) v[i] = -INFINITY;
  Tensor x = tensor<float>(v, {2, 7, 9});
  for (const PoolCase& c : kPoolCases) {
    if (c.shape.size() != 3) continue;
    const auto [yc, ic] = max_pool2d_with_indices(x, c.k, c.s, c.p, c.d, c.ceil);
    const auto [yg, ig] = max_pool2d_with_indices(x.to(kDev), c.k, c.s, c.p, c.d, c.ceil);
    EXPECT_TRUE(same_bits(ig, ic));
    EXPECT_TRUE(close_to(yg, yc, {0, 0}));
  }
  for (const PoolCase& c : kPoolCases) {
    const auto [yc, ic] = max_pool2d_with_indices(x.reshape({1, 2, 7, 9}), c.k, c.s, c.p, c.d, c.ceil);
    const auto [yg, ig] = max_pool2d_with_indices(x.to(kDev).reshape({1, 2, 7, 9}), c.k, c.s, c.p, c.d, c.ceil);
    EXPECT_TRUE(same_bits(ig, ic));
    EXPECT_TRUE(close_to(yg, yc, {0, 0}));
  }
  // A non-contiguous input (transposed spatial dims) goes through .contiguous() at the op edge.
  Tensor xt = random_tensor({2, 3, 11, 13}, kFloat32, 77).transpose(2, 3);
  expect_same_on_cuda([](const Inputs& in) { return max_pool2d(in[0], 3, 2, 1); }, {xt}, tol_for(kFloat32));
}

TEST(CudaLayers, AvgPool2dMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 100;
  for (DType dt : kFloatTypes) {
    for (const PoolCase& c : kPoolCases) {
      for (bool include_pad : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.shape) + (include_pad ? " include" : " exclude"));
        Tensor x = random_tensor(c.shape, dt, seed++);
        expect_same_on_cuda([&](const Inputs& v) { return avg_pool2d(v[0], c.k, c.s, c.p, c.ceil, include_pad); }, {x},
                            scaled(tol_for(dt), 4));
      }
    }
  }
  Tensor xt = random_tensor({2, 3, 11, 13}, kFloat32, 78).transpose(2, 3);
  expect_same_on_cuda([](const Inputs& in) { return avg_pool2d(in[0], 3, 1, 1, true, false); }, {xt},
                      tol_for(kFloat32));
}

TEST(CudaLayers, AdaptiveAvgPool2dMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 200;
  const std::vector<std::pair<Shape, IntPair>> cases = {
      {{3, 5, 13, 11}, {3, 4}}, {{3, 5, 13, 11}, {1, 1}},   {{2, 3, 7, 6}, {20, 15}},  // upsampling: overlap
      {{4, 9, 7}, {5, 5}},      {{2, 3, 13, 11}, {13, 11}},
  };
  for (DType dt : kFloatTypes) {
    for (const auto& [shape, out] : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(shape));
      Tensor x = random_tensor(shape, dt, seed++);
      const IntPair o = out;
      expect_same_on_cuda([o](const Inputs& v) { return adaptive_avg_pool2d(v[0], o); }, {x}, scaled(tol_for(dt), 4));
    }
  }
}

TEST(CudaLayers, BatchNormTrainingForwardGradientsAndRunningStats) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 300;
  const std::vector<Shape> shapes = {{5, 3, 7, 9}, {33, 4}, {3, 2, 17}, {2, 1, 1, 3}};
  for (DType dt : kFloatTypes) {
    for (const Shape& shape : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(shape));
      const int64_t c = shape[1];
      // bf16/f16 inputs are normalised by statistics of rounded values: looser gradients.
      const Tol tol = scaled(tol_for(dt), dt == kFloat16 || dt == kBFloat16 ? 10 : 20);
      Tensor x = random_tensor(shape, dt, seed++, -3.0, 5.0);
      Tensor w = random_tensor({c}, dt, seed++, 0.5, 1.5), b = random_tensor({c}, dt, seed++);
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], /*training=*/true, 0.1, 1e-5);
          },
          {x, w, b}, tol);
      expect_same_on_cuda(
          [&](const Inputs& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {x}, tol);
      // Running statistics (f32 buffers for every input dtype, as the layers keep them).
      Tensor rm_c = random_tensor({c}, kFloat32, seed++), rv_c = random_tensor({c}, kFloat32, seed++, 0.5, 2.0);
      Tensor rm_g = rm_c.to(kDev), rv_g = rv_c.to(kDev);
      for (int step = 0; step < 3; ++step) {
        Tensor xs = random_tensor(shape, dt, seed++, -3.0, 5.0);
        batch_norm(xs, rm_c, rv_c, w, b, true, 0.3, 1e-5);
        batch_norm(xs.to(kDev), rm_g, rv_g, w.to(kDev), b.to(kDev), true, 0.3, 1e-5);
      }
      const Tol stat_tol = scaled(tol_for(kFloat32), 10);
      EXPECT_TRUE(close_to(rm_g, rm_c, stat_tol)) << "running_mean";
      EXPECT_TRUE(close_to(rv_g, rv_c, stat_tol)) << "running_var";
    }
  }
}

TEST(CudaLayers, BatchNormLargeMeanIsStable) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // |mean| >> std: a one-pass E[x²] − E[x]² in f32 would lose every digit of the variance.
  Tensor x = random_tensor({64, 3, 15, 15}, kFloat32, 400, -1.0, 1.0) + 1000.0;
  expect_same_on_cuda([](const Inputs& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                      {x}, {2e-3, 2e-3});
  Tensor rm = zeros({3}, {.device = kDev}), rv = ones({3}, {.device = kDev});
  batch_norm(x.to(kDev), rm, rv, Tensor(), Tensor(), true, 1.0, 1e-5);
  Tensor rm_c = zeros({3}), rv_c = ones({3});
  batch_norm(x, rm_c, rv_c, Tensor(), Tensor(), true, 1.0, 1e-5);
  EXPECT_TRUE(close_to(rv, rv_c, {1e-4, 1e-3}));
  EXPECT_TRUE(close_to(rm, rm_c, {1e-4, 1e-6}));
}

// Geometries for the split reductions (each channel's n·s elements cut into chunks reduced by
// several blocks, partials combined in order) and the vectorised passes: the Fashion-MNIST CNN's
// layers (few channels, N·H·W of 10⁵), s not a multiple of the vector width (scalar path) or of
// the 16-byte width but of the 8-byte one (the half-width path of f32/f16/bf16), s = 1 with
// many rows (BatchNorm1d), chunk boundaries inside rows. Forward, gradients of input, weight and
// bias, running statistics, against the CPU.
TEST(CudaLayers, BatchNormSplitReductionGeometriesMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  struct Case {
    DType dt;
    Shape shape;
  };
  const std::vector<Case> cases = {
      {kFloat32, {128, 32, 28, 28}},  // the CNN's first block: 25 chunks per channel, 16-byte vectors
      {kFloat32, {128, 64, 14, 14}},  // the second block
      {kFloat32, {64, 3, 15, 15}},    // s = 225: scalar
      {kFloat32, {3000, 2, 3, 2}},    // s = 6: 8-byte vectors, 5 chunks of 600 rows
      {kFloat32, {2, 3, 100, 100}},   // chunks of 4000 inside rows of 10⁴
      {kFloat32, {70001, 3}},         // s = 1, BatchNorm1d with many rows
      {kFloat64, {50, 5, 14, 14}},    // f64: 16-byte vectors of 2
      {kFloat64, {33, 4, 7, 9}},      // s = 63: scalar
      {kFloat16, {40, 6, 14, 14}},    // s = 196: 8-byte vectors of 4
      {kFloat16, {37, 3, 8, 8}},      // s = 64: 16-byte vectors of 8
      {kBFloat16, {60, 2, 5, 5}},     // s = 25: scalar
      {kBFloat16, {20, 3, 12, 20}},   // s = 240: 16-byte vectors
  };
  uint32_t seed = 900;
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(dtype_name(k.dt)) + " " + shape_str(k.shape));
    const int64_t c = k.shape[1];
    const bool half = k.dt == kFloat16 || k.dt == kBFloat16;
    const Tol tol = scaled(tol_for(k.dt), half ? 10 : 20);
    Tensor x = random_tensor(k.shape, k.dt, seed++, -3.0, 5.0);
    Tensor w = random_tensor({c}, k.dt, seed++, 0.5, 1.5), b = random_tensor({c}, k.dt, seed++);
    expect_same_on_cuda(
        [&](const Inputs& v) { return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], /*training=*/true, 0.1, 1e-5); },
        {x, w, b}, tol);
    Tensor rm_c = zeros({c}), rv_c = ones({c});
    Tensor rm_g = rm_c.to(kDev), rv_g = rv_c.to(kDev);
    batch_norm(x, rm_c, rv_c, w, b, true, 0.5, 1e-5);
    batch_norm(x.to(kDev), rm_g, rv_g, w.to(kDev), b.to(kDev), true, 0.5, 1e-5);
    const Tol stat_tol = scaled(tol_for(kFloat32), 10);
    EXPECT_TRUE(close_to(rm_g, rm_c, stat_tol)) << "running_mean";
    EXPECT_TRUE(close_to(rv_g, rv_c, stat_tol)) << "running_var";
  }
  // |mean| >> std over a CNN-sized channel: the second pass about the mean, in chunks.
  Tensor big = random_tensor({128, 2, 28, 28}, kFloat32, seed++, -1.0, 1.0) + 500.0;
  Tensor rm = zeros({2}, {.device = kDev}), rv = ones({2}, {.device = kDev});
  Tensor rm_c = zeros({2}), rv_c = ones({2});
  batch_norm(big.to(kDev), rm, rv, Tensor(), Tensor(), true, 1.0, 1e-5);
  batch_norm(big, rm_c, rv_c, Tensor(), Tensor(), true, 1.0, 1e-5);
  EXPECT_TRUE(close_to(rv, rv_c, {1e-5, 1e-4}));
  EXPECT_TRUE(close_to(rm, rm_c, {1e-5, 1e-6}));
}

// Inputs and output gradients at storage offsets (a batch slice of an odd-sized batch; views 8
// bytes and one element into a flat buffer) reach the kernels as they are: the 16-byte vector
// path must fall back to 8-byte vectors or single elements, in training and evaluation.
TEST(CudaLayers, BatchNormOnOffsetViewsMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 950;
  const int64_t c = 3, numel = 8 * c * 5 * 8;  // s = 40: a multiple of every vector width
  const Shape shape = {8, c, 5, 8};
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = scaled(tol_for(dt), dt == kFloat16 || dt == kBFloat16 ? 10 : 20);
    Tensor w = random_tensor({c}, dt, seed++, 0.5, 1.5), b = random_tensor({c}, dt, seed++);
    Tensor rm = random_tensor({c}, kFloat32, seed++), rv = random_tensor({c}, kFloat32, seed++, 0.5, 2.0);
    Tensor batch = random_tensor({9, c, 5, 8}, dt, seed++, -2.0, 3.0);  // its last 8 samples
    Tensor flat = random_tensor({numel + 8}, dt, seed++, -2.0, 3.0);
    const int64_t half_vector = std::max<int64_t>(1, 8 / static_cast<int64_t>(itemsize(dt)));
    for (bool training : {true, false}) {
      SCOPED_TRACE(training ? "training" : "evaluation");
      auto fn = [&](const Inputs& v) {
        if (training) return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], true, 0.1, 1e-5);
        return batch_norm(v[0], v[3].detach(), v[4].detach(), v[1], v[2], false, 0.1, 1e-5);
      };
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return fn({v[0].narrow(0, 1, 8), v[1], v[2], v[3], v[4]});
          },
          {batch, w, b, rm, rv}, tol);
      std::vector<int64_t> offsets = {1};
      if (half_vector > 1) offsets.insert(offsets.begin(), half_vector);  // f64: 8 bytes is one element
      for (int64_t offset : offsets) {
        SCOPED_TRACE("offset " + std::to_string(offset));
        expect_same_on_cuda(
            [&](const Inputs& v) {
              return fn({v[0].narrow(0, offset, numel).view(shape), v[1], v[2], v[3], v[4]});
            },
            {flat, w, b, rm, rv}, tol);
        // The output gradient at the offset too (the node takes a contiguous one as it comes).
        Tensor xc = batch.narrow(0, 1, 8).detach().requires_grad_(true);
        Tensor xg = to_cuda_same_layout(batch).narrow(0, 1, 8).detach().requires_grad_(true);
        Tensor gc = flat.narrow(0, offset, numel).view(shape);
        Tensor gg = to_cuda_same_layout(flat).narrow(0, offset, numel).view(shape);
        ASSERT_EQ(gg.storage_offset(), offset);
        fn({xc, w, b, rm, rv}).backward(gc);
        fn({xg, w.to(kDev), b.to(kDev), rm.to(kDev), rv.to(kDev)}).backward(gg);
        ASSERT_TRUE(xg.grad().defined());
        EXPECT_TRUE(close_to(xg.grad(), xc.grad(), tol)) << "input gradient from an offset output gradient";
      }
    }
  }
}

TEST(CudaLayers, BatchNormEvalMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 500;
  for (DType dt : kFloatTypes) {
    for (const Shape& shape : {Shape{5, 3, 7, 9}, Shape{33, 4}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(shape));
      const int64_t c = shape[1];
      const Tol tol = scaled(tol_for(dt), 4);
      Tensor x = random_tensor(shape, dt, seed++);
      Tensor w = random_tensor({c}, dt, seed++, 0.5, 1.5), b = random_tensor({c}, dt, seed++);
      // Running statistics in another dtype than the input (allowed, as on the CPU).
      Tensor rm = random_tensor({c}, kFloat64, seed++), rv = random_tensor({c}, kFloat64, seed++, 0.5, 2.0);
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return batch_norm(v[0], v[3].detach(), v[4].detach(), v[1], v[2], /*training=*/false, 0.1, 1e-3);
          },
          {x, w, b, rm, rv}, tol);
      // Evaluation leaves the running statistics alone.
      Tensor rm_g = rm.to(kDev), rv_g = rv.to(kDev);
      batch_norm(x.to(kDev), rm_g, rv_g, w.to(kDev), b.to(kDev), false);
      EXPECT_TRUE(same_bits(rm_g, rm));
      EXPECT_TRUE(same_bits(rv_g, rv));
    }
  }
}

TEST(CudaLayers, BatchNorm2dLayerTrainsLikeCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  nn::BatchNorm2d cpu_bn(4), gpu_bn(4);
  gpu_bn.to(kDev);
  for (int step = 0; step < 3; ++step) {
    Tensor x = random_tensor({6, 4, 5, 7}, kFloat32, 600 + step, -1.0, 3.0);
    Tensor yc = cpu_bn.forward(x), yg = gpu_bn.forward(x.to(kDev));
    EXPECT_TRUE(close_to(yg, yc, scaled(tol_for(kFloat32), 10)));
  }
  const auto sc = cpu_bn.state_dict(), sg = gpu_bn.state_dict();
  for (const auto& [name, t] : sc) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(sg.count(name));
    if (is_floating(t.dtype()))
      EXPECT_TRUE(close_to(sg.at(name), t, scaled(tol_for(kFloat32), 10)));
    else
      EXPECT_TRUE(same_bits(sg.at(name), t));  // num_batches_tracked
  }
  cpu_bn.eval();
  gpu_bn.eval();
  Tensor x = random_tensor({2, 4, 3, 3}, kFloat32, 700);
  EXPECT_TRUE(close_to(gpu_bn.forward(x.to(kDev)), cpu_bn.forward(x), scaled(tol_for(kFloat32), 10)));
}

TEST(CudaLayers, BatchNormDeviceMismatchIsAnError) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = ones({4, 3}, {.device = kDev});
  expect_error<DeviceError>([&] { batch_norm(x, zeros({3}), ones({3}), Tensor(), Tensor(), true); },
                            "expected running_mean on cuda:0 like the input, got a tensor on cpu");
  expect_error<DeviceError>([&] { batch_norm(x, Tensor(), Tensor(), ones({3}), Tensor(), true); },
                            "expected weight on cuda:0");
  expect_error<DeviceError>(
      [&] {
        batch_norm(ones({4, 3}), Tensor(), Tensor(), Tensor(), ones({3}, {.device = kDev}), true);
      },
      "expected bias on cpu like the input, got a tensor on cuda:0");
}

TEST(CudaLayers, CrossEntropyLabelSmoothingKeepsTheDigitsOfLargeLogits) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Logits offset by 1e4 (softmax does not care). The smoothing term Σ_j (lse − x_j) ≈ 7500 is
  // a sum of small non-negative terms on the CPU; as lse·C − Σ_j x_j in f32 it would come from
  // two numbers near 1e7 whose rounding (ulp 1) costs ~0.1-0.5 of it. Per row, the loss with
  // label_smoothing 1 minus the loss without is Σ_j (lse − x_j)/C − (lse − x_t) = x_t − mean(x),
  // free of lse's own rounding (the same lse in both calls): its reference is exact in double.
  const int64_t m = 16, c = 1000;
  Tensor x = random_tensor({m, c}, kFloat32, 950) + 1e4;
  std::vector<int64_t> t(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) t[static_cast<size_t>(i)] = (i * 131) % c;
  const Tensor xg = x.to(kDev), tg = tensor<int64_t>(t, {m}).to(kDev);
  const Tensor d = cross_entropy_2d(xg, tg, Tensor(), -100, 1.0, LossReduction::none) -
                   cross_entropy_2d(xg, tg, Tensor(), -100, 0.0, LossReduction::none);
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> ref(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    double mean = 0;
    for (int64_t j = 0; j < c; ++j) mean += xv[static_cast<size_t>(i * c + j)];
    ref[static_cast<size_t>(i)] = xv[static_cast<size_t>(i * c + t[static_cast<size_t>(i)])] - mean / c;
  }
  EXPECT_TRUE(close_to(d.to(kFloat64), tensor<double>(ref, {m}), {2e-5, 0}));
}

TEST(CudaLayers, DropoutMaskEqualsCpuBitForBit) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 800;
  for (DType dt : kFloatTypes) {
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{1001}, int64_t{65539}}) {
      for (double p : {0.1, 0.5, 0.9}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " n " + std::to_string(n) + " p " + std::to_string(p));
        Tensor x = random_tensor({n}, dt, seed++);
        Tensor xc = x.detach().requires_grad_(true), xg = x.to(kDev).requires_grad_(true);
        manual_seed(1234 + n);
        default_generator().reserve(7);  // a non-zero offset
        Tensor yc = dropout(xc, p);
        const GeneratorState after_cpu = default_generator().state();
        manual_seed(1234 + n);
        default_generator().reserve(7);
        Tensor yg = dropout(xg, p);
        ASSERT_TRUE(yg.is_cuda());
        EXPECT_EQ(default_generator().state(), after_cpu) << "the CUDA draw reserves the same counters";
        EXPECT_TRUE(same_bits(yg, yc)) << "output";
        // The gradient is the mask itself: equal bits again.
        Tensor gy = ones({n}, {.dtype = dt});
        yc.backward(gy);
        yg.backward(gy.to(kDev));
        EXPECT_TRUE(same_bits(xg.grad(), xc.grad())) << "mask";
      }
    }
  }
}

TEST(CudaLayers, DropoutWithGeneratorViewsAndEdgeCases) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Generator gc(99), gg(99);
  Tensor x = random_tensor({37, 29}, kFloat32, 900).t();  // non-contiguous: dropped in row-major order of x
  for (int k = 0; k < 3; ++k) {
    Tensor yc = dropout(x, 0.3, true, &gc), yg = dropout(x.to(kDev), 0.3, true, &gg);
    EXPECT_TRUE(same_bits(yg, yc)) << "draw " << k;
  }
  EXPECT_EQ(gg.state(), gc.state());
  // p == 1 gives zeros and draws nothing; p == 0 and eval mode return the input.
  const GeneratorState before = gg.state();
  Tensor z = dropout(x.to(kDev), 1.0, true, &gg);
  EXPECT_TRUE(same_bits(z, zeros({29, 37})));
  EXPECT_EQ(gg.state(), before);
  Tensor xg = x.to(kDev);
  EXPECT_TRUE(same_bits(dropout(xg, 0.0, true, &gg), x));
  EXPECT_TRUE(same_bits(dropout(xg, 0.5, false, &gg), x));
  EXPECT_EQ(dropout(zeros({0, 3}, {.device = kDev}), 0.5, true, &gg).numel(), 0);
  // The kept fraction is near 1 − p (the stream is not degenerate on the device).
  Tensor big = dropout(ones({1 << 20}, {.device = kDev}), 0.25, true, &gg);
  const double kept = ne(big, 0.0).to(kFloat64).sum().item<double>() / static_cast<double>(1 << 20);
  EXPECT_NEAR(kept, 0.75, 0.005);
}
