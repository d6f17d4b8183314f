// Random ops and range factories.
//
// The layout tests pin the stream layout documented at the top of src/ops/random.cpp, which
// the CUDA kernels must reproduce:
//   one word per element:  element i ← Philox(seed, offset + i/4), word i%4
//   two words per element: element i ← Philox(seed, offset + i/2), words 2(i%2), 2(i%2)+1
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include <ember/ember.hpp>

using namespace ember;

namespace {

std::array<uint32_t, 4> words(uint64_t seed, uint64_t counter) {
  std::array<uint32_t, 4> w{};
  Philox::generate(seed, counter, 0, w.data());
  return w;
}

uint32_t word1(uint64_t seed, uint64_t offset, int64_t i) { return words(seed, offset + i / 4)[i % 4]; }
std::pair<uint32_t, uint32_t> word2(uint64_t seed, uint64_t offset, int64_t i) {
  auto w = words(seed, offset + i / 2);
  return {w[2 * (i % 2)], w[2 * (i % 2) + 1]};
}

struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

/// Restores the thread count when a test changes it.
struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};

}  // namespace

// ------------------------------------------------------------------ Philox and the layout

TEST(Philox, KnownAnswers) {
  // Random123's kat_vectors for philox4x32_10.
  uint32_t out[4];
  Philox::generate(0, 0, 0, out);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
  Philox::generate(~0ull, ~0ull, ~0ull, out);
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
  // key (0xa4093822, 0x299f31d0), counter (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344)
  Philox::generate(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull, 0x0370734413198a2eull, out);
  EXPECT_EQ(out[0], 0xd16cfe09u);
  EXPECT_EQ(out[1], 0x94fdccebu);
  EXPECT_EQ(out[2], 0x5001e420u);
  EXPECT_EQ(out[3], 0x24126ea1u);
}

TEST(RandomLayout, RandFloat32OneWordPerElement) {
  Generator g(1234);
  g.set_state({1234, 5});  // a non-zero starting offset
  Tensor t = rand({3, 7}, {}, &g);
  EXPECT_EQ(g.state().offset, 5u + 6u);  // ceil(21 / 4) counters
  std::vector<float> v = t.to_vector<float>();
  for (int64_t i = 0; i < 21; ++i) {
    const uint32_t x = word1(1234, 5, i);
    EXPECT_EQ(v[i], static_cast<float>(x >> 8) / 16777216.0f) << "element " << i;
  }
}

TEST(RandomLayout, RandFloat64TwoWordsPerElement) {
  Generator g(99);
  Tensor t = rand({5}, {.dtype = kFloat64}, &g);
  EXPECT_EQ(g.state().offset, 3u);  // 10 words
  std::vector<double> v = t.to_vector<double>();
  for (int64_t i = 0; i < 5; ++i) {
    auto [a, b] = word2(99, 0, i);
    uint64_t bits = ((static_cast<uint64_t>(a) << 21) ^ (static_cast<uint64_t>(b) >> 11)) & ((1ull << 53) - 1);
    EXPECT_EQ(v[i], static_cast<double>(bits) / 9007199254740992.0) << "element " << i;
  }
}

TEST(RandomLayout, RandHalfTypesUseTheirOwnBits) {
  Generator g(5);
  std::vector<float> h = rand({9}, {.dtype = kFloat16}, &g).to_vector<float>();
  std::vector<float> b = rand({9}, {.dtype = kBFloat16}, &g).to_vector<float>();
  for (int64_t i = 0; i < 9; ++i) {
    EXPECT_EQ(h[i], static_cast<float>(word1(5, 0, i) >> 21) / 2048.0f);
    EXPECT_EQ(b[i], static_cast<float>(word1(5, 3, i) >> 24) / 256.0f);
  }
}

TEST(RandomLayout, RandnBoxMullerCosBranch) {
  Generator g(7);
  std::vector<float> f = randn({6}, {}, &g).to_vector<float>();
  std::vector<double> d = randn({5}, {.dtype = kFloat64}, &g).to_vector<double>();
  EXPECT_EQ(g.state().offset, 3u + 3u);
  for (int64_t i = 0; i < 6; ++i) {
    auto [a, b] = word2(7, 0, i);
    const double u1 = 1.0 - static_cast<double>(a >> 8) / 16777216.0;
    const double u2 = static_cast<double>(b >> 8) / 16777216.0;
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    EXPECT_NEAR(f[i], z, 2e-5 * (1.0 + std::abs(z))) << "element " << i;
  }
  for (int64_t i = 0; i < 5; ++i) {
    auto [a, b] = word2(7, 3, i);
    const double u1 = 1.0 - static_cast<double>(a) / 4294967296.0;
    const double u2 = static_cast<double>(b) / 4294967296.0;
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    EXPECT_NEAR(d[i], z, 1e-12) << "element " << i;
  }
}

TEST(RandomLayout, RandintMultiplyShiftAndWideModulo) {
  Generator g(11);
  std::vector<int64_t> v = randint(-3, 10, {9}, {.dtype = kInt64}, &g).to_vector<int64_t>();
  for (int64_t i = 0; i < 9; ++i) {
    EXPECT_EQ(v[i], -3 + static_cast<int64_t>((static_cast<uint64_t>(word1(11, 0, i)) * 13u) >> 32));
  }
  const uint64_t offset = g.state().offset;
  const int64_t lo = -(int64_t{1} << 40), hi = int64_t{1} << 41;
  std::vector<int64_t> w = randint(lo, hi, {5}, {.dtype = kInt64}, &g).to_vector<int64_t>();
  const uint64_t range = static_cast<uint64_t>(hi - lo);
  for (int64_t i = 0; i < 5; ++i) {
    auto [a, b] = word2(11, offset, i);
    EXPECT_EQ(w[i], lo + static_cast<int64_t>(((static_cast<uint64_t>(a) << 32) | b) % range));
  }
}

// uniform_(lo, hi) computes lo + (hi - lo) u in the type's compute precision (float for
// f32/f16/bf16, one rounded multiply and one rounded add: the CUDA kernel writes exactly these
// operations), rounds to the type, and replaces a value that rounds up to hi by lo.
TEST(RandomLayout, UniformRangeArithmeticAndHalfOpenInterval) {
  Generator g(13);
  Tensor f = empty({50});
  uniform_(f, -1.5, 2.25, &g);
  std::vector<float> fv = f.to_vector<float>();
  for (int64_t i = 0; i < 50; ++i) {
    volatile float prod = 3.75f * Philox::uniform(word1(13, 0, i));  // no contraction into an FMA
    const float v = -1.5f + prod;
    EXPECT_EQ(fv[i], v >= 2.25f ? -1.5f : v) << "element " << i;
  }
  // f16 spacing at 1000 is 0.5: lo + u rounds up to hi = 1001 for u >= 0.75.
  const uint64_t off = g.state().offset;
  Tensor h = empty({64}, {.dtype = kFloat16});
  uniform_(h, 1000.0, 1001.0, &g);
  std::vector<float> hv = h.to_vector<float>();
  int replaced = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const float u = static_cast<float>(word1(13, off, i) >> 21) / 2048.0f;
    const float rounded = static_cast<float>(Half(1000.0f + u));
    replaced += rounded >= 1001.0f;
    EXPECT_EQ(hv[i], rounded >= 1001.0f ? 1000.0f : rounded) << "element " << i;
    EXPECT_LT(hv[i], 1001.0f);
  }
  EXPECT_GT(replaced, 0);
  // f64: two words, in double.
  const uint64_t off2 = g.state().offset;
  Tensor d = empty({9}, {.dtype = kFloat64});
  uniform_(d, -3.0, 5.0, &g);
  std::vector<double> dv = d.to_vector<double>();
  for (int64_t i = 0; i < 9; ++i) {
    auto [a, b] = word2(13, off2, i);
    volatile double prod = 8.0 * Philox::uniform_double(a, b);
    EXPECT_EQ(dv[i], -3.0 + prod) << "element " << i;
  }
}

// randint into floating dtypes rounds the integer to the compute type, then to the dtype (f16:
// beyond 65519 is inf); bernoulli_ writes 1/0 in any dtype.
TEST(RandomLayout, RandintIntoFloatingTypesAndBernoulliIntoIntegers) {
  Generator g(17);
  std::vector<float> h = randint(0, 1000000, {40}, {.dtype = kFloat16}, &g).to_vector<float>();
  for (int64_t i = 0; i < 40; ++i) {
    const int64_t v = static_cast<int64_t>((static_cast<uint64_t>(word1(17, 0, i)) * 1000000u) >> 32);
    EXPECT_EQ(h[i], static_cast<float>(Half(static_cast<float>(v)))) << "element " << i;
  }
  const uint64_t off = g.state().offset;
  const int64_t lo = -(int64_t{1} << 60), hi = int64_t{1} << 60;
  std::vector<float> f = randint(lo, hi, {7}, {.dtype = kFloat32}, &g).to_vector<float>();
  for (int64_t i = 0; i < 7; ++i) {
    auto [a, b] = word2(17, off, i);
    const int64_t v = lo + static_cast<int64_t>(((static_cast<uint64_t>(a) << 32) | b) % static_cast<uint64_t>(hi - lo));
    EXPECT_EQ(f[i], static_cast<float>(v)) << "element " << i;
  }
  const uint64_t off3 = g.state().offset;
  Tensor u8 = zeros({11}, {.dtype = kUInt8});
  bernoulli_(u8, 0.7, &g);
  std::vector<int64_t> bv = u8.to_vector<int64_t>();
  for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(bv[i], Philox::uniform(word1(17, off3, i)) < 0.7 ? 1 : 0);
}

TEST(RandomLayout, RandpermFisherYates) {
  Generator g(3);
  std::vector<int64_t> p = randperm(10, &g).to_vector<int64_t>();
  std::vector<int64_t> expect(10);
  std::iota(expect.begin(), expect.end(), 0);
  for (int64_t k = 0; k < 9; ++k) {
    const int64_t i = 9 - k;
    const int64_t j =
        static_cast<int64_t>((static_cast<uint64_t>(word1(3, 0, k)) * static_cast<uint64_t>(i + 1)) >> 32);
    std::swap(expect[i], expect[j]);
  }
  EXPECT_EQ(p, expect);
  EXPECT_EQ(g.state().offset, 3u);  // 10 words
}

TEST(RandomLayout, BernoulliAndDropoutMasks) {
  Generator g(21);
  Tensor t = zeros({10});
  bernoulli_(t, 0.4, &g);
  std::vector<float> b = t.to_vector<float>();
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(b[i], Philox::uniform(word1(21, 0, i)) < 0.4 ? 1.0f : 0.0f);

  const uint64_t offset = g.state().offset;
  Tensor x = full({10}, 2.0);
  std::vector<float> d = dropout(x, 0.25, true, &g).to_vector<float>();
  for (int64_t i = 0; i < 10; ++i) {
    const bool keep = Philox::uniform(word1(21, offset, i)) >= 0.25;
    EXPECT_EQ(d[i], keep ? 2.0f / 0.75f : 0.0f) << "element " << i;
  }
}

// ------------------------------------------------------------------ determinism

TEST(Random, ManualSeedRepeats) {
  manual_seed(42);
  std::vector<float> a = rand({100}).to_vector<float>();
  std::vector<float> an = randn({100}).to_vector<float>();
  manual_seed(42);
  EXPECT_EQ(rand({100}).to_vector<float>(), a);
  EXPECT_EQ(randn({100}).to_vector<float>(), an);
  manual_seed(43);
  EXPECT_NE(rand({100}).to_vector<float>(), a);
  // Consecutive draws differ.
  manual_seed(42);
  rand({100});
  EXPECT_NE(rand({100}).to_vector<float>(), a);
}

TEST(Random, StateSaveRestore) {
  Generator g(2024);
  rand({13}, {}, &g);
  GeneratorState s = g.state();
  std::vector<double> first = randn({50}, {.dtype = kFloat64}, &g).to_vector<double>();
  std::vector<int64_t> ints = randint(0, 1000, {20}, {}, &g).to_vector<int64_t>();
  g.set_state(s);
  EXPECT_EQ(randn({50}, {.dtype = kFloat64}, &g).to_vector<double>(), first);
  EXPECT_EQ(randint(0, 1000, {20}, {}, &g).to_vector<int64_t>(), ints);
  g.manual_seed(2024);
  EXPECT_EQ(g.state(), (GeneratorState{2024, 0}));
}

TEST(Random, DefaultGeneratorIsUsedWhenNoneGiven) {
  manual_seed(8);
  std::vector<float> a = rand({16}).to_vector<float>();
  Generator g(8);
  EXPECT_EQ(rand({16}, {}, &g).to_vector<float>(), a);
}

TEST(Random, ThreadCountDoesNotChangeResults) {
  ThreadsGuard guard;
  const Shape shape{300001};  // several parallel chunks
  auto draw_all = [&] {
    Generator g(77);
    std::vector<std::vector<double>> r;
    r.push_back(rand(shape, {}, &g).to_vector<double>());
    r.push_back(rand(shape, {.dtype = kFloat64}, &g).to_vector<double>());
    r.push_back(randn(shape, {}, &g).to_vector<double>());
    r.push_back(randint(-5, 5, shape, {}, &g).to_vector<double>());
    Tensor x = ones(shape);
    r.push_back(dropout(x, 0.5, true, &g).to_vector<double>());
    return r;
  };
  set_num_threads(1);
  auto one = draw_all();
  set_num_threads(2);
  auto two = draw_all();
  set_num_threads(3);
  auto three = draw_all();
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

// ------------------------------------------------------------------ distributions

TEST(RandomStats, UniformMoments) {
  Generator g(1);
  for (DType dt : {kFloat32, kFloat64}) {
    std::vector<double> v = rand({1000000}, {.dtype = dt}, &g).to_vector<double>();
    auto [mn, mx] = std::minmax_element(v.begin(), v.end());
    EXPECT_GE(*mn, 0.0);
    EXPECT_LT(*mx, 1.0);
    Moments m = moments(v);
    // sd of the mean: sqrt(1/12)/1000 ≈ 2.9e-4; of the variance ≈ 7.5e-5.
    EXPECT_NEAR(m.mean, 0.5, 1.5e-3) << dtype_name(dt);
    EXPECT_NEAR(m.var, 1.0 / 12.0, 5e-4) << dtype_name(dt);
  }
}

TEST(RandomStats, HalfTypesStayBelowOne) {
  Generator g(2);
  for (DType dt : {kFloat16, kBFloat16}) {
    std::vector<double> v = rand({100000}, {.dtype = dt}, &g).to_vector<double>();
    EXPECT_LT(*std::max_element(v.begin(), v.end()), 1.0);
    EXPECT_GE(*std::min_element(v.begin(), v.end()), 0.0);
    EXPECT_NEAR(moments(v).mean, 0.5, 0.01);
    Tensor u = empty({100000}, {.dtype = dt});
    uniform_(u, -1.0, 0.99, &g);  // 0.99 rounds to 0.98828125 in bf16: the bound itself is representable
    std::vector<double> uv = u.to_vector<double>();
    EXPECT_LT(*std::max_element(uv.begin(), uv.end()),
              static_cast<double>(Tensor(full({1}, 0.99, {.dtype = dt})).item<float>()));
  }
}

TEST(RandomStats, NormalMoments) {
  Generator g(3);
  for (DType dt : {kFloat32, kFloat64}) {
    std::vector<double> v = randn({1000000}, {.dtype = dt}, &g).to_vector<double>();
    Moments m = moments(v);
    EXPECT_NEAR(m.mean, 0.0, 5e-3) << dtype_name(dt);
    EXPECT_NEAR(m.var, 1.0, 7e-3) << dtype_name(dt);
    // Tails: P(|z| > 2) = 0.0455; sd of the estimate ≈ 2.1e-4.
    double tail = 0;
    for (double x : v) tail += std::abs(x) > 2.0;
    EXPECT_NEAR(tail / 1e6, 0.0455, 1.5e-3) << dtype_name(dt);
    for (double x : v) ASSERT_TRUE(std::isfinite(x));
  }
  Tensor t = empty({500000}, {.dtype = kFloat64});
  normal_(t, 3.0, 2.0, &g);
  Moments m = moments(t.to_vector<double>());
  EXPECT_NEAR(m.mean, 3.0, 0.015);
  EXPECT_NEAR(m.var, 4.0, 0.04);
}

TEST(RandomStats, RandintCoversRangeUniformly) {
  Generator g(4);
  const int64_t lo = -4, hi = 6, n = 200000;
  std::vector<int64_t> v = randint(lo, hi, {n}, {.dtype = kInt64}, &g).to_vector<int64_t>();
  std::vector<int64_t> counts(hi - lo, 0);
  for (int64_t x : v) {
    ASSERT_GE(x, lo);
    ASSERT_LT(x, hi);
    ++counts[x - lo];
  }
  const double expected = static_cast<double>(n) / static_cast<double>(hi - lo);
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // 9 degrees of freedom: P(chi2 > 33.7) ≈ 1e-4.
  EXPECT_LT(chi2, 33.7);
  // Other dtypes.
  std::vector<int32_t> i32 = randint(0, 3, {1000}, {.dtype = kInt32}, &g).to_vector<int32_t>();
  EXPECT_TRUE(std::all_of(i32.begin(), i32.end(), [](int32_t x) { return x >= 0 && x < 3; }));
  std::vector<float> f = randint(2, 5, {1000}, {.dtype = kFloat32}, &g).to_vector<float>();
  EXPECT_TRUE(std::all_of(f.begin(), f.end(), [](float x) { return x == 2 || x == 3 || x == 4; }));
  std::vector<uint8_t> u = randint(250, 256, {1000}, {.dtype = kUInt8}, &g).to_vector<uint8_t>();
  EXPECT_TRUE(std::all_of(u.begin(), u.end(), [](uint8_t x) { return x >= 250; }));
}

TEST(RandomStats, RandpermIsAPermutation) {
  Generator g(5);
  for (int64_t n : {0, 1, 2, 17, 1000}) {
    std::vector<int64_t> p = randperm(n, &g).to_vector<int64_t>();
    ASSERT_EQ(static_cast<int64_t>(p.size()), n);
    std::vector<int64_t> s = p;
    std::sort(s.begin(), s.end());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(s[i], i);
  }
  // Each value lands in position 0 about equally often.
  std::vector<int> first(5, 0);
  for (int r = 0; r < 5000; ++r) ++first[randperm(5, &g).to_vector<int64_t>()[0]];
  for (int c : first) EXPECT_NEAR(c, 1000, 150);
  EXPECT_EQ(randperm(4).dtype(), kInt64);
}

TEST(RandomStats, BernoulliRate) {
  Generator g(6);
  Tensor t = empty({200000}, {.dtype = kFloat64});
  bernoulli_(t, 0.3, &g);
  EXPECT_NEAR(moments(t.to_vector<double>()).mean, 0.3, 5e-3);
  Tensor b = empty({100}, {.dtype = kBool});
  bernoulli_(b, 1.0, &g);
  for (bool x : b.to_vector<bool>()) EXPECT_TRUE(x);
  Tensor i = full({100}, 7, {.dtype = kInt32});
  bernoulli_(i, 0.0, &g);
  for (int32_t x : i.to_vector<int32_t>()) EXPECT_EQ(x, 0);
}

// ------------------------------------------------------------------ in-place fills

TEST(Random, InPlaceFillsNonContiguousAndBumpVersion) {
  Generator g(9);
  Tensor base = full({4, 6}, -100.0);
  Tensor view = base.t();  // (6, 4), non-contiguous
  const uint64_t v0 = base.storage()->version();
  uniform_(view, 2.0, 3.0, &g);
  EXPECT_GT(base.storage()->version(), v0);
  for (float x : base.to_vector<float>()) {
    EXPECT_GE(x, 2.0f);
    EXPECT_LT(x, 3.0f);
  }
  // The view's row-major order follows the stream: same numbers as a contiguous draw.
  Generator g2(9);
  Tensor c = empty({6, 4});
  uniform_(c, 2.0, 3.0, &g2);
  EXPECT_EQ(view.to_vector<float>(), c.to_vector<float>());
  // Only the slice is written.
  Tensor z = zeros({3, 4});
  Tensor col = z.select(1, 2);
  normal_(col, 10.0, 1.0, &g);
  std::vector<float> zv = z.to_vector<float>();
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t k = 0; k < 4; ++k) {
      if (k == 2)
        EXPECT_GT(zv[r * 4 + k], 4.0f);
      else
        EXPECT_EQ(zv[r * 4 + k], 0.0f);
    }
}

TEST(Random, InPlaceFillsAndAutograd) {
  Tensor w = empty({3}).requires_grad_();
  EXPECT_THROW(uniform_(w), AutogradError);
  EXPECT_THROW(normal_(w), AutogradError);
  {
    NoGradGuard ng;
    uniform_(w, -1.0, 1.0);
    normal_(w, 0.0, 0.02);
  }
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_leaf());
}

TEST(Random, FactoryOptions) {
  Tensor r = rand({2, 3}, {.dtype = kFloat64, .requires_grad = true});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.dtype(), kFloat64);
  EXPECT_TRUE(r.requires_grad());
  Tensor like = randn_like(r);
  EXPECT_EQ(like.shape(), r.shape());
  EXPECT_EQ(like.dtype(), kFloat64);
  EXPECT_FALSE(like.requires_grad());
  EXPECT_EQ(rand_like(tensor<float>({1, 2})).dtype(), kFloat32);
  EXPECT_EQ(rand({0}).numel(), 0);
  EXPECT_EQ(randn({}).dim(), 0);
  EXPECT_EQ(randint(0, 2, {3, 0}).numel(), 0);
  EXPECT_EQ(randint(0, 2, {3}).dtype(), kInt64);
}

// ------------------------------------------------------------------ dropout

TEST(Dropout, ForwardRules) {
  Generator g(10);
  Tensor x = full({100000}, 3.0);
  const double p = 0.3;
  std::vector<float> y = dropout(x, p, true, &g).to_vector<float>();
  int64_t kept = 0;
  for (float v : y) {
    if (v != 0.0f) {
      ++kept;
      EXPECT_FLOAT_EQ(v, static_cast<float>(3.0 / 0.7));
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / 1e5, 0.7, 5e-3);
  // Evaluation mode and p == 0 are the identity; p == 1 gives zeros.
  EXPECT_TRUE(dropout(x, p, false, &g).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true, &g).is_same(x));
  for (float v : dropout(x, 1.0, true, &g).to_vector<float>()) EXPECT_EQ(v, 0.0f);
  // Non-contiguous input.
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  Generator g1(5), g2(5);
  EXPECT_EQ(dropout(a, 0.5, true, &g1).to_vector<float>(), dropout(a.contiguous(), 0.5, true, &g2).to_vector<float>());
  // 16-bit input computes in f32.
  Tensor h = full({1000}, 1.0, {.dtype = kBFloat16});
  for (float v : dropout(h, 0.5, true, &g).to_vector<float>()) EXPECT_TRUE(v == 0.0f || v == 2.0f);
}

TEST(Dropout, BackwardUsesTheSameMask) {
  Generator g(12);
  Tensor x = rand({50}, {.dtype = kFloat64}, &g).requires_grad_();
  Tensor y = dropout(x, 0.4, true, &g);
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(y.grad_fn()->name(), "DropoutBackward");
  y.backward(ones({50}, {.dtype = kFloat64}));
  std::vector<double> yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(gv[i], yv[i] == 0.0 ? 0.0 : 1.0 / 0.6) << i;
  // gradcheck with a fixed mask: restore the generator state before each evaluation.
  const GeneratorState s = g.state();
  auto r = autograd::gradcheck(
      [&](const std::vector<Tensor>& in) {
        g.set_state(s);
        return dropout(in[0], 0.4, true, &g);
      },
      {rand({4, 5}, {.dtype = kFloat64}).requires_grad_()});
  EXPECT_TRUE(r.ok) << r.message;
}

// ------------------------------------------------------------------ ranges

TEST(Range, Arange) {
  Tensor a = arange(5);
  EXPECT_EQ(a.dtype(), kInt64);
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0, 10, 3).to_vector<int64_t>(), (std::vector<int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(arange(5, 0, -2).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(arange(-3, -3).numel(), 0);
  Tensor f = arange(1.0, 2.5, 0.5);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.0f, 1.5f, 2.0f}));
  EXPECT_EQ(arange(0, 1, 0.1).numel(), 10);
  EXPECT_EQ(arange(0.0, 1.0001, 0.25).numel(), 5);
  Tensor d = arange(0, 4, 1, {.dtype = kFloat64});
  EXPECT_EQ(d.dtype(), kFloat64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(arange(3, {.dtype = kInt32}).to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2}));
  Tensor h = arange(0.5, 2.0, 0.5, {.dtype = kFloat16});
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{0.5f, 1.0f, 1.5f}));
  EXPECT_TRUE(arange(3, {.dtype = kFloat32, .requires_grad = true}).requires_grad());
}

TEST(Range, ArangeErrors) {
  EXPECT_THROW(arange(0, 5, 0), ValueError);
  EXPECT_THROW(arange(0.0, 5.0, 0.0), ValueError);
  try {
    arange(0, 5, -1);
    ADD_FAILURE() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("inconsistent with step sign"), std::string::npos) << e.what();
  }
  EXPECT_THROW(arange(5.0, 0.0, 0.5), ValueError);
  EXPECT_THROW(arange(0.0, std::numeric_limits<double>::infinity(), 1.0), ValueError);
  EXPECT_THROW(arange(3, {.dtype = kBool}), DTypeError);
}

TEST(Range, Linspace) {
  EXPECT_EQ(linspace(0, 1, 5).to_vector<float>(), (std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1}));
  EXPECT_EQ(linspace(2, 3, 1).to_vector<float>(), (std::vector<float>{2}));
  EXPECT_EQ(linspace(2, 3, 0).numel(), 0);
  EXPECT_EQ(linspace(1, -1, 3).to_vector<float>(), (std::vector<float>{1, 0, -1}));
  // The symmetric formula: the first half counts from start, the second from end.
  std::vector<double> v = linspace(0.0, 1.0, 11, {.dtype = kFloat64}).to_vector<double>();
  const double step = 1.0 / 10.0;
  for (int64_t i = 0; i < 11; ++i) {
    const double expect = i < 5 ? 0.0 + step * static_cast<double>(i) : 1.0 - step * static_cast<double>(10 - i);
    EXPECT_EQ(v[i], expect) << i;
  }
  EXPECT_EQ(v.back(), 1.0);
  EXPECT_EQ(linspace(0, 10, 6, {.dtype = kInt64}).to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 4, 6, 8, 10}));
  EXPECT_THROW(linspace(0, 1, -1), ValueError);
  EXPECT_THROW(linspace(0, std::nan(""), 3), ValueError);
}

TEST(Range, Eye) {
  EXPECT_EQ(eye(3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  Tensor r = eye(2, 3, {.dtype = kInt64});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(eye(3, 2, {.dtype = kBool}).to_vector<bool>(), (std::vector<bool>{true, false, false, true, false, false}));
  EXPECT_EQ(eye(0).shape(), (Shape{0, 0}));
  EXPECT_THROW(eye(-1), ValueError);
}

// ------------------------------------------------------------------ errors

TEST(RandomErrors, BadArguments) {
  EXPECT_THROW(rand({2}, {.dtype = kInt64}), DTypeError);
  EXPECT_THROW(randn({2}, {.dtype = kInt32}), DTypeError);
  EXPECT_THROW(rand({-1, 2}), ValueError);
  EXPECT_THROW(randint(3, 3, {2}), ValueError);
  EXPECT_THROW(randint(0, 300, {2}, {.dtype = kUInt8}), ValueError);
  EXPECT_THROW(randint(0, 2, {2}, {.dtype = kBool}), DTypeError);
  EXPECT_THROW(randint(0, 2, {2}, {.dtype = kInt64, .requires_grad = true}), DTypeError);
  EXPECT_THROW(randperm(-1), ValueError);
  Tensor i = zeros({3}, {.dtype = kInt64});
  EXPECT_THROW(uniform_(i), DTypeError);
  EXPECT_THROW(normal_(i), DTypeError);
  Tensor f = zeros({3});
  EXPECT_THROW(uniform_(f, 1.0, 0.0), ValueError);
  EXPECT_THROW(uniform_(f, 0.0, std::numeric_limits<double>::infinity()), ValueError);
  EXPECT_THROW(normal_(f, 0.0, -1.0), ValueError);
  EXPECT_THROW(bernoulli_(f, 1.5), ValueError);
  EXPECT_THROW(bernoulli_(f, -0.1), ValueError);
  EXPECT_THROW(dropout(f, 1.01), ValueError);
  EXPECT_THROW(dropout(f, -0.5, false), ValueError);
  EXPECT_THROW(dropout(i, 0.5), DTypeError);
  EXPECT_THROW(dropout(Tensor(), 0.5), ValueError);
}

TEST(RandomErrors, CudaWithoutDevice) {
  if (cuda::is_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(rand({2}, {.device = Device::cuda()}), DeviceError);
  EXPECT_THROW(arange(3, {.dtype = kInt64, .device = Device::cuda()}), DeviceError);
}
