// Random fills on CUDA (kernels/random.cu) against the CPU's (src/ops/random.cpp) for the same
// generator state: rand / uniform_ / randint / bernoulli_ bit for bit, randn / normal_ within a
// few ulps (the device's logf/cosf and log/cos against glibc's); the generator's offset advances
// by the same number of counters on both devices; non-contiguous and misaligned destinations;
// sizes around the four elements of a Philox counter and beyond a full grid; the default
// generator; no host synchronisation. Every test that needs a device skips without one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

const std::vector<DType> kRandintTypes = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                          DType::i32, DType::i64, DType::u8};
// Around the four (or two) elements of a Philox counter, several blocks, an odd large size.
const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 7, 8, 9, 1001, (1 << 16) + 3};

/// The bytes of t's elements in row-major order (on the host).
std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor c = t.cpu().contiguous();
  std::vector<unsigned char> b(static_cast<size_t>(c.nbytes()));
  if (!b.empty()) std::memcpy(b.data(), c.data_ptr(), b.size());
  return b;
}

/// Same shape, dtype and bytes; reports the first differing element.
::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "shape/dtype " << shape_str(got.shape()) << " " << dtype_name(got.dtype())
                                         << " vs " << shape_str(want.shape()) << " " << dtype_name(want.dtype());
  const std::vector<unsigned char> g = bytes_of(got), w = bytes_of(want);
  const size_t es = itemsize(got.dtype());
  for (size_t i = 0; i < g.size(); i += es)
    if (std::memcmp(g.data() + i, w.data() + i, es) != 0) {
      const std::vector<double> gv = got.cpu().contiguous().to_vector<double>();
      const std::vector<double> wv = want.contiguous().to_vector<double>();
      return ::testing::AssertionFailure() << "element " << i / es << " of " << g.size() / es << ": got " << gv[i / es]
                                           << ", want " << wv[i / es];
    }
  return ::testing::AssertionSuccess();
}

/// A CPU and a CUDA generator in the same state (a non-zero offset, so the counter base matters).
struct Pair {
  Generator cpu, gpu;
  explicit Pair(uint64_t seed, uint64_t offset = 7) {
    cpu.set_state({seed, offset});
    gpu.set_state({seed, offset});
  }
  ::testing::AssertionResult same_state() const {
    if (cpu.state() == gpu.state()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "offsets: cpu " << cpu.state().offset << ", cuda " << gpu.state().offset;
  }
};

/// Relative spacing of dtype dt (one ulp at 1).
double epsilon_of(DType dt) {
  switch (dt) {
    case DType::f64: return std::numeric_limits<double>::epsilon();
    case DType::f16: return 1.0 / 1024.0;
    case DType::bf16: return 1.0 / 128.0;
    default: return std::numeric_limits<float>::epsilon();
  }
}

/// normal_ values: |got - want| <= 16 eps (|want| + |mean|) of the computation's float type (the
/// device's log/cos are within 1/2 ulp, glibc's within 1: the worst case is about 8 eps) plus,
/// for 16-bit types, one ulp of the result (a few-ulp float difference can cross a rounding
/// boundary), plus the smallest subnormal step. NaN is never expected. Returns the largest
/// difference seen in units of epsilon_of(dt) * (|want| + |mean|).
::testing::AssertionResult normal_close(const Tensor& got, const Tensor& want, double mean, double* worst = nullptr) {
  const DType dt = want.dtype();
  const std::vector<double> g = got.cpu().contiguous().to_vector<double>(), w = want.contiguous().to_vector<double>();
  if (g.size() != w.size()) return ::testing::AssertionFailure() << "sizes differ";
  const bool half = dt == DType::f16 || dt == DType::bf16;
  const double compute_eps = dt == DType::f64 ? std::numeric_limits<double>::epsilon()
                                              : std::numeric_limits<float>::epsilon();
  const double floor = dt == DType::f16 ? std::ldexp(1.0, -24) : std::numeric_limits<float>::denorm_min();
  double max_units = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(w[i]))
      return ::testing::AssertionFailure() << "NaN at element " << i << ": got " << g[i] << ", want " << w[i];
    const double scale = std::abs(w[i]) + std::abs(mean);
    const double tol = 16 * compute_eps * scale + (half ? epsilon_of(dt) * scale : 0.0) + floor;
    const double d = std::abs(g[i] - w[i]);
    if (scale > 0) max_units = std::max(max_units, d / (epsilon_of(dt) * scale));
    if (!(d <= tol))
      return ::testing::AssertionFailure() << "element " << i << ": got " << g[i] << ", want " << w[i] << " (|diff| "
                                           << d << " > " << tol << ")";
  }
  if (worst) *worst = std::max(*worst, max_units);
  return ::testing::AssertionSuccess();
}

}  // namespace

// ------------------------------------------------------------------ factories

TEST(CudaRandom, RandIsBitIdenticalToCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes)
    for (int64_t n : kSizes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " n " + std::to_string(n));
      Pair g(1234 + n);
      const Tensor c = rand({n}, {.dtype = dt}, &g.cpu);
      const Tensor d = rand({n}, {.dtype = dt, .device = kDev}, &g.gpu);
      ASSERT_TRUE(d.is_cuda());
      EXPECT_TRUE(same_bits(d, c));
      EXPECT_TRUE(g.same_state());
    }
  // Shapes, requires_grad and rand_like on the device.
  Pair g(5);
  const Tensor d = rand({3, 5, 2}, {.dtype = kFloat32, .device = kDev, .requires_grad = true}, &g.gpu);
  EXPECT_TRUE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_TRUE(same_bits(d, rand({3, 5, 2}, {}, &g.cpu)));
  const Tensor like = rand_like(d, &g.gpu);
  EXPECT_TRUE(like.is_cuda());
  EXPECT_FALSE(like.requires_grad());
  EXPECT_TRUE(same_bits(like, rand({3, 5, 2}, {}, &g.cpu)));
  EXPECT_TRUE(g.same_state());
}

TEST(CudaRandom, RandnWithinUlpsOfCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    double worst = 0;
    for (int64_t n : kSizes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " n " + std::to_string(n));
      Pair g(77 + n);
      const Tensor c = randn({n}, {.dtype = dt}, &g.cpu);
      const Tensor d = randn({n}, {.dtype = dt, .device = kDev}, &g.gpu);
      EXPECT_TRUE(normal_close(d, c, 0.0, &worst));
      EXPECT_TRUE(g.same_state());
    }
    // For the record in the GPU log: the largest difference in ulps of the dtype.
    std::cout << "[ randn ] " << dtype_name(dt) << ": largest CPU/CUDA difference " << worst << " ulp\n";
  }
  Pair g(8);
  EXPECT_TRUE(normal_close(randn_like(zeros({4, 9}, {.device = kDev}), &g.gpu), randn({4, 9}, {}, &g.cpu), 0.0));
  EXPECT_TRUE(g.same_state());
}

TEST(CudaRandom, RandintIsBitIdenticalToCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  struct Range {
    int64_t lo, hi;
  };
  for (DType dt : kRandintTypes) {
    std::vector<Range> ranges = {{0, 2}, {5, 6}};
    ranges.push_back(dt == DType::u8 ? Range{0, 256} : Range{-3, 10});
    if (dt == DType::i32 || dt == DType::i64 || is_floating(dt)) {
      ranges.push_back({-(int64_t{1} << 31), int64_t{1} << 31});  // range 2^32: still one word
      ranges.push_back({-1000000, 1000000});                      // f16: beyond 65504 -> inf, as the CPU
    }
    if (dt == DType::i64 || dt == DType::f64 || dt == DType::f32) {
      ranges.push_back({-(int64_t{1} << 40), int64_t{1} << 41});  // two words per element
      ranges.push_back({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
    }
    for (const Range& r : ranges)
      for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{6}, int64_t{1001}, int64_t{(1 << 16) + 1}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + ") n " +
                     std::to_string(n));
        Pair g(4321 + n);
        const Tensor c = randint(r.lo, r.hi, {n}, {.dtype = dt}, &g.cpu);
        const Tensor d = randint(r.lo, r.hi, {n}, {.dtype = dt, .device = kDev}, &g.gpu);
        EXPECT_TRUE(same_bits(d, c));
        EXPECT_TRUE(g.same_state());
      }
  }
}

// ------------------------------------------------------------------ in-place fills

TEST(CudaRandom, UniformIsBitIdenticalToCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  struct Range {
    double lo, hi;
  };
  // Ordinary ranges, an empty one (lo == hi), and ranges where lo + span * u rounds up to hi
  // for the largest u (f16 spacing 0.5 at 1000, bf16 spacing 0.5 at 100, f32 spacing 2^-13 at
  // 1000), which the fill replaces by lo to keep [lo, hi).
  const std::vector<Range> ranges = {{0, 1},    {-3.5, 7.25}, {2, 2},       {1000, 1001},
                                     {100, 101}, {-1e-3, 1e-3}, {1e30, 3e30}, {-65504, 65504}};
  for (DType dt : kFloatTypes)
    for (const Range& r : ranges)
      for (int64_t n : {int64_t{5}, int64_t{4096}, int64_t{(1 << 16) + 3}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) +
                     ") n " + std::to_string(n));
        Pair g(99 + n);
        Tensor c = empty({n}, {.dtype = dt});
        Tensor d = empty({n}, {.dtype = dt, .device = kDev});
        uniform_(c, r.lo, r.hi, &g.cpu);
        uniform_(d, r.lo, r.hi, &g.gpu);
        EXPECT_TRUE(same_bits(d, c));
        EXPECT_TRUE(g.same_state());
      }
}

TEST(CudaRandom, NormalWithinUlpsOfCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes)
    for (const auto& [mean, std] : std::vector<std::pair<double, double>>{{0, 1}, {3, 0.5}, {-2, 10}, {1, 0}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " mean " + std::to_string(mean) + " std " + std::to_string(std));
      Pair g(31);
      Tensor c = empty({(1 << 16) + 1}, {.dtype = dt});
      Tensor d = empty({(1 << 16) + 1}, {.dtype = dt, .device = kDev});
      normal_(c, mean, std, &g.cpu);
      normal_(d, mean, std, &g.gpu);
      EXPECT_TRUE(normal_close(d, c, mean));
      EXPECT_TRUE(g.same_state());
    }
}

TEST(CudaRandom, BernoulliIsBitIdenticalToCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType)
    for (double p : {0.0, 0.3, 0.5, 1.0})
      for (int64_t n : {int64_t{3}, int64_t{9}, int64_t{(1 << 16) + 3}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " p " + std::to_string(p) + " n " + std::to_string(n));
        Pair g(55 + n);
        Tensor c = zeros({n}, {.dtype = dt});
        Tensor d = zeros({n}, {.dtype = dt, .device = kDev});
        bernoulli_(c, p, &g.cpu);
        bernoulli_(d, p, &g.gpu);
        EXPECT_TRUE(same_bits(d, c));
        EXPECT_TRUE(g.same_state());
      }
}

// A transposed view (filled in its own row-major order, through a contiguous temporary on the
// device), a column slice (only it is written), and a contiguous view at an odd offset (the
// kernel's unaligned path): the whole base tensor equals the CPU's.
TEST(CudaRandom, NonContiguousAndMisalignedDestinations) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Pair g(123);
    Tensor bc = full({37, 29}, -7.0, {.dtype = dt});
    Tensor bd = full({37, 29}, -7.0, {.dtype = dt, .device = kDev});
    Tensor vc = bc.t(), vd = bd.t();
    uniform_(vc, -2.0, 3.0, &g.cpu);
    uniform_(vd, -2.0, 3.0, &g.gpu);
    EXPECT_TRUE(same_bits(bd, bc));
    Tensor cc = bc.select(1, 5), cd = bd.select(1, 5);
    bernoulli_(cc, 0.5, &g.cpu);
    bernoulli_(cd, 0.5, &g.gpu);
    EXPECT_TRUE(same_bits(bd, bc));
    Tensor oc = bc.view({-1}).narrow(0, 1, 1001), od = bd.view({-1}).narrow(0, 1, 1001);
    ASSERT_TRUE(od.is_contiguous());
    uniform_(oc, 0.0, 1.0, &g.cpu);
    uniform_(od, 0.0, 1.0, &g.gpu);
    EXPECT_TRUE(same_bits(bd, bc));
    Tensor nc = bc.narrow(1, 3, 20), nd = bd.narrow(1, 3, 20);
    normal_(nc, 1.0, 2.0, &g.cpu);
    normal_(nd, 1.0, 2.0, &g.gpu);
    EXPECT_TRUE(normal_close(bd, bc, 1.0));
    EXPECT_TRUE(g.same_state());
  }
  // Integer destinations of bernoulli_ through views too.
  Pair g(321);
  Tensor ic = zeros({16, 9}, {.dtype = kInt32}), id = zeros({16, 9}, {.dtype = kInt32, .device = kDev});
  Tensor icv = ic.t(), idv = id.t();
  bernoulli_(icv, 0.25, &g.cpu);
  bernoulli_(idv, 0.25, &g.gpu);
  EXPECT_TRUE(same_bits(id, ic));
  EXPECT_TRUE(g.same_state());
}

// Empty tensors draw nothing (the offset stays); more elements than a full grid covers
// (65535 blocks x 256 threads x 4 elements) exercise the grid-stride loop.
TEST(CudaRandom, EmptyAndBeyondOneGrid) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Pair g(9);
  EXPECT_EQ(rand({0, 3}, {.device = kDev}, &g.gpu).numel(), 0);
  Tensor e = empty({0}, {.device = kDev});
  uniform_(e, 0, 1, &g.gpu);
  normal_(e, 0, 1, &g.gpu);
  bernoulli_(e, 0.5, &g.gpu);
  EXPECT_EQ(randint(0, 5, {0}, {.device = kDev}, &g.gpu).numel(), 0);
  EXPECT_EQ(g.gpu.state().offset, 7u);
  const int64_t n = 65535LL * 256 * 4 + 4 * 1000 + 3;
  Tensor c = zeros({n}, {.dtype = kUInt8}), d = zeros({n}, {.dtype = kUInt8, .device = kDev});
  bernoulli_(c, 0.5, &g.cpu);
  bernoulli_(d, 0.5, &g.gpu);
  EXPECT_TRUE(same_bits(d, c));
  EXPECT_TRUE(g.same_state());
}

TEST(CudaRandom, DefaultGeneratorIsShared) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(2024);
  const Tensor d = rand({10}, {.device = kDev});
  const Tensor dn = randn({6}, {.dtype = kFloat64, .device = kDev});
  manual_seed(2024);
  const Tensor c = rand({10});
  const Tensor cn = randn({6}, {.dtype = kFloat64});
  EXPECT_TRUE(same_bits(d, c));
  EXPECT_TRUE(normal_close(dn, cn, 0.0));
}

TEST(CudaRandom, ErrorsAreChecked) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor i = zeros({4}, {.dtype = kInt32, .device = kDev});
  expect_error<DTypeError>([&] { uniform_(i, 0, 1); }, "uniform_: expected a floating-point dtype, got int32");
  expect_error<DTypeError>([] { randint(0, 2, {3}, {.dtype = kBool, .device = kDev}); }, "dtype bool");
  expect_error<ValueError>([] { rand({-1}, {.device = kDev}); }, "negative dimension");
  Generator g(1);
  const GeneratorState before = g.state();
  expect_error<DTypeError>(
      [&] { cuda_backend::random_fill(i, {.dist = cuda_backend::RandomDist::normal, .a = 0, .b = 1}, g); },
      "normal: expected a floating-point dtype, got int32");
  expect_error<ValueError>(
      [&] {
        cuda_backend::random_fill(zeros({3, 4}, {.device = kDev}).t(), {.dist = cuda_backend::RandomDist::uniform}, g);
      },
      "uniform on CUDA: expected a contiguous output");
  expect_error<ValueError>(
      [&] {
        cuda_backend::random_fill(i, {.dist = cuda_backend::RandomDist::randint, .low = 3, .high = 3}, g);
      },
      "randint: expected low < high, got low = 3 and high = 3");
  EXPECT_EQ(g.state(), before);  // a rejected fill reserves nothing
}

TEST(CudaRandom, FillsDoNotSynchronise) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Generator g(17);
  Tensor w = empty({64, 33}, {.device = kDev});
  Tensor wt = w.t();
  auto draws = [&] {
    Tensor a = rand({1000}, {.device = kDev}, &g);
    Tensor b = randn({1000}, {.dtype = kBFloat16, .device = kDev}, &g);
    Tensor c = randint(0, 10, {1000}, {.device = kDev}, &g);
    uniform_(w, -1, 1, &g);
    uniform_(wt, -1, 1, &g);  // non-contiguous: a device temporary and a device copy
    normal_(w, 0, 0.02, &g);
    bernoulli_(w, 0.5, &g);
  };
  draws();  // warm-up: the caching allocator's blocks
  EXPECT_EQ(syncs_during(draws), 0u);
}
