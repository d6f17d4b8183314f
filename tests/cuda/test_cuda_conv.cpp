// conv2d on CUDA (cuDNN 9 graph API) against the CPU computed in float64 from the same values
// (the truth): forward, input, weight and bias gradients on odd shapes with stride, padding,
// dilation and groups, for f32 (TF32 off: an f32 result must be f32-accurate), f64, f16 and
// bf16 (looser: one rounding of the result); the plan cache (a repeated shape hits, a new one
// misses); errors for bad shapes, devices and dtypes. The EMBER_CUDNN_CHECK tests run anywhere;
// everything else skips without a CUDA device.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/check.hpp"
#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

// Skips without a device; fails (not skips) when there is a device but cuDNN cannot be loaded.
#define REQUIRE_CUDNN()                                                         \
  EMBER_REQUIRE_CUDA_DEVICE();                                                  \
  do {                                                                          \
    std::string why_;                                                           \
    ASSERT_TRUE(cuda_backend::cudnn_available(&why_)) << "cuDNN: " << why_;     \
  } while (0)

/// Tolerance against the float64 truth. f32 sums of a few hundred products in [-1, 1] stay
/// within 1e-4; TF32 (10-bit mantissa inputs) would not. 16-bit results are rounded once (f16:
/// 2^-11 relative, bf16: 2^-8), and the bias add rounds once more.
Tol truth_tol(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-10, 1e-10};
    case DType::f32: return {1e-4, 1e-4};
    case DType::f16: return {5e-3, 2e-3};
    case DType::bf16: return {3e-2, 1e-2};
    default: return {0, 0};
  }
}

struct ConvCase {
  Shape x;  // (N, C, H, W) or (C, H, W)
  int64_t o;
  IntPair k, s, p, d;
  int64_t groups;
  bool bias;
};

std::string case_str(const ConvCase& c) {
  return shape_str(c.x) + " o=" + std::to_string(c.o) + " k=(" + std::to_string(c.k.h) + "," +
         std::to_string(c.k.w) + ") s=(" + std::to_string(c.s.h) + "," + std::to_string(c.s.w) + ") p=(" +
         std::to_string(c.p.h) + "," + std::to_string(c.p.w) + ") d=(" + std::to_string(c.d.h) + "," +
         std::to_string(c.d.w) + ") g=" + std::to_string(c.groups);
}

// Odd sizes; rectangular kernels, strides, paddings and dilations; groups (and depthwise with a
// channel multiplier); a kernel as large as the input; 1x1 with stride; an unbatched input.
const std::vector<ConvCase> kCases = {
    {{2, 3, 7, 9}, 5, 3, 1, 1, 1, 1, true},
    {{3, 4, 11, 8}, 6, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 2, true},
    {{1, 6, 9, 9}, 6, 3, 2, 2, 2, 3, false},
    {{2, 1, 5, 5}, 1, 5, 1, 0, 1, 1, true},
    {{2, 4, 6, 7}, 8, 3, 1, 1, 1, 4, true},
    {{3, 5, 8, 6}, 7, 1, 2, 0, 1, 1, true},
    {{2, 7, 6}, 3, {1, 3}, {1, 2}, {0, 1}, 1, 1, true},
};

/// Runs conv2d on the device in dtype dt and on the CPU in float64 from the same (rounded)
/// values; compares the output and the gradients of sum(y * r) for a fixed random r.
void check_against_truth(const ConvCase& c, DType dt, uint32_t seed, Tol tol, bool transpose_input = false) {
  const int64_t ch = c.x[c.x.size() - 3];
  // With transpose_input, c.x is the stored shape and the convolution sees its transposed
  // (non-contiguous) view.
  Tensor x = random_tensor(c.x, dt, seed, -1.0, 1.0);
  Tensor w = random_tensor({c.o, ch / c.groups, c.k.h, c.k.w}, dt, seed + 1, -1.0, 1.0);
  Tensor b = c.bias ? random_tensor({c.o}, dt, seed + 2, -1.0, 1.0) : Tensor();

  Tensor xg = x.to(kDev).requires_grad_(true);
  Tensor wg = w.to(kDev).requires_grad_(true);
  Tensor bg = c.bias ? b.to(kDev).requires_grad_(true) : Tensor();
  Tensor yg = conv2d(transpose_input ? xg.transpose(-2, -1) : xg, wg, bg, c.s, c.p, c.d, c.groups);

  Tensor xr = x.to(kFloat64).requires_grad_(true);
  Tensor wr = w.to(kFloat64).requires_grad_(true);
  Tensor br = c.bias ? b.to(kFloat64).requires_grad_(true) : Tensor();
  Tensor yr = conv2d(transpose_input ? xr.transpose(-2, -1) : xr, wr, br, c.s, c.p, c.d, c.groups);

  ASSERT_TRUE(yg.is_cuda());
  ASSERT_EQ(yg.dtype(), dt);
  EXPECT_TRUE(close_to(yg.to(kFloat64), yr, tol)) << "forward";

  Tensor r = random_tensor(yr.shape(), dt, seed + 3, -1.0, 1.0);
  (yg * r.to(kDev)).sum().backward();
  (yr * r.to(kFloat64)).sum().backward();
  ASSERT_TRUE(xg.grad().defined() && wg.grad().defined());
  EXPECT_EQ(xg.grad().dtype(), dt);
  EXPECT_TRUE(close_to(xg.grad().to(kFloat64), xr.grad(), tol)) << "input gradient";
  EXPECT_TRUE(close_to(wg.grad().to(kFloat64), wr.grad(), tol)) << "weight gradient";
  if (c.bias) {
    ASSERT_TRUE(bg.grad().defined());
    EXPECT_TRUE(close_to(bg.grad().to(kFloat64), br.grad(), tol)) << "bias gradient";
  }
}

struct Tf32Guard {
  bool before = cuda::allow_tf32();
  explicit Tf32Guard(bool allow) { cuda::set_allow_tf32(allow); }
  ~Tf32Guard() { cuda::set_allow_tf32(before); }
};

}  // namespace

// ---------------------------------------------------------------- the check macro (no device needed)

TEST(CudnnCheck, StatusNamesCallFileAndNumber) {
  try {
    EMBER_CUDNN_CHECK(3000);  // CUDNN_STATUS_NOT_SUPPORTED
    FAIL() << "EMBER_CUDNN_CHECK did not throw";
  } catch (const DeviceError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cuDNN error"), std::string::npos) << m;
    EXPECT_NE(m.find("3000"), std::string::npos) << m;
    EXPECT_NE(m.find("test_cuda_conv.cpp"), std::string::npos) << m;
  }
}

TEST(CudnnCheck, AllocationFailureIsOutOfMemory) {
  expect_error<OutOfMemory>([] { EMBER_CUDNN_CHECK(4004); }, "4004");  // _DEVICE_ALLOCATION_FAILED
}

TEST(CudnnCheck, SuccessDoesNotThrow) { EXPECT_NO_THROW(EMBER_CUDNN_CHECK(0)); }

TEST(CudnnCheck, AvailabilityGivesAReason) {
  std::string why;
  const bool ok = cuda_backend::cudnn_available(&why);
  if (cuda::device_count() == 0) {
    EXPECT_FALSE(ok);
    EXPECT_FALSE(why.empty());
  } else if (!ok) {
    EXPECT_FALSE(why.empty());
  }
}

// ---------------------------------------------------------------- differential tests

TEST(CudaConv, Float32MatchesFloat64TruthWithoutTf32) {
  REQUIRE_CUDNN();
  Tf32Guard tf32(false);
  uint32_t seed = 10;
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(case_str(c));
    check_against_truth(c, DType::f32, seed, truth_tol(DType::f32));
    seed += 10;
  }
}

TEST(CudaConv, Float64MatchesTruth) {
  REQUIRE_CUDNN();
  uint32_t seed = 200;
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(case_str(c));
    check_against_truth(c, DType::f64, seed, truth_tol(DType::f64));
    seed += 10;
  }
}

TEST(CudaConv, HalfAndBFloat16MatchTruthLoosely) {
  REQUIRE_CUDNN();
  uint32_t seed = 400;
  for (DType dt : {DType::f16, DType::bf16}) {
    for (const ConvCase& c : kCases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + case_str(c));
      check_against_truth(c, dt, seed, truth_tol(dt));
      seed += 10;
    }
  }
}

TEST(CudaConv, CnnSizedLayerAllDtypes) {
  REQUIRE_CUDNN();
  Tf32Guard tf32(false);
  // The Fashion-MNIST CNN's second layer: 3x3, padding 1, bias; the weight gradient sums
  // 8·28·28 products per element.
  const ConvCase c{{8, 16, 28, 28}, 32, 3, 1, 1, 1, 1, true};
  uint32_t seed = 700;
  for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    check_against_truth(c, dt, seed++, truth_tol(dt));
  }
}

TEST(CudaConv, NonContiguousInput) {
  REQUIRE_CUDNN();
  // x is a transposed view (the op makes it contiguous before cuDNN sees it).
  check_against_truth({{2, 3, 9, 7}, 4, {3, 2}, 1, 1, 1, 1, true}, DType::f32, 900, truth_tol(DType::f32), true);
}

TEST(CudaConv, MisalignedBatchSlicesMatchTruth) {
  // A batch slice of an odd-sized batch is contiguous but starts 189 elements in: 4-byte aligned
  // for f32, 2-byte for f16. Inputs and outputs of all three kinds, through the backend.
  REQUIRE_CUDNN();
  Tf32Guard tf32(false);
  const cuda_backend::ConvGeom g{2, 3, 7, 9, 4, 3, 3, 5, 7, 1, 1, 0, 0, 1, 1, 1};
  uint32_t seed = 960;
  for (DType dt : {DType::f32, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = truth_tol(dt);
    const Tensor x = random_tensor({3, 3, 7, 9}, dt, seed++, -1.0, 1.0).narrow(0, 1, 2);
    const Tensor w = random_tensor({4, 3, 3, 3}, dt, seed++, -1.0, 1.0);
    const Tensor gy = random_tensor({3, 4, 5, 7}, dt, seed++, -1.0, 1.0).narrow(0, 1, 2);
    ASSERT_TRUE(x.is_contiguous());
    ASSERT_EQ(x.storage_offset(), 189);
    const Tensor xd = to_cuda_same_layout(x), wd = w.to(kDev), gyd = to_cuda_same_layout(gy);
    ASSERT_EQ(xd.storage_offset(), 189);
    // Outputs that are misaligned views too.
    Tensor y = empty({3, 4, 5, 7}, {.dtype = dt, .device = kDev}).narrow(0, 1, 2);
    Tensor gx = empty({3, 3, 7, 9}, {.dtype = dt, .device = kDev}).narrow(0, 1, 2);
    Tensor gw = empty({5, 3, 3, 3}, {.dtype = dt, .device = kDev}).narrow(0, 1, 4);
    cuda_backend::conv2d_forward(y, xd, wd, g);
    cuda_backend::conv2d_backward_input(gx, gyd, wd, g);
    cuda_backend::conv2d_backward_weight(gw, gyd, xd, g);
    // The truth: the same values in f64 on the CPU, through autograd.
    Tensor xr = x.to(kFloat64).requires_grad_(true), wr = w.to(kFloat64).requires_grad_(true);
    Tensor yr = conv2d(xr, wr);
    (yr * gy.to(kFloat64)).sum().backward();
    EXPECT_TRUE(close_to(y.to(kFloat64), yr.detach(), tol)) << "forward";
    EXPECT_TRUE(close_to(gx.to(kFloat64), xr.grad(), tol)) << "input gradient";
    EXPECT_TRUE(close_to(gw.to(kFloat64), wr.grad(), tol)) << "weight gradient";
  }
}

TEST(CudaConv, Tf32WhenAllowedStaysCloseAndUsesItsOwnPlan) {
  REQUIRE_CUDNN();
  const ConvCase c{{4, 16, 20, 20}, 24, 3, 1, 1, 1, 1, true};
  {
    Tf32Guard off(false);
    check_against_truth(c, DType::f32, 950, truth_tol(DType::f32));
  }
  const cuda_backend::ConvPlanCacheStats before = cuda_backend::conv_plan_cache_stats();
  Tf32Guard on(true);
  // TF32 rounds both operands to 10 mantissa bits (unit roundoff 2^-11): each product of two
  // values in [-1, 1] (rms 1/3) is off by about 1.3e-4 rms, independently of the others. The
  // weight gradient sums N·OH·OW = 1600 of them: about 5e-3 rms of absolute error whatever the
  // element's size, so a weight-gradient element near 0 needs an absolute tolerance near 10σ
  // (0.01 would fail a few of its 3456 elements on a real GPU).
  check_against_truth(c, DType::f32, 951, Tol{5e-2, 1e-2});
  // The TF32 switch is part of the plan key: forward, input and weight gradient plans are new.
  EXPECT_EQ(cuda_backend::conv_plan_cache_stats().misses, before.misses + 3);
}

TEST(CudaConv, EmptyBatch) {
  REQUIRE_CUDNN();
  Tensor x = zeros({0, 3, 6, 6}, {.device = kDev}).requires_grad_(true);
  Tensor w = random_tensor({4, 3, 3, 3}, DType::f32, 1).to(kDev).requires_grad_(true);
  Tensor b = random_tensor({4}, DType::f32, 2).to(kDev).requires_grad_(true);
  Tensor y = conv2d(x, w, b, 1, 1);
  EXPECT_EQ(y.shape(), (Shape{0, 4, 6, 6}));
  y.sum().backward();
  ASSERT_TRUE(w.grad().defined() && b.grad().defined());
  EXPECT_TRUE(close_to(w.grad(), zeros({4, 3, 3, 3}), Tol{0, 0}));
  EXPECT_TRUE(close_to(b.grad(), zeros({4}), Tol{0, 0}));
}

// ---------------------------------------------------------------- plan cache

TEST(CudaConv, PlanCacheHitsOnARepeatedShape) {
  REQUIRE_CUDNN();
  Tf32Guard tf32(false);
  cuda_backend::clear_conv_plan_cache();
  const auto s0 = cuda_backend::conv_plan_cache_stats();
  EXPECT_EQ(s0.entries, 0);

  Tensor w = random_tensor({4, 3, 3, 3}, DType::f32, 2).to(kDev);
  Tensor x1 = random_tensor({2, 3, 10, 10}, DType::f32, 3).to(kDev);
  Tensor y1 = conv2d(x1, w);
  const auto s1 = cuda_backend::conv_plan_cache_stats();
  EXPECT_EQ(s1.misses, s0.misses + 1);
  EXPECT_EQ(s1.hits, s0.hits);
  EXPECT_EQ(s1.entries, 1);

  // Same shapes, fresh tensors (other addresses, same alignment): a hit, and the right answer.
  Tensor x2 = random_tensor({2, 3, 10, 10}, DType::f32, 4).to(kDev);
  Tensor y2 = conv2d(x2, w);
  const auto s2 = cuda_backend::conv_plan_cache_stats();
  EXPECT_EQ(s2.misses, s1.misses);
  EXPECT_EQ(s2.hits, s1.hits + 1);
  EXPECT_EQ(s2.entries, 1);
  EXPECT_TRUE(close_to(y2.to(kFloat64), conv2d(x2.cpu().to(kFloat64), w.cpu().to(kFloat64)),
                       truth_tol(DType::f32)));

  // Another stride, another dtype: new plans.
  conv2d(x1, w, Tensor(), 2);
  conv2d(x1.to(kFloat64), w.to(kFloat64));
  const auto s3 = cuda_backend::conv_plan_cache_stats();
  EXPECT_EQ(s3.misses, s2.misses + 2);
  EXPECT_EQ(s3.entries, 3);

  // Backward: the first pass builds the input- and weight-gradient plans, the second reuses them.
  for (int pass = 0; pass < 2; ++pass) {
    const auto before = cuda_backend::conv_plan_cache_stats();
    Tensor xg = x1.detach().requires_grad_(true);
    Tensor wg = w.detach().requires_grad_(true);
    conv2d(xg, wg).sum().backward();
    const auto after = cuda_backend::conv_plan_cache_stats();
    if (pass == 0) {
      EXPECT_EQ(after.misses, before.misses + 2);
      EXPECT_EQ(after.hits, before.hits + 1);  // the forward
    } else {
      EXPECT_EQ(after.misses, before.misses);
      EXPECT_EQ(after.hits, before.hits + 3);
    }
  }

  cuda_backend::clear_conv_plan_cache();
  EXPECT_EQ(cuda_backend::conv_plan_cache_stats().entries, 0);
  conv2d(x1, w);
  EXPECT_EQ(cuda_backend::conv_plan_cache_stats().entries, 1);
}

// ---------------------------------------------------------------- errors

TEST(CudaConv, BadShapesDevicesAndDtypes) {
  REQUIRE_CUDNN();
  Tensor x = random_tensor({2, 3, 8, 8}, DType::f32, 1).to(kDev);
  Tensor w = random_tensor({4, 3, 3, 3}, DType::f32, 2).to(kDev);
  expect_error<DeviceError>([&] { conv2d(x, w.cpu()); }, "must be on one device");
  expect_error<DeviceError>([&] { conv2d(x, w, zeros({4})); }, "bias on cpu");
  expect_error<ShapeError>([&] { conv2d(x, random_tensor({4, 2, 3, 3}, DType::f32, 3).to(kDev)); },
                           "expected input with 2 channels");
  expect_error<ShapeError>([&] { conv2d(x, random_tensor({4, 3, 9, 3}, DType::f32, 3).to(kDev)); },
                           "larger than the padded input");
  expect_error<ValueError>([&] { conv2d(x, random_tensor({4, 1, 3, 3}, DType::f32, 3).to(kDev), {}, 1, 0, 1, 2); },
                           "must divide the input channels");
  expect_error<DTypeError>([&] { conv2d(x, w.to(kFloat16)); }, "share one dtype");
  expect_error<ShapeError>([&] { conv2d(x, w, zeros({5}, {.device = kDev})); }, "expected bias of shape (4)");
}

TEST(CudaConv, BackendRejectsWrongShapesLayoutsAndDtypes) {
  REQUIRE_CUDNN();
  const cuda_backend::ConvGeom g{2, 3, 8, 8, 4, 3, 3, 6, 6, 1, 1, 0, 0, 1, 1, 1};
  Tensor x = zeros({2, 3, 8, 8}, {.device = kDev});
  Tensor w = zeros({4, 3, 3, 3}, {.device = kDev});
  expect_error<ShapeError>([&] { cuda_backend::conv2d_forward(zeros({2, 4, 5, 6}, {.device = kDev}), x, w, g); },
                           "expected tensors of shapes");
  expect_error<ValueError>(
      [&] {
        cuda_backend::conv2d_forward(zeros({2, 4, 6, 6}, {.device = kDev}).transpose(2, 3), x, w, g);
      },
      "expected contiguous tensors");
  expect_error<NotImplemented>(
      [&] {
        cuda_backend::conv2d_forward(zeros({2, 4, 6, 6}, {.dtype = kInt64, .device = kDev}),
                                     zeros({2, 3, 8, 8}, {.dtype = kInt64, .device = kDev}),
                                     zeros({4, 3, 3, 3}, {.dtype = kInt64, .device = kDev}), g);
      },
      "dtype int64 is not supported");
  expect_error<DeviceError>(
      [&] { cuda_backend::conv2d_forward(zeros({2, 4, 6, 6}, {.device = kDev}), x, zeros({4, 3, 3, 3}), g); },
      "expected one CUDA device");
}
