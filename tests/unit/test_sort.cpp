// sort, argsort, topk and multinomial: values against hand-written results and std::stable_sort,
// NaN ordering, dtypes, non-contiguous inputs, gradients, sampling statistics and
// reproducibility, and every error path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ember/autograd/gradcheck.hpp>
#include <ember/ember.hpp>
#include <numeric>
#include <random>
#include <set>

#include "unit/test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

/// Checks (values, indices) of sorting x along its last dim (x 2-d, contiguous) against
/// std::stable_sort with NaN largest.
void expect_matches_stable_sort(const Tensor& x2d, const Tensor& values, const Tensor& indices, bool descending) {
  const int64_t rows = x2d.size(0), n = x2d.size(1);
  std::vector<double> xv = x2d.to_vector<double>(), vv = values.to_vector<double>();
  std::vector<int64_t> iv = indices.to_vector<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    auto key = [&](int64_t j) { return xv[r * n + j]; };
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      const double ka = key(a), kb = key(b);
      if (descending) return (std::isnan(ka) && !std::isnan(kb)) || ka > kb;
      return (!std::isnan(ka) && std::isnan(kb)) || ka < kb;
    });
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(iv[r * n + j], perm[j]) << "row " << r << " position " << j;
      const double want = key(perm[j]);
      if (std::isnan(want))
        EXPECT_TRUE(std::isnan(vv[r * n + j]));
      else
        EXPECT_EQ(vv[r * n + j], want);
    }
  }
}

}  // namespace

// ------------------------------------------------------------------ sort
TEST(Sort, HandWrittenStable) {
  Tensor x = tensor<float>({3, 1, 2, 1, 3});
  auto [v, i] = sort(x);
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{1, 1, 2, 3, 3}));
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 0, 4}));
  auto [vd, id] = sort(x, 0, true);
  EXPECT_EQ(vd.to_vector<float>(), (std::vector<float>{3, 3, 2, 1, 1}));
  EXPECT_EQ(id.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 2, 1, 3}));
  Tensor m = tensor<int64_t>({5, 1, 4, 2, 6, 0}, {2, 3});
  auto [v0, i0] = sort(m, 0);
  EXPECT_EQ(v0.to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 0, 5, 6, 4}));
  EXPECT_EQ(i0.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1, 0, 1, 0}));
  auto [v1, i1] = sort(m, -1, true);
  EXPECT_EQ(v1.to_vector<int64_t>(), (std::vector<int64_t>{5, 4, 1, 6, 2, 0}));
  EXPECT_EQ(i1.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1, 1, 0, 2}));
  EXPECT_EQ(argsort(m, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 0, 2, 0, 1}));
}

TEST(Sort, NaNIsLargest) {
  const float nan = std::nanf("");
  Tensor x = tensor<float>({2, nan, -1, nan, 5});
  auto [v, i] = sort(x);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 4, 1, 3}));
  std::vector<float> vv = v.to_vector<float>();
  EXPECT_EQ(vv[0], -1);
  EXPECT_EQ(vv[2], 5);
  EXPECT_TRUE(std::isnan(vv[3]) && std::isnan(vv[4]));
  auto [vd, id] = sort(x, -1, true);
  EXPECT_EQ(id.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 4, 0, 2}));
  // Many NaNs in a long row: must terminate, stay a permutation and keep NaNs last.
  Tensor big = random_tensor({20000}, 1);
  {
    std::vector<double> v2 = big.to_vector<double>();
    for (size_t k = 0; k < v2.size(); k += 3) v2[k] = NAN;
    big = tensor<double>(v2);
  }
  auto [bv, bi] = sort(big.reshape({1, -1}), 1, false);
  expect_matches_stable_sort(big.reshape({1, -1}), bv, bi, false);
  auto [bvd, bid] = sort(big.reshape({1, -1}), 1, true);
  expect_matches_stable_sort(big.reshape({1, -1}), bvd, bid, true);
}

TEST(Sort, AllDtypesNonContiguousAgainstStableSort) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8}) {
    // Few distinct values so that stability matters; a transposed input.
    std::vector<double> vals = random_tensor({37, 6}, 2, kFloat64, 4.0).to_vector<double>();
    for (double& e : vals) e = dt == kUInt8 ? std::abs(std::round(e)) : std::round(e);
    Tensor x = tensor<double>(vals, {37, 6}).to(dt).t();  // (6, 37) strided
    ASSERT_FALSE(x.is_contiguous());
    for (bool desc : {false, true}) {
      auto [v, i] = sort(x, 1, desc);
      expect_matches_stable_sort(x.contiguous(), v, i, desc);
      auto [v0, i0] = sort(x, 0, desc);  // sort along the other dim
      expect_matches_stable_sort(x.t().contiguous(), v0.t().contiguous(), i0.t().contiguous(), desc);
    }
  }
  Tensor b = tensor<bool>({true, false, true, false});
  auto [bv, bi] = sort(b);
  EXPECT_EQ(bv.to_vector<bool>(), (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(bi.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 0, 2}));
}

TEST(Sort, EmptyScalarAndErrors) {
  auto [v, i] = sort(zeros({3, 0}), 1);
  EXPECT_EQ(v.shape(), (Shape{3, 0}));
  EXPECT_EQ(i.shape(), (Shape{3, 0}));
  auto [vs, is] = sort(scalar_tensor(2.5));
  EXPECT_EQ(vs.dim(), 0);
  EXPECT_EQ(vs.item<double>(), 2.5);
  EXPECT_EQ(is.item<int64_t>(), 0);
  EXPECT_THROW(sort(zeros({2, 3}), 2), IndexError);
  EXPECT_THROW(argsort(zeros({2, 3}), -3), IndexError);
}

TEST(Sort, Gradients) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return sort(in[0], 1).first; }, {random_tensor({3, 5}, 3)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sort(in[0].t(), 0, true).first; },
                   {random_tensor({3, 5}, 4)});
  Tensor x = tensor<float>({3, 1, 2}).requires_grad_();
  sort(x).first.backward(tensor<float>({10, 20, 30}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{30, 10, 20}));
  EXPECT_FALSE(argsort(x).requires_grad());
}

// ------------------------------------------------------------------ topk
TEST(Topk, HandWritten) {
  Tensor x = tensor<float>({1, 5, 3, 5, 2});
  auto [v, i] = topk(x, 3);
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{5, 5, 3}));
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2}));
  auto [vs, is] = topk(x, 2, 0, false);
  EXPECT_EQ(vs.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(is.to_vector<int64_t>(), (std::vector<int64_t>{0, 4}));
  auto [v0, i0] = topk(x, 0);
  EXPECT_EQ(v0.shape(), (Shape{0}));
  EXPECT_EQ(i0.shape(), (Shape{0}));
  auto [vsc, isc] = topk(scalar_tensor(3.0), 1);
  EXPECT_EQ(vsc.dim(), 0);
  EXPECT_EQ(vsc.item<double>(), 3.0);
  EXPECT_EQ(isc.item<int64_t>(), 0);
  EXPECT_EQ(topk(scalar_tensor(3.0), 0).first.numel(), 0);
  Tensor m = tensor<int32_t>({4, 9, 1, 7, 2, 8}, {2, 3});
  auto [vm, im] = topk(m, 1, 0);
  EXPECT_EQ(vm.shape(), (Shape{1, 3}));
  EXPECT_EQ(vm.dtype(), kInt32);
  EXPECT_EQ(vm.to_vector<int32_t>(), (std::vector<int32_t>{7, 9, 8}));
  EXPECT_EQ(im.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  const float nan = std::nanf("");
  auto [vn, in] = topk(tensor<float>({1, nan, 3}), 2);
  EXPECT_EQ(in.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(std::isnan(vn.to_vector<float>()[0]));
}

TEST(Topk, RandomNonContiguousAgainstSort) {
  Tensor x = random_tensor({7, 4, 9}, 5).permute({1, 2, 0});  // (4, 9, 7) strided
  for (int64_t dim : {0, 1, -1}) {
    const int64_t n = x.size(dim);
    for (int64_t k : {int64_t{1}, n / 2, n}) {
      for (bool largest : {true, false}) {
        auto [v, i] = topk(x, k, dim, largest);
        auto [sv, si] = sort(x, dim, largest);
        EXPECT_EQ(v.to_vector<double>(), sv.narrow(dim, 0, k).to_vector<double>());
        EXPECT_EQ(i.to_vector<int64_t>(), si.narrow(dim, 0, k).to_vector<int64_t>());
      }
    }
  }
}

TEST(Topk, ErrorsAndGradients) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(topk(x, 4), ValueError);
  EXPECT_THROW(topk(x, -1), ValueError);
  EXPECT_THROW(topk(x, 3, 0), ValueError);
  EXPECT_THROW(topk(x, 1, 2), IndexError);
  EXPECT_THROW(topk(zeros({3}, {.dtype = kBool}), 1), DTypeError);
  expect_gradcheck([](const std::vector<Tensor>& in) { return topk(in[0], 2, -1).first; }, {random_tensor({3, 5}, 6)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return topk(in[0].t(), 3, 0, false).first; },
                   {random_tensor({2, 4}, 7)});
}

// ------------------------------------------------------------------ multinomial
namespace {
/// |count - n p| within `sigmas` binomial standard deviations.
void expect_count_near(int64_t count, int64_t n, double p, double sigmas = 5.0) {
  const double mean = n * p, sd = std::sqrt(n * p * (1 - p));
  EXPECT_LE(std::abs(count - mean), sigmas * sd + 1e-9) << "count " << count << " expected about " << mean;
}
}  // namespace

TEST(Multinomial, WithReplacementMatchesProbabilities) {
  Generator gen(1234);
  Tensor w = tensor<float>({1, 2, 0, 7});  // unnormalised
  const int64_t n = 20000;
  Tensor s = multinomial(w, n, true, &gen);
  EXPECT_EQ(s.dtype(), kInt64);
  EXPECT_EQ(s.shape(), (Shape{n}));
  std::vector<int64_t> counts(4, 0);
  for (int64_t c : s.to_vector<int64_t>()) {
    ASSERT_GE(c, 0);
    ASSERT_LT(c, 4);
    ++counts[c];
  }
  EXPECT_EQ(counts[2], 0);
  expect_count_near(counts[0], n, 0.1);
  expect_count_near(counts[1], n, 0.2);
  expect_count_near(counts[3], n, 0.7);
}

TEST(Multinomial, RowsAreIndependentDistributions) {
  Generator gen(99);
  Tensor w = tensor<double>({1, 0, 0, 3, 0.5, 0.5}, {2, 3});
  const int64_t n = 20000;
  Tensor s = multinomial(w, n, true, &gen);
  ASSERT_EQ(s.shape(), (Shape{2, n}));
  std::vector<int64_t> v = s.to_vector<int64_t>();
  for (int64_t k = 0; k < n; ++k) EXPECT_EQ(v[k], 0);
  std::vector<int64_t> counts(3, 0);
  for (int64_t k = n; k < 2 * n; ++k) ++counts[v[k]];
  expect_count_near(counts[0], n, 0.75);
  expect_count_near(counts[1], n, 0.125);
  expect_count_near(counts[2], n, 0.125);
}

TEST(Multinomial, WithoutReplacement) {
  Generator gen(7);
  Tensor w = tensor<float>({1, 2, 0, 7});
  // The first draw follows p; the second follows sum_i p_i p_j / (1 - p_i).
  const int64_t trials = 20000;
  std::vector<int64_t> first(4, 0), second(4, 0);
  const std::vector<double> p{0.1, 0.2, 0.0, 0.7};
  std::vector<double> p2(4, 0.0);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      if (i != j) p2[j] += p[i] * p[j] / (1 - p[i]);
  Tensor rows = multinomial(w.unsqueeze(0).expand({trials, 4}), 3, false, &gen);
  ASSERT_EQ(rows.shape(), (Shape{trials, 3}));
  std::vector<int64_t> v = rows.to_vector<int64_t>();
  for (int64_t t = 0; t < trials; ++t) {
    std::set<int64_t> seen(v.begin() + 3 * t, v.begin() + 3 * t + 3);
    ASSERT_EQ(seen, (std::set<int64_t>{0, 1, 3})) << "trial " << t;  // all non-zero categories, once each
    ++first[v[3 * t]];
    ++second[v[3 * t + 1]];
  }
  for (int j : {0, 1, 3}) {
    expect_count_near(first[j], trials, p[j]);
    expect_count_near(second[j], trials, p2[j]);
  }
}

TEST(Multinomial, ReproducibleWithSeed) {
  Tensor w = tensor<float>({0.2f, 0.3f, 0.5f, 1.0f, 4.0f});
  Generator a(42), b(42), c(43);
  Tensor sa = multinomial(w, 50, true, &a), sb = multinomial(w, 50, true, &b), sc = multinomial(w, 50, true, &c);
  EXPECT_EQ(sa.to_vector<int64_t>(), sb.to_vector<int64_t>());
  EXPECT_NE(sa.to_vector<int64_t>(), sc.to_vector<int64_t>());
  // The generator advances: a second draw differs from the first.
  EXPECT_NE(multinomial(w, 50, true, &a).to_vector<int64_t>(), sa.to_vector<int64_t>());
  Generator d(5), e(5);
  EXPECT_EQ(multinomial(w, 4, false, &d).to_vector<int64_t>(), multinomial(w, 4, false, &e).to_vector<int64_t>());
  manual_seed(11);
  Tensor s1 = multinomial(w, 20, true);
  manual_seed(11);
  Tensor s2 = multinomial(w, 20, true);
  EXPECT_EQ(s1.to_vector<int64_t>(), s2.to_vector<int64_t>());
}

TEST(Multinomial, Errors) {
  Tensor w = tensor<float>({1, 0, 2});
  EXPECT_THROW(multinomial(w, 3, false), ValueError);  // only 2 non-zero categories
  EXPECT_NO_THROW(multinomial(w, 2, false));
  EXPECT_NO_THROW(multinomial(w, 5, true));
  EXPECT_THROW(multinomial(tensor<float>({1, -1}), 1, true), ValueError);
  EXPECT_THROW(multinomial(tensor<float>({1, NAN}), 1, true), ValueError);
  EXPECT_THROW(multinomial(tensor<float>({1, INFINITY}), 1, true), ValueError);
  EXPECT_THROW(multinomial(tensor<float>({0, 0, 1, 0}, {2, 2}), 1, true), ValueError);
  EXPECT_THROW(multinomial(tensor<int64_t>({1, 2}), 1, true), DTypeError);
  EXPECT_THROW(multinomial(zeros({2, 2, 2}), 1, true), ShapeError);
  EXPECT_THROW(multinomial(scalar_tensor(1.0), 1, true), ShapeError);
  EXPECT_THROW(multinomial(w, 0, true), ValueError);
  EXPECT_THROW(multinomial(zeros({0}), 1, true), ValueError);
}

TEST(SortGradients, ExpandedUpstreamGradient) {
  Tensor x = tensor<double>({3, 1, 2, 5}, {2, 2}).requires_grad_();
  topk(x, 1, 1).first.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 0, 0, 1}));
  Tensor y = tensor<double>({3, 1, 2}).requires_grad_();
  sort(y, 0, true).first.sum().backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{1, 1, 1}));
}

TEST(Sort, LargeEnoughToRunOnSeveralThreads) {
  Tensor x = random_tensor({400, 300}, 60, kFloat32, 3.0);
  auto [v, i] = sort(x, 1, true);
  expect_matches_stable_sort(x, v, i, true);
  auto [tv, ti] = topk(x, 5, 1, false);
  auto [sv, si] = sort(x, 1, false);
  EXPECT_EQ(tv.to_vector<float>(), sv.narrow(1, 0, 5).to_vector<float>());
  EXPECT_EQ(ti.to_vector<int64_t>(), si.narrow(1, 0, 5).to_vector<int64_t>());
}

TEST(Topk, NaNsAgainstSortForEveryK) {
  std::vector<double> v = random_tensor({3, 9}, 70).to_vector<double>();
  for (size_t k : {1u, 4u, 5u, 9u, 10u, 13u, 26u}) v[k] = NAN;  // row 0: 1 NaN, row 1: 4, row 2: 2
  Tensor x = tensor<double>(v, {3, 9});
  for (bool largest : {true, false}) {
    auto [sv, si] = sort(x, 1, largest);
    expect_matches_stable_sort(x, sv, si, largest);
    for (int64_t k = 0; k <= 9; ++k) {
      auto [tv, ti] = topk(x, k, 1, largest);
      EXPECT_EQ(ti.to_vector<int64_t>(), si.narrow(1, 0, k).to_vector<int64_t>()) << "k " << k << " " << largest;
    }
  }
}
