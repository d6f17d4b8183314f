// logsumexp on CUDA against the CPU backend (the truth): every dtype, every dim,
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

const std::vector<DType> kFloatTypes = {DType::f32, DType::f64, DType::f16, DType::bf16};
const std::vector<DType> kEveryType = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                      DType::i32, DType::i64, DType::u8,  DType::boolean};
const Device kDev = Device::cuda(0);
const Tol kExact{0, 0};

/// Values of dtype dt on the CPU. Floating types: multiples of 2^-10 in [-2, 2) (also after
/// rounding to f16/bf16), so every partial sum of up to 2^40 of them is exact in double and
/// cumsum gives the same numbers whatever the order of the additions: the forward results must
/// be bit-identical to the CPU's. Integers in a range that fits (u8 0..200, bool 0/1, others
/// -50..50).
Tensor values_of(const Shape& shape, DType dt, uint32_t seed) {
  std::mt19937 rng(seed);
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (is_floating(dt)) {
    std::uniform_int_distribution<int64_t> k(-2048, 2047);
    std::vector<double> v(static_cast<size_t>(n));
    for (double& x : v) x = static_cast<double>(k(rng)) / 1024.0;
    return tensor<double>(v, shape).to(dt);
  }
  std::uniform_int_distribution<int64_t> u(dt == DType::u8 || dt == DType::boolean ? 0 : -50,
                                           dt == DType::u8 ? 200 : 50);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t& x : v) x = dt == DType::boolean ? (u(rng) & 1) : u(rng);
  Tensor t = tensor<int64_t>(v, shape);
  return dt == DType::boolean ? ne(t, 0) : t.to(dt);
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

// Syncs added by fn().
template <class F>
uint64_t syncs_during(F&& fn) {
  const uint64_t before = cuda::host_sync_count();
  fn();
  return cuda::host_sync_count() - before;
}

}  // namespace

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
    Tensor y = logsumexp(x, {1}).sum() + logsumexp(big, {0});
    y.backward();
  };
  step();  // warm-up: the caching allocator's blocks
  step();
  EXPECT_EQ(syncs_during(step), 0u);
  EXPECT_TRUE(x.grad().is_cuda());
}
