// Differential tests: every CUDA backend op against the CPU backend on random inputs (odd sizes,
// non-contiguous views, broadcasting, CPU scalars), for f32/f64/f16/bf16; streams, events and the
// stream-ordered allocator. Every test skips without a CUDA device, except the ones that check
// what happens without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "cuda_diff.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;
using cpu::BinaryOp;
using cpu::UnaryOp;

namespace {

/// t on the device with the same layout (strides, offset), so that views stay views there: the
/// storage span t reads is copied, then the view is rebuilt with as_strided.
Tensor gpu(const Tensor& t) {
  if (t.is_contiguous() && t.storage_offset() == 0) return t.to(kDev);
  int64_t extent = t.storage_offset() + 1;
  for (int64_t d = 0; d < t.dim(); ++d) extent += (t.size(d) - 1) * t.stride(d);
  if (t.numel() == 0) extent = 0;
  Tensor flat = t.as_strided({extent}, {1}, 0).to(kDev);
  return flat.as_strided(t.shape(), t.strides(), t.storage_offset());
}

// One layout case: shapes of a and b (before any view) and how the view is made.
struct Case {
  const char* name;
  Shape a, b;
  bool transpose_a = false;  // a.t() (2-d only)
  bool slice_b = false;      // every other element of b's last dim
};

const std::vector<Case> kCases = {
    {"contiguous_odd", {1001}, {1001}},
    {"contiguous_2d", {37, 53}, {37, 53}},
    {"broadcast_row_col", {37, 1}, {1, 53}},
    {"broadcast_scalar_b", {5, 7, 9}, {}},
    {"transposed_a", {53, 37}, {37, 53}, true},
    {"sliced_b", {13, 17}, {13, 34}, false, true},
    {"large_vectorised", {1 << 16 | 3}, {1 << 16 | 3}},
};

std::pair<Tensor, Tensor> operands(const Case& c, DType dt, uint32_t seed, double lo, double hi) {
  Tensor a = random_tensor(c.a, dt, seed, lo, hi);
  Tensor b = random_tensor(c.b, dt, seed + 1, lo, hi);
  if (c.transpose_a) a = a.t();
  if (c.slice_b) b = b.slice(-1, 0, b.size(-1), 2);
  return {a, b};
}

Shape out_shape(const Tensor& a, const Tensor& b) { return broadcast_shapes(a.shape(), b.shape(), "test"); }

}  // namespace

TEST(CudaNoDevice, PublicApiFailsClearlyOrReportsNone) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(cuda::is_available());
  EXPECT_THROW(cuda::set_device(0), DeviceError);
  EXPECT_THROW(cuda::Stream::create(), DeviceError);
  EXPECT_THROW(cuda::synchronize(), DeviceError);
  EXPECT_THROW(zeros({2}, {.device = kDev}), DeviceError);
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  EXPECT_FALSE(cuda::allow_tf32());
}

TEST(CudaOps, BinaryArithmeticMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const std::vector<std::pair<BinaryOp, const char*>> ops = {{BinaryOp::add, "add"},
                                                             {BinaryOp::sub, "sub"},
                                                             {BinaryOp::mul, "mul"},
                                                             {BinaryOp::div, "div"},
                                                             {BinaryOp::maximum, "maximum"},
                                                             {BinaryOp::minimum, "minimum"},
                                                             {BinaryOp::pow, "pow"},
                                                             {BinaryOp::threshold_backward, "threshold_backward"},
                                                             {BinaryOp::tanh_backward, "tanh_backward"},
                                                             {BinaryOp::sigmoid_backward, "sigmoid_backward"},
                                                             {BinaryOp::gelu_backward, "gelu_backward"},
                                                             {BinaryOp::gelu_tanh_backward, "gelu_tanh_backward"},
                                                             {BinaryOp::silu_backward, "silu_backward"}};
  uint32_t seed = 1;
  for (DType dt : kFloatTypes) {
    for (const Case& c : kCases) {
      for (auto [op, name] : ops) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + c.name + " " + name);
        // pow and div on positive inputs keep the results finite and well conditioned.
        const bool positive = op == BinaryOp::pow || op == BinaryOp::div;
        auto [a, b] = operands(c, dt, seed += 2, positive ? 0.5 : -2.0, 2.0);
        Tensor ref = empty(out_shape(a, b), {.dtype = dt});
        cpu::binary(op, ref, a, b, 0.75);
        Tensor got = empty(ref.shape(), {.dtype = dt, .device = kDev});
        cuda_backend::binary(op, got, gpu(a), gpu(b), 0.75);
        EXPECT_TRUE(close_to(got, ref, tol_for(dt)));
      }
    }
  }
}

TEST(CudaOps, ComparisonsAndNaNPropagationMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // Small integers make ties frequent; a NaN checks max/min propagation.
    Tensor a = tensor<double>({1, 2, 3, NAN, 5, 2, -1, 0, 4}, {9}).to(dt);
    Tensor b = tensor<double>({1, 3, 2, 1, NAN, 2, -1, 1, 4}, {9}).to(dt);
    for (BinaryOp op : {BinaryOp::eq, BinaryOp::ne, BinaryOp::lt, BinaryOp::le, BinaryOp::gt, BinaryOp::ge}) {
      Tensor ref = empty({9}, {.dtype = kBool});
      cpu::binary(op, ref, a, b);
      Tensor got = empty({9}, {.dtype = kBool, .device = kDev});
      cuda_backend::binary(op, got, gpu(a), gpu(b));
      EXPECT_EQ(got.cpu().to_vector<double>(), ref.to_vector<double>()) << static_cast<int>(op);
    }
    for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
      Tensor ref = empty({9}, {.dtype = dt});
      cpu::binary(op, ref, a, b);
      Tensor got = empty({9}, {.dtype = dt, .device = kDev});
      cuda_backend::binary(op, got, gpu(a), gpu(b));
      EXPECT_TRUE(close_to(got, ref, tol_for(dt)));
    }
  }
}

TEST(CudaOps, CpuScalarOperandAndUnsupportedDTypes) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor a = random_tensor({33, 5}, kFloat32, 7);
  Tensor s = scalar_tensor(2.5, {.dtype = kFloat32});  // a wrapped scalar stays on the CPU
  Tensor ref = empty({33, 5}), got = empty({33, 5}, {.device = kDev});
  cpu::binary(BinaryOp::mul, ref, a, s);
  cuda_backend::binary(BinaryOp::mul, got, gpu(a), s);
  EXPECT_TRUE(close_to(got, ref, tol_for(kFloat32)));
  // A CPU tensor of more than one element is a device error, not a silent copy.
  EXPECT_THROW(cuda_backend::binary(BinaryOp::mul, got, gpu(a), a), DeviceError);
  Tensor i = zeros({4}, {.dtype = kInt64, .device = kDev});
  // Integer kernels exist (tests/cuda/test_cuda_ops2.cpp); true division of integers does not.
  EXPECT_THROW(cuda_backend::binary(BinaryOp::div, i, i, i), DTypeError);
  EXPECT_THROW(cuda_backend::unary(UnaryOp::isnan, got, gpu(a)), DTypeError);  // isnan writes bool
}

TEST(CudaOps, UnaryMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const std::vector<UnaryOp> ops = {UnaryOp::neg,    UnaryOp::abs,        UnaryOp::sign,    UnaryOp::exp,
                                    UnaryOp::log,    UnaryOp::log1p,      UnaryOp::sqrt,    UnaryOp::rsqrt,
                                    UnaryOp::square, UnaryOp::reciprocal, UnaryOp::sin,     UnaryOp::cos,
                                    UnaryOp::erf,    UnaryOp::tanh,       UnaryOp::sigmoid, UnaryOp::relu,
                                    UnaryOp::gelu,   UnaryOp::gelu_tanh,  UnaryOp::silu};
  uint32_t seed = 100;
  for (DType dt : kFloatTypes) {
    for (const Case& c : kCases) {
      for (UnaryOp op : ops) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + c.name + " op " + std::to_string(static_cast<int>(op)));
        const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt ||
                              op == UnaryOp::reciprocal || op == UnaryOp::log1p;
        Tensor x = operands(c, dt, seed += 1, positive ? 0.25 : -3.0, 3.0).first;
        Tensor ref = empty(x.shape(), {.dtype = dt});
        cpu::unary(op, ref, x);
        Tensor got = empty(x.shape(), {.dtype = dt, .device = kDev});
        cuda_backend::unary(op, got, gpu(x));
        EXPECT_TRUE(close_to(got, ref, tol_for(dt)));
        // In place on a strided output (a transposed view of a fresh tensor).
        if (x.dim() == 2) {
          Tensor out_t = empty({x.size(1), x.size(0)}, {.dtype = dt, .device = kDev}).t();
          cuda_backend::unary(op, out_t, gpu(x));
          EXPECT_TRUE(close_to(out_t, ref, tol_for(dt))) << "strided output";
        }
      }
    }
  }
}

TEST(CudaOps, ReductionsMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const std::vector<cpu::ReduceGeom> geoms = {{1, 1, 1},     {1, 1000003, 1}, {7, 4099, 1}, {1000, 10, 1}, {1, 517, 33},
                                              {3, 70001, 5}, {128, 9, 128},   {5, 0, 3},    {1, 63, 1},    {2, 65, 1}};
  const std::vector<std::pair<cpu::ReduceKind, const char*>> kinds = {{cpu::ReduceKind::kSum, "sum"},
                                                                      {cpu::ReduceKind::kMean, "mean"},
                                                                      {cpu::ReduceKind::kMax, "max"},
                                                                      {cpu::ReduceKind::kMin, "min"}};
  uint32_t seed = 500;
  for (DType dt : kFloatTypes) {
    for (const cpu::ReduceGeom& g : geoms) {
      Tensor x = random_tensor({g.outer * g.size * g.inner}, dt, seed++);
      for (auto [kind, name] : kinds) {
        if (g.size == 0 && (kind == cpu::ReduceKind::kMax || kind == cpu::ReduceKind::kMin)) continue;
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + name + " (" + std::to_string(g.outer) + "," +
                     std::to_string(g.size) + "," + std::to_string(g.inner) + ")");
        Tensor ref = empty({g.outer * g.inner}, {.dtype = dt});
        cpu::reduce(ref, x, g, kind);
        Tensor got = empty({g.outer * g.inner}, {.dtype = dt, .device = kDev});
        cuda_backend::reduce(got, gpu(x), g, kind);
        // Long sums are summed in a different order: allow sqrt(size) ulps more.
        Tol t = tol_for(dt);
        if (kind == cpu::ReduceKind::kSum) t.atol *= std::sqrt(static_cast<double>(std::max<int64_t>(g.size, 1)));
        EXPECT_TRUE(close_to(got, ref, t));
      }
    }
  }
  // NaN propagates through max/min.
  Tensor x = tensor<float>({1.f, NAN, 3.f, -4.f}, {4});
  Tensor got = empty({1}, {.device = kDev});
  cuda_backend::reduce(got, gpu(x), {1, 4, 1}, cpu::ReduceKind::kMax);
  EXPECT_TRUE(std::isnan(got.cpu().item<float>()));
}

namespace {

/// cuda_backend::softmax (log_softmax when `log`) of x, a contiguous CPU tensor of g's
/// (outer, size, inner) block, against cpu::softmax; then softmax_backward of a random gy
/// (drawn with `seed`, which advances) through the CPU's output against the CPU's.
void expect_softmax_matches_cpu(const Tensor& x, const cpu::ReduceGeom& g, bool log, uint32_t& seed) {
  const DType dt = x.dtype();
  const int64_t n = x.numel();
  Tensor ref = empty({n}, {.dtype = dt});
  cpu::softmax(ref, x, g, log);
  Tensor got = empty({n}, {.dtype = dt, .device = kDev});
  cuda_backend::softmax(got, gpu(x), g, log);
  EXPECT_TRUE(close_to(got, ref, tol_for(dt)));
  Tensor gy = random_tensor({n}, dt, seed++);
  Tensor gref = empty({n}, {.dtype = dt});
  cpu::softmax_backward(gref, gy, ref, g, log);
  Tensor ggot = empty({n}, {.dtype = dt, .device = kDev});
  cuda_backend::softmax_backward(ggot, gpu(gy), gpu(ref), g, log);
  EXPECT_TRUE(close_to(ggot, gref, tol_for(dt))) << "backward";
}

}  // namespace

TEST(CudaOps, SoftmaxAndBackwardMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Every kernel layout (kernels/reduce.cu), forward and backward (which keeps half as many
  // elements per thread): rows in registers, one warp per row (10, 1, 256, 1000 for 16/32-bit
  // forward) or one block (1000 for f64 and the backward, 1001, 4099, 5000), with 16-byte vectors
  // when size % (16 / itemsize) == 0 and scalar loads otherwise (10, 1, 1001, 4099); rows too long
  // for registers (20001 scalar, 40000 vectorised); more than 4 * 65535 rows (a grid-stride warp
  // loop); narrow columns (inner 6) and wide columns (inner 256, one thread per column).
  const std::vector<cpu::ReduceGeom> geoms = {{128, 10, 1}, {3, 1, 1},     {64, 256, 1},   {7, 1000, 1},
                                              {5, 1001, 1}, {2, 5000, 1},  {3, 4099, 1},   {2, 20001, 1},
                                              {1, 40000, 1}, {270000, 3, 1}, {4, 33, 6},   {40, 7, 256}};
  uint32_t seed = 900;
  for (DType dt : kFloatTypes) {
    for (const cpu::ReduceGeom& g : geoms) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (log ? " log_softmax " : " softmax ") + std::to_string(g.size));
        Tensor x = random_tensor({g.outer * g.size * g.inner}, dt, seed++, -8.0, 8.0);
        expect_softmax_matches_cpu(x, g, log, seed);
      }
    }
  }
}

TEST(CudaOps, SoftmaxOfNonFiniteRowsAndMisalignedViewsMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Row 0 all -inf (NaN out), row 1 with a +inf (NaN out), row 2 with a NaN, row 3 half masked
  // with -inf (zeros there, a finite distribution elsewhere), row 4 plain. Sizes pick the warp,
  // block and fallback row kernels; inner 64 with 200 outer rows the column kernel.
  const std::vector<cpu::ReduceGeom> geoms = {{5, 64, 1}, {5, 3000, 1}, {5, 40000, 1}, {200, 5, 64}, {2, 5, 64}};
  uint32_t seed = 950;
  for (DType dt : kFloatTypes) {
    for (const cpu::ReduceGeom& g : geoms) {
      // Element (o, k, i) of the (outer, size, inner) block.
      Tensor x = random_tensor({g.outer, g.size, g.inner}, kFloat64, seed++, -4.0, 4.0);
      const int64_t special = std::min<int64_t>(g.outer, 4);
      if (special > 0) x.select(0, 0).fill_(-inf);
      if (special > 1) x.select(0, 1).select(0, g.size / 2).fill_(inf);
      if (special > 2) x.select(0, 2).select(0, g.size - 1).fill_(nan);
      if (special > 3) x.select(0, 3).slice(0, 0, g.size / 2).fill_(-inf);
      x = x.to(dt).reshape({-1});
      for (bool log : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (log ? " log_softmax (" : " softmax (") + std::to_string(g.outer) +
                     "," + std::to_string(g.size) + "," + std::to_string(g.inner) + ")");
        expect_softmax_matches_cpu(x, g, log, seed);
      }
    }
    // Inputs one element past an aligned start (a view with storage offset 1): the kernels must
    // not use 16-byte vectors on them, whatever the row length.
    for (const cpu::ReduceGeom& g : std::vector<cpu::ReduceGeom>{{3, 1024, 1}, {2, 4096, 1}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " offset view, size " + std::to_string(g.size));
      const int64_t n = g.outer * g.size;
      Tensor x = random_tensor({n + 1}, dt, seed++, -4.0, 4.0).slice(0, 1, n + 1);
      Tensor gy = random_tensor({n + 1}, dt, seed++).slice(0, 1, n + 1);
      Tensor ref = empty({n}, {.dtype = dt});
      cpu::softmax(ref, x.contiguous(), g, true);
      Tensor got = empty({n + 1}, {.dtype = dt, .device = kDev}).slice(0, 1, n + 1);
      cuda_backend::softmax(got, gpu(x), g, true);
      EXPECT_TRUE(close_to(got, ref, tol_for(dt)));
      Tensor gref = empty({n}, {.dtype = dt});
      cpu::softmax_backward(gref, gy.contiguous(), ref, g, true);
      Tensor yg = empty({n + 1}, {.dtype = dt, .device = kDev}).slice(0, 1, n + 1);
      yg.copy_(ref.to(kDev));
      Tensor ggot = empty({n}, {.dtype = dt, .device = kDev});
      cuda_backend::softmax_backward(ggot, gpu(gy), yg, g, true);
      EXPECT_TRUE(close_to(ggot, gref, tol_for(dt))) << "backward";
    }
  }
}

TEST(CudaOps, GemmMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 1300;
  for (DType dt : kFloatTypes) {
    for (bool tf32 : {false, true}) {
      if (tf32 && dt != kFloat32) continue;
      cuda::set_allow_tf32(tf32);
      const Tol base = tol_for(dt, tf32);
      auto check = [&](const Tensor& a, const Tensor& b, Shape cshape, double alpha, double beta, const char* what) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (tf32 ? " tf32 " : " ") + what);
        Tensor c0 = random_tensor(cshape, dt, seed++);
        Tensor ref = c0.clone(), got = gpu(c0);
        cpu::gemm(ref, a, b, alpha, beta);
        cuda_backend::gemm(got, gpu(a), gpu(b), alpha, beta);
        // Sums of k products: the error grows with k.
        const double k = static_cast<double>(a.size(-1));
        EXPECT_TRUE(close_to(got, ref, {base.atol * k, base.rtol * std::sqrt(k)}));
      };
      Tensor a = random_tensor({67, 45}, dt, seed++), b = random_tensor({45, 33}, dt, seed++);
      check(a, b, {67, 33}, 1.0, 0.0, "plain");
      check(a, b, {67, 33}, 0.5, 2.0, "alpha beta");
      Tensor at = random_tensor({45, 67}, dt, seed++).t(), bt = random_tensor({33, 45}, dt, seed++).t();
      check(at, b, {67, 33}, 1.0, 0.0, "a transposed");
      check(a, bt, {67, 33}, 1.0, 0.0, "b transposed");
      check(at, bt, {67, 33}, 1.0, 0.0, "both transposed");
      Tensor ba = random_tensor({3, 17, 9}, dt, seed++), bb = random_tensor({3, 9, 11}, dt, seed++);
      check(ba, bb, {3, 17, 11}, 1.0, 0.0, "batched");
      check(ba, bb.select(0, 1).unsqueeze(0).expand({3, 9, 11}), {3, 17, 11}, 1.0, 0.0, "broadcast batch");
      Tensor b4 = random_tensor({2, 3, 9, 11}, dt, seed++);
      check(random_tensor({2, 3, 17, 9}, dt, seed++), b4.transpose(0, 1).contiguous().transpose(0, 1), {2, 3, 17, 11},
            1.0, 0.0, "batch dims that do not collapse");
      check(random_tensor({1, 1}, dt, seed++), random_tensor({1, 5}, dt, seed++), {1, 5}, 1.0, 0.0, "m = k = 1");
      check(random_tensor({4, 0}, dt, seed++), random_tensor({0, 3}, dt, seed++), {4, 3}, 1.0, 0.0, "k = 0");
    }
  }
  cuda::set_allow_tf32(false);
}

TEST(CudaOps, TransposedOutputIsNotRequired) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor a = zeros({2, 3}, {.device = kDev}), b = zeros({3, 4}, {.device = kDev});
  Tensor i = zeros({2, 3}, {.dtype = kInt32, .device = kDev});
  EXPECT_THROW(cuda_backend::gemm(zeros({2, 3}, {.dtype = kInt32, .device = kDev}), i, i), NotImplemented);
  EXPECT_THROW(cuda_backend::gemm(zeros({2, 4}, {.device = kDev}), a, zeros({3, 4})), DeviceError);
}

// ------------------------------------------------------------------ streams, events, allocator
TEST(CudaStreams, CurrentStreamDefaultsToLegacyAndGuardRestores) {
  EMBER_REQUIRE_CUDA_DEVICE();
  EXPECT_EQ(cuda::current_stream().handle(), nullptr);
  cuda::Stream s = cuda::Stream::create();
  EXPECT_NE(s.handle(), nullptr);
  {
    cuda::StreamGuard g(s);
    EXPECT_EQ(cuda::current_stream().handle(), s.handle());
    // Work queued through ops goes to s; the D2H copy waits for it.
    Tensor x = full({1 << 20}, 2.0, {.device = kDev});
    Tensor y = empty({1 << 20}, {.device = kDev});
    cuda_backend::unary(UnaryOp::square, y, x);
    EXPECT_EQ(y.cpu().to_vector<float>()[12345], 4.0f);
  }
  EXPECT_EQ(cuda::current_stream().handle(), nullptr);
  s.synchronize();
  EXPECT_TRUE(s.query());
}

TEST(CudaStreams, EventsTimeAndOrderWork) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::Stream s1 = cuda::Stream::create(), s2 = cuda::Stream::create();
  cuda::Event start(true), stop(true), done;
  Tensor x, y;
  {
    cuda::StreamGuard g(s1);
    start.record(s1);
    x = full({1 << 22}, 3.0, {.device = kDev});
    y = empty({1 << 22}, {.device = kDev});
    cuda_backend::unary(UnaryOp::neg, y, x);
    done.record(s1);
    stop.record(s1);
  }
  done.block(s2);  // s2 waits for s1's kernels without the host waiting
  Tensor z = empty({1 << 22}, {.device = kDev});
  {
    cuda::StreamGuard g(s2);
    cuda_backend::unary(UnaryOp::abs, z, y);
    EXPECT_EQ(z.cpu().to_vector<float>()[777], 3.0f);
  }
  stop.synchronize();
  EXPECT_TRUE(stop.query());
  EXPECT_GE(start.elapsed_ms(stop), 0.0f);
  cuda::Event moved = std::move(done);
  EXPECT_EQ(done.handle(), nullptr);
  EXPECT_THROW(done.query(), ValueError);
}

TEST(CudaAllocator, StreamOrderedReuse) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::empty_cache();
  constexpr int64_t kN = (int64_t{5} << 20) / 4;
  cuda::Stream s1 = cuda::Stream::create(), s2 = cuda::Stream::create();
  const int64_t base = cuda::memory_stats().num_allocs;
  {
    cuda::StreamGuard g(s1);
    Tensor t = empty({kN}, {.device = kDev});
  }
  EXPECT_EQ(cuda::memory_stats().num_allocs, base + 1);
  {
    cuda::StreamGuard g(s1);
    Tensor t = empty({kN}, {.device = kDev});
  }  // same stream: reused at once
  EXPECT_EQ(cuda::memory_stats().num_allocs, base + 1);
  {
    // Another stream: not reused before an event on s1 has completed.
    cuda::StreamGuard g(s2);
    Tensor t = empty({kN}, {.device = kDev});
    EXPECT_EQ(cuda::memory_stats().num_allocs, base + 2);
  }
  s1.synchronize();
  s2.synchronize();
  cuda::synchronize();
  {
    // The first block's event has completed by now: s2 may take it (or its own block back).
    cuda::StreamGuard g(s2);
    Tensor t = empty({kN}, {.device = kDev});
    Tensor u = empty({kN}, {.device = kDev});
    EXPECT_EQ(cuda::memory_stats().num_allocs, base + 2);
  }
  const AllocatorStats st = cuda::memory_stats();
  EXPECT_GE(st.peak_allocated_bytes, 2 * kN * 4);
  EXPECT_GE(st.reserved_bytes, st.allocated_bytes);
  cuda::empty_cache();
  EXPECT_EQ(cuda::memory_stats().reserved_bytes, cuda::memory_stats().allocated_bytes);
  cuda::reset_peak_memory_stats();
  EXPECT_EQ(cuda::memory_stats().peak_allocated_bytes, cuda::memory_stats().allocated_bytes);
}

TEST(CudaAllocator, NonBlockingUploadThroughPinnedStaging) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor h = random_tensor({100003}, kFloat32, 77);
  for (int rep = 0; rep < 3; ++rep) {  // reuses the staging buffer once its event completes
    Tensor d = h.to(kDev, /*non_blocking=*/true);
    EXPECT_TRUE(close_to(d, h, {0, 0}));
  }
  EXPECT_THROW(cuda::set_device(cuda::device_count()), DeviceError);
  EXPECT_EQ(cuda::current_device(), 0);
}
