// cumsum and logsumexp on CUDA against the CPU backend (the truth): every dtype, every dim,
// non-contiguous inputs, the reverse scan (through cumsum's gradient), the chunked paths of
// long rows and long columns (a million elements), more rows than a grid has blocks, empty
// and 0-d tensors, the -inf / +inf / NaN rows of logsumexp, the backend's own checks, and no
// host synchronisation. Every test that needs a device skips without one.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "cuda_diff.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;
using Inputs = std::vector<Tensor>;

namespace {

/// Values of dtype dt on the CPU. Floating types: multiples of 2^-10 in [-2, 2) (also after
/// rounding to f16/bf16), so every partial sum of up to 2^40 of them is exact in double and
/// cumsum gives the same numbers whatever the order of the additions: the forward results must
/// be bit-identical to the CPU's. Integers in a range that fits (u8 0..200, bool 0/1, others
/// -50..50).
Tensor values_of(const Shape& shape, DType dt, uint32_t seed) {
  if (is_floating(dt)) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> k(-2048, 2047);
    std::vector<double> v(static_cast<size_t>(numel_of(shape)));
    for (double& x : v) x = static_cast<double>(k(rng)) / 1024.0;
    return tensor<double>(v, shape).to(dt);
  }
  return random_ints(shape, dt, seed, dt == DType::u8 || dt == DType::boolean ? 0 : -50, dt == DType::u8 ? 200 : 50);
}

/// Tolerance of the gradient (a suffix sum of expect_same_on_cuda's random weights, not exact in
/// double): both backends round a double running sum to the dtype, so 16-bit and f32 results
/// differ by at most one ulp (within tol_for); f64 sums of a million terms added in another
/// order differ by ~1e-10 absolute near a zero crossing.
Tol grad_tol(DType dt) { return dt == DType::f64 ? Tol{1e-8, 1e-10} : tol_for(dt); }

/// cumsum's forward must equal the CPU's exactly (values_of), its gradient within grad_tol.
void expect_cumsum_matches(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
  const auto fn = [&](const Inputs& v) { return f(v[0]); };
  expect_same_on_cuda(fn, {x}, kExact, false);
  if (is_floating(x.dtype())) expect_same_on_cuda(fn, {x}, grad_tol(x.dtype()), true);
}

}  // namespace

// ------------------------------------------------------------------ cumsum

TEST(CudaCumsum, EveryDtypeEveryDimMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = values_of({5, 37, 3}, dt, 11);
    for (int64_t dim : {0, 1, 2, -1, -3}) expect_cumsum_matches([dim](const Tensor& t) { return cumsum(t, dim); }, x);
    // Non-contiguous inputs: a transposed view and a sliced one (offset, strides).
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t.transpose(0, 1), 0); }, x);
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t.narrow(1, 3, 30).select(2, 1), 1); }, x);
    // Rows long enough for the block scan (inner == 1, size > 32), several tiles, odd length;
    // the gradient runs the reverse scan.
    Tensor rows = values_of({7, 2500}, dt, 12);
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 1); }, rows);
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t.t(), 0); }, rows);
  }
}

TEST(CudaCumsum, OutputDtypesEmptyAndZeroDim) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor y = cumsum(values_of({4, 3}, dt, 20).to(kDev), 0);
    EXPECT_TRUE(y.is_cuda());
    EXPECT_EQ(y.dtype(), is_floating(dt) ? dt : kInt64);
    for (const Shape& s : std::vector<Shape>{{0, 3}, {3, 0}, {0}}) {
      Tensor e = cumsum(zeros(s, {.dtype = dt, .device = kDev}), 0);
      EXPECT_EQ(e.shape(), s);
      EXPECT_TRUE(e.is_cuda());
    }
  }
  EXPECT_EQ(cumsum(scalar_tensor(2.5).to(kDev), 0).item<double>(), 2.5);
  EXPECT_EQ(cumsum(scalar_tensor(2.5).to(kDev), -1).dim(), 0);
}

// A sequential scan per column (inner > 1, short columns: one chunk) adds in the CPU's order:
// the same double sums, rounded the same way, so the results are bit-identical.
TEST(CudaCumsum, ShortColumnsAreBitIdenticalToCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({6, 50, 9}, dt, 30, -1000.0, 1000.0);
    expect_same_on_cuda([](const Inputs& v) { return cumsum(v[0], 1); }, {x}, kExact, false);
  }
}

// Long rows and columns run in chunks (a chunk's scan starts from the totals before it): a
// million-element row, a few long rows, long columns, in both directions (the gradient), with a
// value far larger than the rest in an early chunk (the carry must hold it exactly).
TEST(CudaCumsum, LongRowsAndColumnsInChunksMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const int64_t n = (1 << 20) + 3;
  for (DType dt : {DType::f32, DType::f64, DType::f16, DType::i32, DType::i64, DType::u8}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor row = values_of({1, n}, dt, 40);
    if (dt == DType::f32 || dt == DType::f64) row.narrow(1, 5000, 1).fill_(1e6);
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 1); }, row);
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t, -1); }, values_of({3, 300001}, dt, 41));
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 0); }, values_of({400003, 3}, dt, 42));
    expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 1); }, values_of({4, 20001, 5}, dt, 43));
  }
  // Sums of ones: the last element is the count, element k is k + 1 (also in reverse).
  Tensor ones_row = ones({1, n}, {.dtype = kFloat64, .device = kDev});
  std::vector<double> c = cumsum(ones_row, 1).cpu().to_vector<double>();
  EXPECT_EQ(c.back(), static_cast<double>(n));
  EXPECT_EQ(c[12345], 12346.0);
  Tensor r = ones_row.detach().requires_grad_(true);
  cumsum(r, 1).sum().backward();
  std::vector<double> g = r.grad().cpu().to_vector<double>();
  EXPECT_EQ(g.front(), static_cast<double>(n));
  EXPECT_EQ(g[n - 12346], 12346.0);
}

// More rows than a grid has blocks (65535): blocks loop over rows.
TEST(CudaCumsum, MoreRowsThanGridBlocks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 1); }, values_of({70001, 40}, DType::i64, 50));
  expect_cumsum_matches([](const Tensor& t) { return cumsum(t, 1); }, values_of({70001, 40}, DType::f32, 51));
}

TEST(CudaCumsum, BackendChecks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = zeros({4, 3}, {.device = kDev});
  expect_error<DTypeError>(
      [&] { cuda_backend::cumsum(empty({4, 3}, {.dtype = kFloat64, .device = kDev}), x, {1, 4, 3}); },
      "cumsum on CUDA: expected output dtype float32 for input dtype float32, got float64");
  expect_error<DTypeError>(
      [&] {
        cuda_backend::cumsum(empty({4}, {.dtype = kInt32, .device = kDev}), zeros({4}, {.dtype = kInt32, .device = kDev}),
                             {1, 4, 1});
      },
      "expected output dtype int64 for input dtype int32, got int32");
  expect_error<ValueError>([&] { cuda_backend::cumsum(empty({3, 4}, {.device = kDev}).t(), x, {1, 4, 3}); },
                           "cumsum on CUDA: expected a contiguous (outer, size, inner) input and output");
  expect_error<DeviceError>([&] { cuda_backend::cumsum(empty({4, 3}), x, {1, 4, 3}); }, "expected the output on cuda:0");
}

// ------------------------------------------------------------------ logsumexp

TEST(CudaLogsumexp, DimsAndViewsMatchCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({13, 29, 3}, dt, 60, -4.0, 4.0);
    const Tol t = tol_for(dt);
    for (const Shape& dims : std::vector<Shape>{{1}, {0}, {2}, {0, 2}, {}, {-1, 0}}) {
      expect_same_on_cuda([&](const Inputs& v) { return logsumexp(v[0], dims, false); }, {x}, t);
      expect_same_on_cuda([&](const Inputs& v) { return logsumexp(v[0], dims, true); }, {x}, t);
      expect_same_on_cuda([&](const Inputs& v) { return logsumexp(v[0].transpose(0, 1), dims, false); }, {x}, t);
    }
    // Rows long enough for a block per row; short rows (one thread each); a sliced view.
    Tensor rows = random_tensor({37, 1000}, dt, 61, -4.0, 4.0);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, false); }, {rows}, t);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0].narrow(1, 1, 20), {1}, false); }, {rows}, t);
    // Large values: the shift keeps exp finite (f16 holds up to 65504).
    Tensor big = random_tensor({9, 64}, dt, 62, -1.0, 1.0) + (dt == DType::f16 ? 6e4 : 1e4);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, false); }, {big}, t);
  }
}

// Rows of -inf give -inf, a +inf gives +inf, a NaN gives NaN, an empty reduction -inf (as the
// CPU), through the row kernels and the column kernels.
TEST(CudaLogsumexp, InfiniteNanAndEmptyRowsMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (int64_t len : {5, 100}) {  // column kernel (short rows), block kernel (long rows)
      Tensor x = random_tensor({5, len}, DType::f64, 70);
      x.select(0, 0).fill_(-inf);
      x.select(0, 1).narrow(0, 2, 1).fill_(inf);
      x.select(0, 2).narrow(0, 1, 1).fill_(nan);
      x.select(0, 3).narrow(0, 0, 2).fill_(-inf);  // -inf beside finite values: exp gives 0
      Tensor xt = x.to(dt);
      expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, false); }, {xt}, tol_for(dt), false);
      expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0].t(), {0}, false); }, {xt}, tol_for(dt), false);
    }
    Tensor e = logsumexp(zeros({0, 3}, {.dtype = dt, .device = kDev}), {0}, false).cpu();
    EXPECT_EQ(e.to_vector<double>(), (std::vector<double>{-inf, -inf, -inf}));
    EXPECT_EQ(logsumexp(zeros({3, 0}, {.dtype = dt, .device = kDev}), {0}, false).numel(), 0);
  }
}

// Long reductions run in chunks (maxima, then shifted sums, then an ordered combination):
// the whole of a million elements, long rows, long columns, a NaN and a +inf in late chunks.
TEST(CudaLogsumexp, LongReductionsInChunksMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const int64_t n = (1 << 20) + 5;
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol t = tol_for(dt);
    Tensor x = random_tensor({n}, dt, 80, -4.0, 4.0);
    x.narrow(0, 700000, 1).fill_(9.0);  // the max sits in a late chunk
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {0}, false); }, {x}, t);
    Tensor rows = random_tensor({3, 200003}, dt, 81, -4.0, 4.0);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, true); }, {rows}, t);
    Tensor cols = random_tensor({300007, 3}, dt, 82, -4.0, 4.0);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {0}, false); }, {cols}, t);
    Tensor special = random_tensor({4, 300007}, dt, 83, -4.0, 4.0);
    special.select(0, 1).narrow(0, 250000, 1).fill_(std::numeric_limits<double>::quiet_NaN());
    special.select(0, 2).narrow(0, 290000, 1).fill_(std::numeric_limits<double>::infinity());
    special.select(0, 3).fill_(-std::numeric_limits<double>::infinity());
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, false); }, {special}, t, false);
    expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0].t(), {0}, false); }, {special}, t, false);
  }
}

TEST(CudaLogsumexp, MoreRowsThanGridBlocks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = random_tensor({70001, 40}, kFloat32, 90, -4.0, 4.0);
  expect_same_on_cuda([](const Inputs& v) { return logsumexp(v[0], {1}, false); }, {x}, tol_for(kFloat32));
}

TEST(CudaLogsumexp, Checks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // The op layer's checks stay in front of the kernels.
  expect_error<DTypeError>([] { logsumexp(zeros({3}, {.dtype = kInt64, .device = kDev}), {0}); }, "logsumexp");
  expect_error<DTypeError>(
      [] {
        cuda_backend::logsumexp(empty({1}, {.dtype = kInt32, .device = kDev}),
                                zeros({3}, {.dtype = kInt32, .device = kDev}), {1, 3, 1});
      },
      "logsumexp on CUDA: expected a floating-point input, got int32");
  expect_error<DTypeError>(
      [] {
        cuda_backend::logsumexp(empty({1}, {.dtype = kFloat64, .device = kDev}), zeros({3}, {.device = kDev}),
                                {1, 3, 1});
      },
      "logsumexp on CUDA: expected output dtype float32, got float64");
}

// ------------------------------------------------------------------ no host synchronisation

TEST(CudaScan, ForwardAndBackwardDoNotSynchronise) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = random_tensor({64, 3000}, kFloat32, 95).to(kDev).requires_grad_(true);
  Tensor big = random_tensor({1 << 20}, kFloat32, 96).to(kDev);
  auto step = [&] {
    Tensor y = cumsum(x, 1).sum() + logsumexp(x, {1}).sum() + logsumexp(big, {0}) + cumsum(big, 0).sum();
    y.backward();
  };
  step();  // warm-up: the caching allocator's blocks
  step();
  EXPECT_EQ(syncs_during(step), 0u);
  EXPECT_TRUE(x.grad().is_cuda());
}
