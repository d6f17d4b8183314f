// index_select, gather, scatter_add, embedding, masked_fill, triu / tril, one_hot: values against
// hand-written results and naive loops, index dtypes, non-contiguous inputs, gradients by
// central differences, and every error path.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/autograd/gradcheck.hpp>
#include <ember/ember.hpp>
#include <random>

#include "unit/test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

Tensor random_index(const Shape& shape, int64_t high, uint32_t seed, DType dtype = kInt64) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, high - 1);
  std::vector<int64_t> v(static_cast<size_t>(numel_of(shape)));
  for (int64_t& x : v) x = u(rng);
  return tensor<int64_t>(v, shape).to(dtype);
}

}  // namespace

// ------------------------------------------------------------------ index_select
TEST(IndexSelect, HandWritten) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor rows = index_select(x, 0, tensor<int64_t>({2, 0, 2}));
  EXPECT_EQ(rows.shape(), (Shape{3, 2}));
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{5, 6, 1, 2, 5, 6}));
  Tensor cols = index_select(x, -1, tensor<int32_t>({1}));
  EXPECT_EQ(cols.shape(), (Shape{3, 1}));
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{2, 4, 6}));
  Tensor none = index_select(x, 0, empty({0}, {.dtype = kInt64}));
  EXPECT_EQ(none.shape(), (Shape{0, 2}));
  Tensor b = index_select(tensor<bool>({true, false}), 0, tensor<int64_t>({1, 1, 0}));
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{false, false, true}));
  Tensor s = index_select(scalar_tensor(4.0), 0, scalar_tensor(0, {.dtype = kInt64}));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<double>(), 4.0);
}

TEST(IndexSelect, RandomNonContiguousAllDtypes) {
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kFloat16, kBFloat16}) {
    Tensor x = random_tensor({5, 4, 6}, 1, dt, 10.0).permute({2, 0, 1});  // (6, 5, 4), strided
    for (int64_t dim = 0; dim < 3; ++dim) {
      Tensor idx = random_index({7}, x.size(dim), 2 + static_cast<uint32_t>(dim)).slice(0, 0, 7, 2);  // strided
      Tensor out = index_select(x, dim, idx);
      Shape want_shape = x.shape();
      want_shape[dim] = idx.numel();
      ASSERT_EQ(out.shape(), want_shape);
      std::vector<double> got = out.to_vector<double>(), xv = x.to_vector<double>();
      std::vector<int64_t> iv = idx.to_vector<int64_t>();
      for_each_index(out.shape(), [&](const Shape& o) {
        Shape s = o;
        s[dim] = iv[o[dim]];
        EXPECT_EQ(got[flat_index(out.shape(), o)], xv[flat_index(x.shape(), s)]) << dtype_name(dt);
      });
    }
  }
}

TEST(IndexSelect, Errors) {
  Tensor x = zeros({3, 2});
  EXPECT_THROW(index_select(x, 0, tensor<float>({0})), DTypeError);
  expect_throw_containing([&] { index_select(x, 0, tensor<float>({0})); }, "index_select");
  EXPECT_THROW(index_select(x, 0, zeros({2, 1}, {.dtype = kInt64})), ShapeError);
  EXPECT_THROW(index_select(x, 2, tensor<int64_t>({0})), IndexError);
  EXPECT_THROW(index_select(x, 0, tensor<int64_t>({3})), IndexError);
  EXPECT_THROW(index_select(x, 0, tensor<int64_t>({-1})), IndexError);
  expect_throw_containing([&] { index_select(x, 0, tensor<int64_t>({0, 7})); }, "index 7");
  expect_throw_containing([&] { index_select(x, 0, tensor<int64_t>({0, 7})); }, "size 3");
}

TEST(IndexSelect, Gradients) {
  // Duplicate indices must add their gradients.
  Tensor idx = tensor<int64_t>({2, 0, 2, 2});
  expect_gradcheck([idx](const std::vector<Tensor>& in) { return index_select(in[0], 0, idx); },
                   {random_tensor({3, 4}, 3)});
  expect_gradcheck([idx](const std::vector<Tensor>& in) { return index_select(in[0].t(), 1, idx); },
                   {random_tensor({3, 2}, 4)});
  Tensor x = zeros({3}).requires_grad_();
  index_select(x, 0, idx).backward(ones({4}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 3}));
}

// ------------------------------------------------------------------ gather / scatter_add
TEST(Gather, HandWritten) {
  Tensor x = tensor<float>({1, 2, 3, 4}, {2, 2});
  Tensor g = gather(x, 1, tensor<int64_t>({0, 0, 1, 0}, {2, 2}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{1, 1, 4, 3}));
  // Index smaller than x in the other dim, larger along dim.
  Tensor g0 = gather(x, 0, tensor<int32_t>({1, 0, 1}, {3, 1}));
  EXPECT_EQ(g0.shape(), (Shape{3, 1}));
  EXPECT_EQ(g0.to_vector<float>(), (std::vector<float>{3, 1, 3}));
  Tensor e = gather(x, 1, empty({2, 0}, {.dtype = kInt64}));
  EXPECT_EQ(e.shape(), (Shape{2, 0}));
}

TEST(Gather, RandomNonContiguousAgainstNaiveLoop) {
  Tensor x = random_tensor({4, 5, 3}, 5).transpose(0, 1);  // (5, 4, 3)
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape ishape{3, 4, 2};
    ishape[d] = 6;
    Tensor idx = random_index({ishape[2], ishape[1], ishape[0]}, x.size(d), 6 + static_cast<uint32_t>(d))
                     .permute({2, 1, 0});  // strided index
    Tensor out = gather(x, dim, idx);
    ASSERT_EQ(out.shape(), ishape);
    std::vector<double> got = out.to_vector<double>(), xv = x.to_vector<double>();
    std::vector<int64_t> iv = idx.to_vector<int64_t>();
    for_each_index(ishape, [&](const Shape& o) {
      Shape s = o;
      s[d] = iv[flat_index(ishape, o)];
      EXPECT_EQ(got[flat_index(ishape, o)], xv[flat_index(x.shape(), s)]);
    });
  }
}

TEST(ScatterAdd, HandWrittenAndDuplicates) {
  Tensor x = zeros({2, 3});
  Tensor src = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor idx = tensor<int64_t>({0, 2, 0, 1, 1, 1}, {2, 3});
  Tensor out = scatter_add(x, 1, idx, src);
  // Row 0: 1+3 at col 0, 2 at col 2. Row 1: 4+5+6 at col 1.
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{4, 0, 2, 0, 15, 0}));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>(6, 0.0f)));  // not modified
  // src larger than index: only the leading part is used.
  Tensor out2 = scatter_add(ones({3}, {.dtype = kInt64}), 0, tensor<int64_t>({2, 2}), tensor<int64_t>({5, 6, 100}));
  EXPECT_EQ(out2.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 12}));
}

TEST(ScatterAdd, RandomAgainstNaiveLoop) {
  Tensor x = random_tensor({3, 4, 5}, 8);
  Tensor src = random_tensor({5, 4, 6}, 9).permute({2, 1, 0});  // (6, 4, 5) strided
  Tensor idx = random_index({6, 3, 5}, 3, 10);
  Tensor out = scatter_add(x, 0, idx, src);
  std::vector<double> want = x.to_vector<double>(), sv = src.to_vector<double>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for_each_index(idx.shape(), [&](const Shape& i) {
    Shape t = i;
    t[0] = iv[flat_index(idx.shape(), i)];
    want[flat_index(x.shape(), t)] += sv[flat_index(src.shape(), i)];
  });
  std::vector<double> got = out.to_vector<double>();
  for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-12);
}

TEST(GatherScatter, Errors) {
  Tensor x = zeros({2, 3});
  Tensor idx = zeros({2, 3}, {.dtype = kInt64});
  EXPECT_THROW(gather(x, 1, zeros({2, 3})), DTypeError);
  EXPECT_THROW(gather(x, 1, zeros({6}, {.dtype = kInt64})), ShapeError);
  EXPECT_THROW(gather(x, 1, zeros({3, 1}, {.dtype = kInt64})), ShapeError);
  EXPECT_THROW(gather(x, 2, idx), IndexError);
  EXPECT_THROW(gather(x, 1, full({2, 3}, 3, {.dtype = kInt64})), IndexError);
  EXPECT_THROW(gather(x, 1, full({2, 3}, -1, {.dtype = kInt64})), IndexError);
  expect_throw_containing([&] { gather(x, 1, full({1, 1}, 5, {.dtype = kInt64})); }, "index 5");
  EXPECT_THROW(scatter_add(x, 1, zeros({2, 3}, {.dtype = kUInt8}), x), DTypeError);
  EXPECT_THROW(scatter_add(x, 1, idx, zeros({2, 3}, {.dtype = kFloat64})), DTypeError);
  EXPECT_THROW(scatter_add(x, 1, idx, zeros({2, 2})), ShapeError);
  EXPECT_THROW(scatter_add(x, 1, zeros({3, 3}, {.dtype = kInt64}), zeros({3, 3})), ShapeError);
  EXPECT_NO_THROW(scatter_add(x, 0, zeros({3, 3}, {.dtype = kInt64}), zeros({3, 3})));  // only dim may exceed
  EXPECT_THROW(scatter_add(x, 1, idx, zeros({6})), ShapeError);
  EXPECT_THROW(scatter_add(x, 1, full({2, 3}, 3, {.dtype = kInt64}), x), IndexError);
  EXPECT_THROW(scatter_add(x, -3, idx, x), IndexError);
}

TEST(GatherScatter, Gradients) {
  Tensor idx = tensor<int64_t>({0, 2, 2, 1, 1, 1}, {3, 2});
  expect_gradcheck([idx](const std::vector<Tensor>& in) { return gather(in[0], 1, idx); }, {random_tensor({3, 4}, 11)});
  expect_gradcheck([idx](const std::vector<Tensor>& in) { return gather(in[0].t(), 0, idx.t()); },
                   {random_tensor({3, 4}, 12)});
  Tensor idx0 = tensor<int64_t>({0, 1, 0, 0, 1, 1}, {3, 2});
  expect_gradcheck([idx0](const std::vector<Tensor>& in) { return scatter_add(in[0], 0, idx0, in[1]); },
                   {random_tensor({2, 3}, 13), random_tensor({4, 2}, 14)});
}

// ------------------------------------------------------------------ embedding
TEST(Embedding, ValuesAndShape) {
  Tensor w = tensor<float>({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  Tensor out = embedding(w, tensor<int64_t>({3, 0, 1, 3}, {2, 2}));
  EXPECT_EQ(out.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{30, 31, 0, 1, 10, 11, 30, 31}));
  Tensor one = embedding(w, scalar_tensor(2, {.dtype = kInt32}));
  EXPECT_EQ(one.shape(), (Shape{2}));
  EXPECT_EQ(one.to_vector<float>(), (std::vector<float>{20, 21}));
  Tensor e = embedding(w, empty({0, 3}, {.dtype = kInt64}));
  EXPECT_EQ(e.shape(), (Shape{0, 3, 2}));
  // Non-contiguous table and indices.
  Tensor wt = tensor<double>({0, 10, 20, 1, 11, 21}, {2, 3}).t();  // (3, 2): rows (0,1), (10,11), (20,21)
  Tensor it = tensor<int64_t>({2, 0, 1, 1}, {2, 2}).t();           // [[2, 1], [0, 1]]
  EXPECT_EQ(embedding(wt, it).to_vector<double>(), (std::vector<double>{20, 21, 10, 11, 0, 1, 10, 11}));
}

TEST(Embedding, BackwardAccumulatesDuplicateRows) {
  Tensor w = zeros({4, 3}).requires_grad_();
  Tensor idx = tensor<int64_t>({1, 3, 1, 1}, {2, 2});
  Tensor out = embedding(w, idx);
  std::vector<float> g(12);
  for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(i);
  out.backward(tensor<float>(g, {2, 2, 3}));
  // Row 1 collects positions 0, 2, 3; row 3 position 1.
  EXPECT_EQ(w.grad().to_vector<float>(),
            (std::vector<float>{0, 0, 0, 0 + 6 + 9, 1 + 7 + 10, 2 + 8 + 11, 0, 0, 0, 3, 4, 5}));
  expect_gradcheck([idx](const std::vector<Tensor>& in) { return embedding(in[0], idx); }, {random_tensor({4, 3}, 15)});
}

TEST(Embedding, Errors) {
  Tensor w = zeros({4, 3});
  EXPECT_THROW(embedding(w, tensor<float>({1})), DTypeError);
  EXPECT_THROW(embedding(zeros({4}), tensor<int64_t>({1})), ShapeError);
  EXPECT_THROW(embedding(w, tensor<int64_t>({4})), IndexError);
  EXPECT_THROW(embedding(w, tensor<int64_t>({-1})), IndexError);
  expect_throw_containing([&] { embedding(w, tensor<int64_t>({0, 9})); }, "index 9");
}

// ------------------------------------------------------------------ masked_fill
TEST(MaskedFill, ValuesBroadcastAndDtypes) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row_mask = tensor<bool>({true, false, true});
  EXPECT_EQ(masked_fill(x, row_mask, -1).to_vector<float>(), (std::vector<float>{-1, 2, -1, -1, 5, -1}));
  Tensor col_mask = tensor<bool>({false, true}, {2, 1});
  EXPECT_EQ(masked_fill(x, col_mask, 0.5).to_vector<float>(), (std::vector<float>{1, 2, 3, 0.5, 0.5, 0.5}));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor xi = tensor<int64_t>({1, 2, 3});
  EXPECT_EQ(masked_fill(xi, tensor<bool>({false, true, false}), 9).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 9, 3}));
  Tensor xb = tensor<bool>({true, true});
  EXPECT_EQ(masked_fill(xb, tensor<bool>({false, true}), false).to_vector<bool>(), (std::vector<bool>{true, false}));
  Tensor xt = x.t();  // (3, 2) non-contiguous
  Tensor m = tensor<bool>({true, false, false, false, false, true}, {3, 2});
  EXPECT_EQ(masked_fill(xt, m, 0).to_vector<float>(), (std::vector<float>{0, 4, 2, 5, 3, 0}));
  Tensor neg_inf = masked_fill(x, scalar_tensor(true, {.dtype = kBool}), -INFINITY);
  for (float v : neg_inf.to_vector<float>()) EXPECT_TRUE(std::isinf(v) && v < 0);
}

TEST(MaskedFill, InPlace) {
  Tensor x = tensor<float>({1, 2, 3});
  Tensor& r = masked_fill_(x, tensor<bool>({true, false, true}), 7);
  EXPECT_TRUE(r.is_same(x));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{7, 2, 7}));
  Tensor leaf = zeros({3}).requires_grad_();
  EXPECT_THROW(masked_fill_(leaf, tensor<bool>({true, false, true}), 1), AutogradError);
}

TEST(MaskedFill, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(masked_fill(x, zeros({2, 3}, {.dtype = kUInt8}), 1), DTypeError);
  EXPECT_THROW(masked_fill(x, zeros({2, 3}), 1), DTypeError);
  EXPECT_THROW(masked_fill(x, zeros({4}, {.dtype = kBool}), 1), ShapeError);
  EXPECT_THROW(masked_fill(x, zeros({2, 2, 3}, {.dtype = kBool}), 1), ShapeError);
  EXPECT_THROW(masked_fill_(x, zeros({3, 3}, {.dtype = kBool}), 1), ShapeError);
}

TEST(MaskedFill, Gradients) {
  Tensor mask = tensor<bool>({true, false, false, true, true, false}, {2, 3});
  expect_gradcheck([mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, 3.0); },
                   {random_tensor({2, 3}, 16)});
  expect_gradcheck([mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask.select(0, 0), 3.0); },
                   {random_tensor({4, 3}, 17)});
  // The in-place form on a non-leaf: gradient is zero exactly where the mask is set.
  expect_gradcheck(
      [mask](const std::vector<Tensor>& in) {
        Tensor y = in[0].clone();
        masked_fill_(y, mask, -2.0);
        return y;
      },
      {random_tensor({2, 3}, 18)});
  Tensor x = zeros({2, 3}).requires_grad_();
  masked_fill(x, mask, 5).backward(ones({2, 3}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 1, 1, 0, 0, 1}));
}

// ------------------------------------------------------------------ triu / tril
TEST(Triangle, HandWritten) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4});
  EXPECT_EQ(triu(x).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}));
  EXPECT_EQ(triu(x, 1).to_vector<float>(), (std::vector<float>{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12}));
  EXPECT_EQ(triu(x, -1).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12}));
  EXPECT_EQ(tril(x).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}));
  EXPECT_EQ(tril(x, -1).to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  EXPECT_EQ(tril(x, 2).to_vector<float>(), (std::vector<float>{1, 2, 3, 0, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(triu(x, 10).to_vector<float>(), (std::vector<float>(12, 0.0f)));
  EXPECT_EQ(tril(x, -10).to_vector<float>(), (std::vector<float>(12, 0.0f)));
  EXPECT_EQ(tril(x, 10).to_vector<float>(), x.to_vector<float>());
  Tensor b = tril(ones({3, 3}, {.dtype = kBool}));
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, false, false, true, true, false, true, true, true}));
}

TEST(Triangle, BatchedNonContiguousAgainstNaiveLoop) {
  Tensor x = random_tensor({5, 2, 4}, 19).permute({1, 2, 0});  // (2, 4, 5) strided
  for (int64_t diag : {-2, 0, 1, 3}) {
    Tensor u = triu(x, diag), l = tril(x, diag);
    std::vector<double> uv = u.to_vector<double>(), lv = l.to_vector<double>(), xv = x.to_vector<double>();
    for_each_index(x.shape(), [&](const Shape& i) {
      const int64_t f = flat_index(x.shape(), i);
      EXPECT_EQ(uv[f], i[2] - i[1] >= diag ? xv[f] : 0.0);
      EXPECT_EQ(lv[f], i[2] - i[1] <= diag ? xv[f] : 0.0);
    });
  }
  EXPECT_EQ(triu(zeros({0, 3})).shape(), (Shape{0, 3}));
}

TEST(Triangle, ErrorsAndGradients) {
  EXPECT_THROW(triu(zeros({3})), ShapeError);
  EXPECT_THROW(tril(scalar_tensor(1.0)), ShapeError);
  expect_gradcheck([](const std::vector<Tensor>& in) { return triu(in[0], 1); }, {random_tensor({2, 3, 3}, 20)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return tril(in[0].t(), -1); }, {random_tensor({4, 3}, 21)});
}

// ------------------------------------------------------------------ one_hot
TEST(OneHot, Values) {
  Tensor o = one_hot(tensor<int64_t>({2, 0, 1}));
  EXPECT_EQ(o.dtype(), kInt64);
  EXPECT_EQ(o.shape(), (Shape{3, 3}));
  EXPECT_EQ(o.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 0, 1, 0}));
  Tensor o2 = one_hot(tensor<int64_t>({1, 0, 3, 3}, {2, 2}).t(), 5);
  EXPECT_EQ(o2.shape(), (Shape{2, 2, 5}));
  // t() gives [[1, 3], [0, 3]].
  EXPECT_EQ(o2.to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_EQ(one_hot(empty({0}, {.dtype = kInt64}), 4).shape(), (Shape{0, 4}));
  EXPECT_EQ(one_hot(scalar_tensor(1, {.dtype = kInt64}), 2).to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
}

TEST(OneHot, Errors) {
  EXPECT_THROW(one_hot(tensor<float>({1})), DTypeError);
  EXPECT_THROW(one_hot(tensor<int64_t>({-1, 0})), IndexError);
  EXPECT_THROW(one_hot(tensor<int64_t>({3}), 3), IndexError);
  EXPECT_THROW(one_hot(empty({0}, {.dtype = kInt64})), ValueError);
  EXPECT_THROW(one_hot(tensor<int64_t>({0}), -2), ValueError);
}

// ------------------------------------------------------------------ upstream gradients with stride 0
// sum()'s backward hands an expanded (stride-0) gradient to the op's backward; the kernels must
// read it through its strides.
TEST(IndexingGradients, ExpandedUpstreamGradient) {
  Tensor x = random_tensor({3, 2}, 30).requires_grad_();
  index_select(x, 0, tensor<int64_t>({0, 0, 2})).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2, 0, 0, 1, 1}));
  Tensor w = random_tensor({3, 2}, 31).requires_grad_();
  embedding(w, tensor<int64_t>({2, 2, 1}, {3})).sum().backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{0, 0, 1, 1, 2, 2}));
  Tensor g = random_tensor({2, 3}, 32).requires_grad_();
  gather(g, 1, tensor<int64_t>({2, 2, 0, 1}, {2, 2})).sum().backward();
  EXPECT_EQ(g.grad().to_vector<double>(), (std::vector<double>{0, 0, 2, 1, 1, 0}));
  Tensor s = random_tensor({3, 2}, 33).requires_grad_();
  scatter_add(zeros({2, 2}, {.dtype = kFloat64}), 0, tensor<int64_t>({1, 0}, {1, 2}), s).sum().backward();
  EXPECT_EQ(s.grad().to_vector<double>(), (std::vector<double>{1, 1, 0, 0, 0, 0}));
  Tensor m = random_tensor({2, 2}, 34).requires_grad_();
  triu(masked_fill(m, tensor<bool>({false, true}), 0.0)).sum().backward();
  EXPECT_EQ(m.grad().to_vector<double>(), (std::vector<double>{1, 0, 0, 0}));
}

TEST(IndexingCuda, RunOnCuda) {
  // tests/cuda/test_cuda_indexing.cpp compares these with the CPU in detail.
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).cuda();
  Tensor i = tensor<int64_t>({1, 0}, {2}).cuda();
  EXPECT_EQ(index_select(x, 0, i).cpu().to_vector<float>(), (std::vector<float>{4, 5, 6, 1, 2, 3}));
  EXPECT_EQ(embedding(x, i).cpu().to_vector<float>(), (std::vector<float>{4, 5, 6, 1, 2, 3}));
  EXPECT_EQ(cat({x, x}).cpu().numel(), 12);
  EXPECT_EQ(sort(x, -1, true).first.cpu().to_vector<float>(), (std::vector<float>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(topk(x, 1).second.cpu().to_vector<int64_t>(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(multinomial(tensor<float>({0, 1, 0}).cuda(), 1).cpu().to_vector<int64_t>(), (std::vector<int64_t>{1}));
}

TEST(IndexingDtypes, EveryDtype) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8, kBool}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tensor<double>({1, 2, 0, 3, 0, 1}, {2, 3}).to(dt);
    std::vector<double> xv = x.to_vector<double>();
    Tensor mask = tensor<bool>({true, false, false, false, true, false}, {2, 3});
    std::vector<double> want = xv;
    want[0] = want[4] = 1;
    EXPECT_EQ(masked_fill(x, mask, 1).to_vector<double>(), want);
    EXPECT_EQ(masked_fill(x, mask, 1).dtype(), dt);
    EXPECT_EQ(triu(x).to_vector<double>(), (std::vector<double>{xv[0], xv[1], xv[2], 0, xv[4], xv[5]}));
    EXPECT_EQ(gather(x, 1, tensor<int64_t>({2, 0, 1, 1}, {2, 2})).to_vector<double>(),
              (std::vector<double>{xv[2], xv[0], xv[4], xv[4]}));
    EXPECT_EQ(index_select(x, 1, tensor<int32_t>({2, 2})).to_vector<double>(),
              (std::vector<double>{xv[2], xv[2], xv[5], xv[5]}));
    if (dt != kBool) {
      // Duplicate targets add up: (0, 0) receives x[0][0] + x[0][1], (1, 2) receives x[1][1] + x[1][2].
      Tensor s = scatter_add(zeros({2, 3}, {.dtype = dt}), 1, tensor<int64_t>({0, 0, 2, 1, 2, 2}, {2, 3}), x);
      EXPECT_EQ(s.to_vector<double>(), (std::vector<double>{xv[0] + xv[1], 0, xv[2], 0, xv[3], xv[4] + xv[5]}));
    }
  }
}

TEST(IndexSelect, LargeEnoughToRunOnSeveralThreads) {
  // 600 x 128 output elements: above the kernels' grain, so the parallel path runs.
  Tensor x = random_tensor({1000, 128}, 50, kFloat32);
  Tensor idx = random_index({600}, 1000, 51);
  Tensor out = index_select(x, 0, idx);
  Tensor e = embedding(x, idx.view({20, 30}));
  std::vector<float> xv = x.to_vector<float>(), ov = out.to_vector<float>(), ev = e.to_vector<float>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (int64_t i = 0; i < 600; ++i)
    for (int64_t j = 0; j < 128; ++j) {
      ASSERT_EQ(ov[i * 128 + j], xv[iv[i] * 128 + j]);
      ASSERT_EQ(ev[i * 128 + j], xv[iv[i] * 128 + j]);
    }
}
