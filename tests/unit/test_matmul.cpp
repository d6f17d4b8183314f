// matmul / mm / bmm / dot / linear and the CPU GEMM behind them, against a naive triple loop in
// double, central differences in f64, and every error path.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "ember/backend/cpu.hpp"
#include "ember/ember.hpp"

namespace ember {
namespace {

std::vector<double> rand_values(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(gen);
  return v;
}

Tensor rand_t(const Shape& shape, DType dt, uint64_t seed) {
  const int64_t n = numel_of(shape);
  if (n == 0) return empty(shape, {.dtype = dt});
  return tensor(rand_values(n, seed), shape, {.dtype = dt});
}

// ---------------------------------------------------------------- naive reference
struct Ref {
  Shape shape;
  std::vector<double> v;
};

// torch.matmul semantics written out with index arithmetic (no library op involved).
Ref ref_matmul(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  Shape sa = a.shape(), sb = b.shape();
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const size_t nd = std::max(ba.size(), bb.size());
  while (ba.size() < nd) ba.insert(ba.begin(), 1);
  while (bb.size() < nd) bb.insert(bb.begin(), 1);
  Shape bo(nd);
  for (size_t i = 0; i < nd; ++i) bo[i] = ba[i] == 1 ? bb[i] : ba[i];
  const int64_t nb = numel_of(bo);
  Ref r;
  r.v.assign(static_cast<size_t>(nb * m * n), 0.0);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, ia = 0, ib = 0, mul_a = 1, mul_b = 1;
    for (size_t d = nd; d-- > 0;) {
      const int64_t idx = rem % bo[d];
      rem /= bo[d];
      ia += (ba[d] == 1 ? 0 : idx) * mul_a;
      ib += (bb[d] == 1 ? 0 : idx) * mul_b;
      mul_a *= ba[d];
      mul_b *= bb[d];
    }
    const double* pa = av.data() + ia * m * k;
    const double* pb = bv.data() + ib * k * n;
    double* po = r.v.data() + bi * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += pa[i * k + p] * pb[p * n + j];
        po[i * n + j] = s;
      }
  }
  r.shape = bo;
  if (!a1) r.shape.push_back(m);
  if (!b1) r.shape.push_back(n);
  return r;
}

struct Tol {
  double atol, rtol;
};

Tol tol_for(DType dt, int64_t k) {
  switch (dt) {
    case DType::f64: return {1e-12 * (k + 1), 1e-12};
    case DType::f32: return {2e-6 * (k + 1), 1e-5};
    case DType::f16: return {1e-3 + 1e-5 * k, 2e-3};
    case DType::bf16: return {8e-3 + 1e-4 * k, 1.6e-2};
    default: return {0, 0};
  }
}

::testing::AssertionResult matches(const Tensor& out, const Ref& ref, Tol tol) {
  if (out.shape() != ref.shape)
    return ::testing::AssertionFailure() << "shape " << shape_str(out.shape()) << " != " << shape_str(ref.shape);
  const std::vector<double> ov = out.to_vector<double>();
  for (size_t i = 0; i < ov.size(); ++i) {
    const double diff = std::abs(ov[i] - ref.v[i]);
    if (!(diff <= tol.atol + tol.rtol * std::abs(ref.v[i])))  // NaN fails too
      return ::testing::AssertionFailure() << "element " << i << ": got " << ov[i] << ", expected " << ref.v[i];
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult matmul_matches(const Tensor& a, const Tensor& b) {
  const int64_t k = a.size(-1);
  return matches(matmul(a, b), ref_matmul(a, b), tol_for(a.dtype(), k));
}

const DType kFloatDTypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

// ---------------------------------------------------------------- values
TEST(MatmulValues, MmOddSizesAllFloatDTypes) {
  const int64_t sizes[][3] = {{1, 1, 1},    {1, 7, 33},      {7, 33, 1}, {33, 65, 127}, {127, 1, 65},
                              {65, 127, 7}, {127, 127, 127}, {7, 7, 7},  {1, 127, 1},   {33, 33, 65}};
  uint64_t seed = 1;
  for (DType dt : kFloatDTypes) {
    for (const auto& s : sizes) {
      Tensor a = rand_t({s[0], s[2]}, dt, seed++);
      Tensor b = rand_t({s[2], s[1]}, dt, seed++);
      EXPECT_TRUE(matmul_matches(a, b)) << dtype_name(dt) << " m=" << s[0] << " n=" << s[1] << " k=" << s[2];
      Tensor c = mm(a, b);
      EXPECT_TRUE(matches(c, ref_matmul(a, b), tol_for(dt, s[2]))) << "mm " << dtype_name(dt);
      EXPECT_EQ(c.dtype(), dt);
    }
  }
}

TEST(MatmulValues, RankCombinations) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{7}, {7}},                 // dot
      {{7}, {7, 5}},              // vector · matrix
      {{5, 7}, {7}},              // matrix · vector
      {{7}, {3, 7, 5}},           // vector · batch
      {{3, 5, 7}, {7}},           // batch · vector (folded)
      {{3, 5, 7}, {7, 4}},        // batch · matrix (folded into one GEMM)
      {{2, 3, 5, 7}, {7, 4}},     // 4-d · matrix
      {{5, 7}, {3, 7, 4}},        // matrix · batch (broadcast left)
      {{3, 5, 7}, {3, 7, 4}},     // bmm-like
      {{2, 1, 3, 4}, {5, 4, 6}},  // broadcast both ways → (2, 5, 3, 6)
      {{1, 3, 4}, {2, 1, 4, 2}},  // broadcast, ranks differ
      {{4, 1, 2, 3}, {1, 5, 3, 2}},
      {{1, 7}, {7, 1}},
  };
  uint64_t seed = 100;
  for (DType dt : kFloatDTypes) {
    for (const auto& [sa, sb] : cases) {
      Tensor a = rand_t(sa, dt, seed++);
      Tensor b = rand_t(sb, dt, seed++);
      EXPECT_TRUE(matmul_matches(a, b)) << dtype_name(dt) << " " << shape_str(sa) << " · " << shape_str(sb);
    }
  }
  Tensor a = rand_t({2, 1, 3, 4}, kFloat32, 1), b = rand_t({5, 4, 6}, kFloat32, 2);
  EXPECT_EQ(matmul(a, b).shape(), (Shape{2, 5, 3, 6}));
  EXPECT_EQ(a.matmul(b).shape(), (Shape{2, 5, 3, 6}));
  EXPECT_EQ(matmul(rand_t({7}, kFloat32, 3), rand_t({7}, kFloat32, 4)).dim(), 0);
}

TEST(MatmulValues, TransposedOperandsNeedNoCopy) {
  // A transposed 2-d view is a column-major matrix: the GEMM takes it through its 'T' flag.
  Tensor at = rand_t({65, 33}, kFloat32, 7).t();
  EXPECT_FALSE(at.is_contiguous());
  EXPECT_TRUE(cpu::gemm_layout_ok(at));
  EXPECT_TRUE(cpu::gemm_layout_ok(rand_t({3, 4, 5}, kFloat32, 1).transpose(-1, -2)));
  EXPECT_FALSE(cpu::gemm_layout_ok(rand_t({4, 10}, kFloat32, 1).slice(1, 0, 10, 2)));
  for (DType dt : kFloatDTypes) {
    Tensor a = rand_t({33, 65}, dt, 11).t();   // (65, 33)
    Tensor b = rand_t({127, 33}, dt, 12).t();  // (33, 127)
    EXPECT_TRUE(matmul_matches(a, b)) << dtype_name(dt) << " TT";
    Tensor b2 = rand_t({33, 127}, dt, 13);
    EXPECT_TRUE(matmul_matches(a, b2)) << dtype_name(dt) << " TN";
    Tensor a2 = rand_t({65, 33}, dt, 14);
    EXPECT_TRUE(matmul_matches(a2, b)) << dtype_name(dt) << " NT";
    // Batched transposes.
    Tensor x = rand_t({3, 7, 5}, dt, 15).transpose(1, 2);  // (3, 5, 7)
    Tensor y = rand_t({3, 4, 7}, dt, 16).transpose(1, 2);  // (3, 7, 4)
    EXPECT_TRUE(matmul_matches(x, y)) << dtype_name(dt) << " batched TT";
    EXPECT_TRUE(matmul_matches(x, rand_t({7, 4}, dt, 17))) << dtype_name(dt) << " batched T · matrix";
  }
}

TEST(MatmulValues, SlicedAndBroadcastOperands) {
  for (DType dt : kFloatDTypes) {
    Tensor base = rand_t({40, 70}, dt, 21);
    Tensor a = base.narrow(0, 3, 33).narrow(1, 1, 65);        // row-major with ld 70
    Tensor b = rand_t({130, 7}, dt, 22).slice(0, 0, 130, 2);  // row stride 14
    EXPECT_TRUE(matmul_matches(a, b)) << dtype_name(dt);
    Tensor c = rand_t({7, 20}, dt, 23).slice(1, 0, 20, 3);  // (7, 7) with stride 3 in the last dim
    EXPECT_TRUE(matmul_matches(c, rand_t({7, 5}, dt, 24))) << dtype_name(dt) << " strided last dim";
    EXPECT_TRUE(matmul_matches(rand_t({5, 7}, dt, 25), c)) << dtype_name(dt) << " strided last dim rhs";
    // Expanded (stride-0) operands: rows all equal, or batch entries all equal.
    Tensor row = rand_t({1, 9}, dt, 26).expand({6, 9});
    EXPECT_TRUE(matmul_matches(row, rand_t({9, 4}, dt, 27))) << dtype_name(dt) << " expanded rows";
    Tensor shared = rand_t({1, 9, 4}, dt, 28).expand({5, 9, 4});
    EXPECT_TRUE(matmul_matches(rand_t({5, 3, 9}, dt, 29), shared)) << dtype_name(dt) << " expanded batch";
    // Strided vectors.
    Tensor v = rand_t({21}, dt, 30).slice(0, 0, 21, 3);  // 7 elements, stride 3
    EXPECT_TRUE(matmul_matches(v, rand_t({7}, dt, 31))) << dtype_name(dt) << " strided dot";
    EXPECT_TRUE(matmul_matches(rand_t({4, 7}, dt, 32), v)) << dtype_name(dt) << " strided matvec";
    // Permuted batch dims (not foldable): goes through the batched path.
    Tensor p = rand_t({5, 3, 7}, dt, 33).permute({1, 0, 2});  // (3, 5, 7)
    EXPECT_TRUE(matmul_matches(p, rand_t({7, 2}, dt, 34))) << dtype_name(dt) << " permuted batch";
  }
}

TEST(MatmulValues, ZeroSizeDims) {
  for (DType dt : kFloatDTypes) {
    Tensor z = matmul(rand_t({3, 0}, dt, 1), rand_t({0, 4}, dt, 2));  // k = 0: an empty sum
    ASSERT_EQ(z.shape(), (Shape{3, 4}));
    for (double v : z.to_vector<double>()) EXPECT_EQ(v, 0.0);
    EXPECT_EQ(matmul(rand_t({0, 5}, dt, 3), rand_t({5, 4}, dt, 4)).shape(), (Shape{0, 4}));
    EXPECT_EQ(matmul(rand_t({3, 5}, dt, 3), rand_t({5, 0}, dt, 4)).shape(), (Shape{3, 0}));
    EXPECT_EQ(matmul(rand_t({0, 3, 5}, dt, 3), rand_t({5, 2}, dt, 4)).shape(), (Shape{0, 3, 2}));
    EXPECT_EQ(matmul(rand_t({2, 0, 3, 5}, dt, 3), rand_t({1, 5, 2}, dt, 4)).shape(), (Shape{2, 0, 3, 2}));
    Tensor zb = bmm(rand_t({2, 3, 0}, dt, 5), rand_t({2, 0, 4}, dt, 6));
    ASSERT_EQ(zb.shape(), (Shape{2, 3, 4}));
    for (double v : zb.to_vector<double>()) EXPECT_EQ(v, 0.0);
    Tensor zd = dot(rand_t({0}, dt, 7), rand_t({0}, dt, 8));
    EXPECT_EQ(zd.dim(), 0);
    EXPECT_EQ(zd.item<double>(), 0.0);
    Tensor zl = linear(rand_t({4, 0}, dt, 9), rand_t({3, 0}, dt, 10), ones({3}, {.dtype = dt}));
    ASSERT_EQ(zl.shape(), (Shape{4, 3}));
    for (double v : zl.to_vector<double>()) EXPECT_EQ(v, 1.0);
  }
}

TEST(MatmulValues, IntegerMatmulIsExact) {
  for (DType dt : {kInt32, kInt64}) {
    std::vector<int64_t> av(5 * 7), bv(7 * 3);
    for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<int64_t>(i % 11) - 5;
    for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<int64_t>(i % 7) - 3;
    Tensor a = tensor(av, {5, 7}).to(dt), b = tensor(bv, {7, 3}).to(dt);
    Tensor c = matmul(a, b);
    EXPECT_EQ(c.dtype(), dt);
    EXPECT_TRUE(matches(c, ref_matmul(a, b), {0, 0}));
    Tensor ae = a.view({1, 5, 7}).expand({2, 5, 7});
    EXPECT_TRUE(matches(matmul(ae, b), ref_matmul(ae, b), {0, 0}));
    EXPECT_TRUE(
        matches(matmul(a.t(), tensor(av, {5, 7}).to(dt)), ref_matmul(a.t(), tensor(av, {5, 7}).to(dt)), {0, 0}));
  }
}

TEST(MatmulValues, BmmDotAndLinear) {
  uint64_t seed = 300;
  for (DType dt : kFloatDTypes) {
    Tensor a = rand_t({4, 33, 7}, dt, seed++), b = rand_t({4, 7, 65}, dt, seed++);
    EXPECT_TRUE(matches(bmm(a, b), ref_matmul(a, b), tol_for(dt, 7))) << dtype_name(dt);
    Tensor u = rand_t({127}, dt, seed++), v = rand_t({127}, dt, seed++);
    EXPECT_TRUE(matches(dot(u, v), ref_matmul(u, v), tol_for(dt, 127))) << dtype_name(dt);

    // linear(x, w, b) = x · wᵀ + b over the last dim, for 1-d, 2-d and 3-d x.
    Tensor w = rand_t({5, 7}, dt, seed++), bias = rand_t({5}, dt, seed++);
    const std::vector<double> bv = bias.to_vector<double>();
    for (const Shape& xs : {Shape{7}, Shape{3, 7}, Shape{2, 3, 7}}) {
      Tensor x = rand_t(xs, dt, seed++);
      Ref r = ref_matmul(x, w.t());
      EXPECT_TRUE(matches(linear(x, w), r, tol_for(dt, 7))) << dtype_name(dt) << " no bias " << shape_str(xs);
      for (size_t i = 0; i < r.v.size(); ++i) r.v[i] += bv[i % 5];
      EXPECT_TRUE(matches(linear(x, w, bias), r, tol_for(dt, 7))) << dtype_name(dt) << " bias " << shape_str(xs);
    }
    // Transposed (non-contiguous) input.
    Tensor xt = rand_t({7, 3}, dt, seed++).t();
    Ref r = ref_matmul(xt, w.t());
    EXPECT_TRUE(matches(linear(xt, w), r, tol_for(dt, 7))) << dtype_name(dt) << " transposed input";
  }
}

TEST(MatmulValues, ManySmallBatchesAndThreadCounts) {
  // Small matrices take the batch-parallel path, large ones the threaded-GEMM path; both must
  // give the same values at 1 and 2 threads.
  const int saved = get_num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (DType dt : {kFloat32, kFloat64}) {
      Tensor a = rand_t({64, 5, 7}, dt, 41), b = rand_t({64, 7, 3}, dt, 42);
      EXPECT_TRUE(matmul_matches(a, b)) << threads << " threads, small batches";
      Tensor c = rand_t({3, 130, 120}, dt, 43), d = rand_t({3, 120, 110}, dt, 44);
      EXPECT_TRUE(matmul_matches(c, d)) << threads << " threads, large batches";
      Tensor c2 = rand_t({4, 110, 100}, dt, 47), d2 = rand_t({4, 100, 120}, dt, 48);
      EXPECT_TRUE(matmul_matches(c2, d2)) << threads << " threads, large batches split across threads";
      Tensor e = rand_t({300, 260}, dt, 45), f = rand_t({260, 270}, dt, 46);
      EXPECT_TRUE(matmul_matches(e, f)) << threads << " threads, single large";
    }
  }
  set_num_threads(saved);
}

TEST(MatmulValues, CorrectFromAnotherThread) {
  // OpenMP's thread count is per-thread state; a fresh std::thread must still get right values.
  Tensor a = rand_t({200, 150}, kFloat32, 51), b = rand_t({150, 170}, kFloat32, 52);
  ::testing::AssertionResult ok = ::testing::AssertionFailure();
  std::thread t([&] { ok = matmul_matches(a, b); });
  t.join();
  EXPECT_TRUE(ok);
}

// ---------------------------------------------------------------- backend contract
TEST(MatmulBackend, BetaZeroDoesNotReadOutput) {
  for (DType dt : kFloatDTypes) {
    Tensor a = rand_t({9, 5}, dt, 61), b = rand_t({5, 6}, dt, 62);
    Tensor c = full({9, 6}, std::numeric_limits<double>::quiet_NaN(), {.dtype = dt});
    cpu::gemm(c, a, b);
    EXPECT_TRUE(matches(c, ref_matmul(a, b), tol_for(dt, 5))) << dtype_name(dt);
  }
}

TEST(MatmulBackend, AlphaBetaAndStridedOutput) {
  for (DType dt : kFloatDTypes) {
    Tensor a = rand_t({2, 9, 5}, dt, 63), b = rand_t({2, 5, 6}, dt, 64);
    Tensor c0 = rand_t({2, 9, 6}, dt, 65);
    Ref r = ref_matmul(a, b);
    const std::vector<double> cv = c0.to_vector<double>();
    for (size_t i = 0; i < r.v.size(); ++i) r.v[i] = 2.0 * r.v[i] + 0.5 * cv[i];
    Tensor c = c0.clone();
    cpu::gemm(c, a, b, 2.0, 0.5);
    EXPECT_TRUE(matches(c, r, tol_for(dt, 10))) << dtype_name(dt);
    // Output that is not row-major (a transposed view): computed aside and copied in.
    Tensor ct = c0.transpose(1, 2).contiguous().transpose(1, 2);
    ASSERT_FALSE(ct.is_contiguous());
    cpu::gemm(ct, a, b, 2.0, 0.5);
    EXPECT_TRUE(matches(ct, r, tol_for(dt, 10))) << dtype_name(dt) << " transposed output";
    // k = 0 with beta: c = beta * c.
    Tensor ck = c0.clone();
    cpu::gemm(ck, rand_t({2, 9, 0}, dt, 1), rand_t({2, 0, 6}, dt, 2), 1.0, 0.5);
    Ref rk{c0.shape(), cv};
    for (double& x : rk.v) x *= 0.5;
    EXPECT_TRUE(matches(ck, rk, tol_for(dt, 1))) << dtype_name(dt) << " k=0";
  }
}

// ---------------------------------------------------------------- gradients
// Central differences of L = Σ fn(inputs) · w for a fixed random w, against autograd's
// gradients from fn(inputs).backward(w). Inputs are f64 leaves.
void expect_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Shape>& shapes,
                      const std::string& what, uint64_t seed = 1000) {
  std::vector<Tensor> inputs;
  for (const Shape& s : shapes) inputs.push_back(rand_t(s, kFloat64, seed++).requires_grad_(true));
  Tensor out = fn(inputs);
  Tensor w = rand_t(out.shape(), kFloat64, seed++);
  if (out.dim() == 0) w = scalar_tensor(0.7, {.dtype = kFloat64});
  out.backward(w);
  const std::vector<double> wv = w.to_vector<double>();
  auto loss = [&]() {
    NoGradGuard ng;
    const std::vector<double> ov = fn(inputs).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < ov.size(); ++i) s += ov[i] * wv[i];
    return s;
  };
  const double eps = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = inputs[i].grad();
    ASSERT_TRUE(g.defined()) << what << ": input " << i << " got no gradient";
    ASSERT_EQ(g.shape(), inputs[i].shape()) << what << ": input " << i;
    const std::vector<double> gv = g.to_vector<double>();
    double* p = inputs[i].data<double>();
    for (int64_t j = 0; j < inputs[i].numel(); ++j) {
      const double orig = p[j];
      p[j] = orig + eps;
      const double lp = loss();
      p[j] = orig - eps;
      const double lm = loss();
      p[j] = orig;
      const double numeric = (lp - lm) / (2 * eps);
      EXPECT_TRUE(std::abs(gv[j] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric))
          << what << ": input " << i << " element " << j << " analytic " << gv[j] << " numeric " << numeric;
    }
  }
}

TEST(MatmulGrad, AllRankCombinations) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4}, {4}},
      {{4}, {4, 3}},
      {{5, 4}, {4}},
      {{5, 4}, {4, 3}},
      {{2, 5, 4}, {4, 3}},
      {{2, 5, 4}, {4}},
      {{5, 4}, {2, 4, 3}},
      {{4}, {2, 4, 3}},
      {{2, 5, 4}, {2, 4, 3}},
      {{2, 1, 3, 4}, {5, 4, 2}},
      {{1, 3, 4}, {2, 1, 4, 2}},
  };
  for (const auto& [sa, sb] : cases) {
    expect_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {sa, sb},
                     "matmul " + shape_str(sa) + " · " + shape_str(sb));
  }
}

TEST(MatmulGrad, MmBmmDotLinear) {
  expect_gradients([](const std::vector<Tensor>& in) { return mm(in[0], in[1]); }, {{3, 4}, {4, 5}}, "mm");
  expect_gradients([](const std::vector<Tensor>& in) { return mm(in[0].t(), in[1].t()); }, {{4, 3}, {5, 4}},
                   "mm of transposes");
  expect_gradients([](const std::vector<Tensor>& in) { return bmm(in[0], in[1]); }, {{2, 3, 4}, {2, 4, 5}}, "bmm");
  expect_gradients([](const std::vector<Tensor>& in) { return dot(in[0], in[1]); }, {{6}, {6}}, "dot");
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {{3, 4}, {5, 4}, {5}},
                   "linear with bias");
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {{3, 4}, {5, 4}},
                   "linear without bias");
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {{2, 3, 4}, {5, 4}, {5}},
                   "linear 3-d input");
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {{4}, {5, 4}, {5}},
                   "linear 1-d input");
  expect_gradients([](const std::vector<Tensor>& in) { return linear(in[0].t(), in[1], in[2]); }, {{4, 3}, {5, 4}, {5}},
                   "linear transposed input");
}

TEST(MatmulGrad, SkipsGradientsNotNeeded) {
  // The first layer's input never needs a gradient: it gets none, the weight's is right.
  Tensor x = rand_t({3, 4}, kFloat64, 71);
  Tensor w = rand_t({5, 4}, kFloat64, 72).requires_grad_(true);
  Tensor out = linear(x, w);
  ASSERT_TRUE(out.requires_grad());
  Tensor g = rand_t({3, 5}, kFloat64, 73);
  out.backward(g);
  EXPECT_FALSE(x.grad().defined());
  // dW = gᵀ · x
  EXPECT_TRUE(matches(w.grad(), ref_matmul(g.t(), x), {1e-12, 1e-12}));

  Tensor a = rand_t({3, 4}, kFloat64, 74).requires_grad_(true);
  Tensor b = rand_t({4, 2}, kFloat64, 75);
  Tensor o = matmul(a, b);
  Tensor go = rand_t({3, 2}, kFloat64, 76);
  o.backward(go);
  EXPECT_FALSE(b.grad().defined());
  EXPECT_TRUE(matches(a.grad(), ref_matmul(go, b.t()), {1e-12, 1e-12}));
  // No input requires grad: no graph.
  EXPECT_FALSE(matmul(b.t(), b).requires_grad());
}

TEST(MatmulGrad, InPlaceChangeOfSavedOperandIsDetected) {
  Tensor a = rand_t({3, 4}, kFloat64, 81).requires_grad_(true);
  Tensor b = rand_t({4, 2}, kFloat64, 82);
  Tensor o = mm(a, b);
  b.storage()->bump_version();  // as an in-place op on b would
  EXPECT_THROW(o.backward(ones({3, 2}, {.dtype = kFloat64})), AutogradError);
}

TEST(MatmulGrad, Float32GradientsMatchF64) {
  Tensor a64 = rand_t({6, 5}, kFloat64, 91), b64 = rand_t({5, 4}, kFloat64, 92);
  Tensor a = a64.to(kFloat32).requires_grad_(true), b = b64.to(kFloat32).requires_grad_(true);
  Tensor g64 = rand_t({6, 4}, kFloat64, 93);
  matmul(a, b).backward(g64.to(kFloat32));
  EXPECT_TRUE(matches(a.grad(), ref_matmul(g64, b64.t()), {1e-5, 1e-5}));
  EXPECT_TRUE(matches(b.grad(), ref_matmul(a64.t(), g64), {1e-5, 1e-5}));
}

// ---------------------------------------------------------------- errors
template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& frag : fragments) EXPECT_NE(msg.find(frag), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(MatmulErrors, InnerDimensionMismatch) {
  Tensor a = zeros({32, 784}), b = zeros({128, 10});
  expect_error<ShapeError>([&] { matmul(a, b); }, {"matmul", "(32, 784)", "(128, 10)", "784 != 128"});
  expect_error<ShapeError>([&] { mm(a, b); }, {"mm", "(32, 784)", "(128, 10)", "784 != 128"});
  expect_error<ShapeError>([&] { matmul(zeros({3}), zeros({4})); }, {"matmul", "3 != 4"});
  expect_error<ShapeError>([&] { matmul(zeros({2, 3, 4}), zeros({5})); }, {"(2, 3, 4)", "4 != 5"});
  expect_error<ShapeError>([&] { bmm(zeros({2, 3, 4}), zeros({2, 5, 6})); }, {"bmm", "4 != 5"});
  expect_error<ShapeError>([&] { dot(zeros({3}), zeros({4})); }, {"dot", "3 and 4"});
  expect_error<ShapeError>([&] { linear(zeros({3, 4}), zeros({5, 6})); }, {"linear", "(3, 4)", "(5, 6)", "4 != 6"});
}

TEST(MatmulErrors, DTypeMismatchAndUnsupported) {
  expect_error<DTypeError>(
      [] {
        matmul(zeros({2, 2}), zeros({2, 2}, {.dtype = kFloat64}));
      },
      {"expected both operands to have the same dtype, got float32 and float64"});
  expect_error<DTypeError>([] { mm(zeros({2, 2}, {.dtype = kFloat16}), zeros({2, 2})); }, {"mm", "float16"});
  expect_error<DTypeError>(
      [] {
        linear(zeros({2, 2}), zeros({2, 2}), zeros({2}, {.dtype = kFloat64}));
      },
      {"linear", "same dtype"});
  expect_error<DTypeError>(
      [] {
        matmul(zeros({2, 2}, {.dtype = kUInt8}), zeros({2, 2}, {.dtype = kUInt8}));
      },
      {"matmul", "uint8"});
  expect_error<DTypeError>(
      [] {
        matmul(zeros({2, 2}, {.dtype = kBool}), zeros({2, 2}, {.dtype = kBool}));
      },
      {"matmul"});
}

TEST(MatmulErrors, WrongRanks) {
  Tensor s = scalar_tensor(1.0);
  expect_error<ShapeError>([&] { matmul(s, zeros({2, 2})); }, {"matmul", "0-d"});
  expect_error<ShapeError>([&] { matmul(zeros({2}), s); }, {"matmul", "0-d"});
  expect_error<ShapeError>([] { mm(zeros({2, 2, 2}), zeros({2, 2})); }, {"mm", "2-d", "3-d"});
  expect_error<ShapeError>([] { mm(zeros({2}), zeros({2, 2})); }, {"mm"});
  expect_error<ShapeError>([] { bmm(zeros({2, 2}), zeros({2, 2, 2})); }, {"bmm", "3-d"});
  expect_error<ShapeError>([] { bmm(zeros({2, 3, 4}), zeros({3, 4, 5})); }, {"bmm", "2 != 3"});
  expect_error<ShapeError>([] { dot(zeros({2, 2}), zeros({2})); }, {"dot", "1-d"});
  expect_error<ShapeError>([&] { linear(s, zeros({2, 1})); }, {"linear", "0-d"});
  expect_error<ShapeError>([] { linear(zeros({2, 3}), zeros({3})); }, {"linear", "weight must be 2-d"});
  expect_error<ShapeError>([] { linear(zeros({2, 3}), zeros({4, 3}), zeros({3})); }, {"linear", "bias", "(4,)"});
  expect_error<ShapeError>([] { linear(zeros({2, 3}), zeros({4, 3}), zeros({1, 4})); }, {"linear", "bias"});
}

TEST(MatmulErrors, BatchDimsDoNotBroadcast) {
  expect_error<ShapeError>(
      [] {
        matmul(zeros({2, 3, 4}), zeros({3, 4, 5}));
      },
      {"matmul", "batch dimensions", "(2,)", "(3,)", "(2, 3, 4)", "(3, 4, 5)"});
  expect_error<ShapeError>([] { matmul(zeros({2, 2, 3, 4}), zeros({3, 1, 4, 5})); }, {"matmul", "do not broadcast"});
}

Tensor fake_cuda_tensor(const Shape& shape) {
  // A CPU build cannot allocate on a GPU; a handle that claims to be on cuda:0 is enough to
  // reach the device checks, which must fire before any data is touched.
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->device = Device::cuda(0);
  return Tensor(impl);
}

TEST(MatmulErrors, CudaTensorsInCpuBuild) {
  Tensor ga = fake_cuda_tensor({2, 2}), gb = fake_cuda_tensor({2, 2});
  if (cuda::device_count() == 0) {
    // CUDA operands reach the CUDA backend: without a usable device (or CUDA in the build) the
    // output allocation fails. (With a device, the fake tensors must not reach cuBLAS.)
    expect_error<DeviceError>([&] { matmul(ga, gb); }, {"cuda:0"});
    expect_error<DeviceError>([&] { mm(ga, gb); }, {"cuda:0"});
    expect_error<DeviceError>([&] { linear(ga, gb); }, {"cuda:0"});
  }
  expect_error<DeviceError>([&] { matmul(zeros({2, 2}), gb); }, {"matmul", "cpu", "cuda:0"});
  expect_error<DeviceError>([&] { linear(zeros({2, 2}), zeros({2, 2}), fake_cuda_tensor({2})); }, {"linear", "cuda:0"});
  expect_error<ValueError>([] { matmul(Tensor(), zeros({2})); }, {"matmul", "undefined"});
}

}  // namespace
}  // namespace ember
