// cat, stack, split, chunk and pad: values against hand-written results and naive loops,
// dtypes, non-contiguous inputs, empty tensors, gradients by central differences, errors.
#include <gtest/gtest.h>

#include <ember/ember.hpp>

#include "unit/test_util.hpp"

using namespace ember;
using namespace ember::test;

// ------------------------------------------------------------------ cat
TEST(Cat, HandWrittenDims) {
  Tensor a = tensor<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor<float>({5, 6}, {1, 2});
  Tensor c0 = cat({a, b}, 0);
  EXPECT_EQ(c0.shape(), (Shape{3, 2}));
  EXPECT_EQ(c0.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor d = tensor<float>({7, 8}, {2, 1});
  Tensor c1 = cat({a, d}, -1);
  EXPECT_EQ(c1.shape(), (Shape{2, 3}));
  EXPECT_EQ(c1.to_vector<float>(), (std::vector<float>{1, 2, 7, 3, 4, 8}));
  Tensor single = cat({a}, 1);
  EXPECT_EQ(single.to_vector<float>(), a.to_vector<float>());
  EXPECT_FALSE(single.shares_storage(a));
}

TEST(Cat, RandomNonContiguousAgainstNaiveLoop) {
  // (3, 2, 4) transposed from (4, 2, 3), a slice with step, and a contiguous one; cat on dim 1.
  Tensor a = random_tensor({4, 2, 3}, 1).permute({2, 1, 0});   // (3, 2, 4)
  Tensor b = random_tensor({3, 10, 4}, 2).slice(1, 1, 10, 3);  // (3, 3, 4)
  Tensor c = random_tensor({3, 1, 4}, 3);                      // (3, 1, 4)
  ASSERT_FALSE(a.is_contiguous());
  ASSERT_FALSE(b.is_contiguous());
  Tensor out = cat({a, b, c}, 1);
  ASSERT_EQ(out.shape(), (Shape{3, 6, 4}));
  std::vector<double> got = out.to_vector<double>();
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for_each_index(out.shape(), [&](const Shape& i) {
    double want;
    if (i[1] < 2)
      want = av[flat_index(a.shape(), {i[0], i[1], i[2]})];
    else if (i[1] < 5)
      want = bv[flat_index(b.shape(), {i[0], i[1] - 2, i[2]})];
    else
      want = cv[flat_index(c.shape(), {i[0], i[1] - 5, i[2]})];
    EXPECT_EQ(got[flat_index(out.shape(), i)], want);
  });
}

TEST(Cat, PromotesDtypes) {
  Tensor i = tensor<int64_t>({1, 2});
  Tensor f = tensor<float>({0.5f});
  Tensor c = cat({i, f});
  EXPECT_EQ(c.dtype(), kFloat32);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 2, 0.5f}));
  Tensor i32 = tensor<int32_t>({3});
  Tensor ci = cat({i32, i});
  EXPECT_EQ(ci.dtype(), kInt64);
  EXPECT_EQ(ci.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 2}));
  Tensor bt = tensor<bool>({true, false});
  Tensor bb = cat({bt, tensor<bool>({true})});
  EXPECT_EQ(bb.dtype(), kBool);
  EXPECT_EQ(bb.to_vector<bool>(), (std::vector<bool>{true, false, true}));
  Tensor d = cat({f, tensor<double>({0.25})});
  EXPECT_EQ(d.dtype(), kFloat64);
  Tensor h = cat({tensor<float>({1.5f}).to(kFloat16), tensor<float>({2.5f}).to(kFloat16)});
  EXPECT_EQ(h.dtype(), kFloat16);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1.5f, 2.5f}));
}

TEST(Cat, SkipsOneDimEmptyTensorsAndHandlesEmpty) {
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor e = empty({0});
  Tensor c = cat({e, a, e}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(c.to_vector<float>(), a.to_vector<float>());
  Tensor only = cat({e, empty({0})});
  EXPECT_EQ(only.shape(), (Shape{0}));
  Tensor z = zeros({2, 0});
  Tensor c2 = cat({z, a, z}, 1);
  EXPECT_EQ(c2.to_vector<float>(), a.to_vector<float>());
  Tensor zz = cat({zeros({0, 3}), zeros({0, 3})}, 0);
  EXPECT_EQ(zz.shape(), (Shape{0, 3}));
}

TEST(Cat, Errors) {
  Tensor a = zeros({2, 3});
  EXPECT_THROW(cat({}), ValueError);
  EXPECT_THROW(cat({a, Tensor()}), ValueError);
  EXPECT_THROW(cat({scalar_tensor(1.0), scalar_tensor(2.0)}), ShapeError);
  EXPECT_THROW(cat({a, zeros({2, 3, 1})}), ShapeError);
  EXPECT_THROW(cat({a, zeros({3, 3})}, 1), ShapeError);
  EXPECT_THROW(cat({a, a}, 2), IndexError);
  EXPECT_THROW(cat({a, a}, -3), IndexError);
  expect_throw_containing([&] { cat({a, a, zeros({2, 4})}, 0); }, "tensor 2 has shape (2, 4)");
  expect_throw_containing([&] { cat({a, a, zeros({2, 4})}, 0); }, "(2, 3)");
}

TEST(Cat, Gradients) {
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return cat({in[0], in[1], in[2]}, 1);
      },
      {random_tensor({2, 3}, 4), random_tensor({2, 1}, 5), random_tensor({2, 2}, 6)});
  // Non-contiguous inputs and a negative dim.
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return cat({in[0].t(), in[1]}, -2);
      },
      {random_tensor({3, 2}, 7), random_tensor({4, 3}, 8)});
}

TEST(Cat, GradientKeepsEachInputsDtypeAndSkipsNonGrad) {
  Tensor a = tensor<float>({1, 2}, {2}).requires_grad_();
  Tensor b = tensor<double>({3, 4, 5}, {3}).requires_grad_();
  Tensor i = tensor<int64_t>({7});
  Tensor e = empty({0}).requires_grad_();
  Tensor out = cat({a, e, i, b});
  ASSERT_EQ(out.dtype(), kFloat64);
  out.backward(tensor<double>({10, 20, 30, 40, 50, 60}));
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{10, 20}));
  EXPECT_EQ(b.grad().dtype(), kFloat64);
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{40, 50, 60}));
  ASSERT_TRUE(e.grad().defined());
  EXPECT_EQ(e.grad().shape(), (Shape{0}));
}

// ------------------------------------------------------------------ stack
TEST(Stack, ValuesAndDims) {
  Tensor a = tensor<float>({1, 2, 3});
  Tensor b = tensor<float>({4, 5, 6});
  Tensor s0 = stack({a, b});
  EXPECT_EQ(s0.shape(), (Shape{2, 3}));
  EXPECT_EQ(s0.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor s1 = stack({a, b}, -1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  EXPECT_EQ(s1.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Tensor s = stack({scalar_tensor(1.0), scalar_tensor(2.0)});
  EXPECT_EQ(s.shape(), (Shape{2}));
  Tensor e = stack({empty({0}), empty({0})});
  EXPECT_EQ(e.shape(), (Shape{2, 0}));
}

TEST(Stack, ErrorsAndGradients) {
  EXPECT_THROW(stack({}), ValueError);
  expect_throw_containing([] { stack({zeros({2, 3}), zeros({2, 4})}); }, "(2, 4) at entry 1");
  EXPECT_THROW(stack({zeros({2, 3}), zeros({2, 3})}, 3), IndexError);
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return stack({in[0], in[1].t()}, 1);
      },
      {random_tensor({2, 3}, 9), random_tensor({3, 2}, 10)});
}

// ------------------------------------------------------------------ split / chunk
TEST(Split, BySizeIsViews) {
  Tensor x = tensor<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {2, 5});
  auto parts = split(x, 2, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(parts[2].shape(), (Shape{2, 1}));
  EXPECT_EQ(parts[1].to_vector<float>(), (std::vector<float>{2, 3, 7, 8}));
  EXPECT_EQ(parts[2].to_vector<float>(), (std::vector<float>{4, 9}));
  for (const Tensor& p : parts) EXPECT_TRUE(p.shares_storage(x));
  auto rows = split(x, 1, -2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].to_vector<float>(), (std::vector<float>{5, 6, 7, 8, 9}));
  auto whole = split(x, 7, 1);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].shape(), (Shape{2, 5}));
  auto none = split(zeros({0, 3}), 0, 0);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].shape(), (Shape{0, 3}));
}

TEST(Split, BySizes) {
  Tensor x = tensor<int64_t>({0, 1, 2, 3, 4, 5});
  auto parts = split(x, std::vector<int64_t>{1, 0, 3, 2});
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].to_vector<int64_t>(), (std::vector<int64_t>{0}));
  EXPECT_EQ(parts[1].numel(), 0);
  EXPECT_EQ(parts[2].to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(parts[3].to_vector<int64_t>(), (std::vector<int64_t>{4, 5}));
}

TEST(Split, Errors) {
  Tensor x = zeros({4, 3});
  EXPECT_THROW(split(x, -1, 0), ValueError);
  EXPECT_THROW(split(x, 0, 0), ValueError);
  EXPECT_THROW(split(x, 2, 2), IndexError);
  EXPECT_THROW(split(scalar_tensor(1.0), 1, 0), ShapeError);
  EXPECT_THROW(split(x, std::vector<int64_t>{1, 2}, 0), ValueError);
  EXPECT_THROW(split(x, std::vector<int64_t>{5, -1}, 0), ValueError);
  EXPECT_THROW(chunk(x, 0, 0), ValueError);
  EXPECT_THROW(chunk(x, 2, -3), IndexError);
}

TEST(Chunk, SizesAsPyTorch) {
  Tensor x = arange(5);
  auto c = chunk(x, 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(c[2].to_vector<int64_t>(), (std::vector<int64_t>{4}));
  // 6 into 4: ceil(6/4) = 2 per chunk, so only 3 chunks (as torch.chunk).
  EXPECT_EQ(chunk(arange(6), 4).size(), 3u);
  EXPECT_EQ(chunk(arange(2), 5).size(), 2u);
  auto e = chunk(zeros({0, 2}), 3, 0);
  ASSERT_EQ(e.size(), 3u);
  for (const Tensor& p : e) EXPECT_EQ(p.shape(), (Shape{0, 2}));
}

TEST(Split, GradientsFlowThroughViews) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return split(in[0], 2, 1)[1]; }, {random_tensor({3, 5}, 11)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return chunk(in[0], 3, 0)[2]; }, {random_tensor({5, 2}, 12)});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        auto p = split(in[0], std::vector<int64_t>{1, 3}, -1);
        return cat({p[1], p[0]}, -1);
      },
      {random_tensor({2, 4}, 13)});
}

// ------------------------------------------------------------------ pad
TEST(Pad, HandWritten) {
  Tensor x = tensor<float>({1, 2, 3});
  EXPECT_EQ(pad(x, {1, 2}, 9).to_vector<float>(), (std::vector<float>{9, 1, 2, 3, 9, 9}));
  EXPECT_EQ(pad(x, {-1, 1}).to_vector<float>(), (std::vector<float>{2, 3, 0}));
  EXPECT_EQ(pad(x, {0, 0}).to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(pad(x, {-2, -1}).shape(), (Shape{0}));
  Tensor m = tensor<float>({1, 2, 3, 4}, {2, 2});
  // (left, right) of the last dim, then (top, bottom).
  Tensor p = pad(m, {1, 0, 0, 1}, -1);
  EXPECT_EQ(p.shape(), (Shape{3, 3}));
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{-1, 1, 2, -1, 3, 4, -1, -1, -1}));
  Tensor crop = pad(m, {0, -1, -1, 0});
  EXPECT_EQ(crop.shape(), (Shape{1, 1}));
  EXPECT_EQ(crop.to_vector<float>(), (std::vector<float>{3}));
  Tensor i = pad(tensor<int64_t>({5, 6}), {1, 1}, 7);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, 5, 6, 7}));
  Tensor b = pad(tensor<bool>({true}), {1, 0});
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{false, true}));
  EXPECT_EQ(pad(zeros({0, 2}), {0, 0, 1, 1}, 3).to_vector<float>(), (std::vector<float>{3, 3, 3, 3}));
}

TEST(Pad, RandomNonContiguousAgainstNaiveLoop) {
  Tensor x = random_tensor({5, 3, 4}, 14).transpose(0, 2);  // (4, 3, 5)
  const std::vector<int64_t> pads{2, -1, -1, 3, 1, 0};      // dim 2: (2, -1), dim 1: (-1, 3), dim 0: (1, 0)
  Tensor out = pad(x, pads, 0.5);
  ASSERT_EQ(out.shape(), (Shape{5, 5, 6}));
  std::vector<double> got = out.to_vector<double>(), xv = x.to_vector<double>();
  const int64_t lead[3] = {1, -1, 2};
  for_each_index(out.shape(), [&](const Shape& o) {
    Shape s(3);
    bool inside = true;
    for (int d = 0; d < 3; ++d) {
      s[d] = o[d] - lead[d];
      inside = inside && s[d] >= 0 && s[d] < x.size(d);
    }
    const double want = inside ? xv[flat_index(x.shape(), s)] : 0.5;
    EXPECT_EQ(got[flat_index(out.shape(), o)], want);
  });
}

TEST(Pad, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(pad(x, {1}), ValueError);
  EXPECT_THROW(pad(x, {1, 1, 1}), ValueError);
  EXPECT_THROW(pad(x, {1, 1, 1, 1, 1, 1}), ValueError);
  EXPECT_THROW(pad(x, {-2, -2}), ValueError);
  expect_throw_containing([&] { pad(x, {1, 1, 1}); }, "padding length");
}

TEST(Pad, Gradients) {
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return pad(in[0], {1, -1, 2, 0}, 3.0);
      },
      {random_tensor({3, 4}, 15)});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return pad(in[0].transpose(0, 2), {-1, 2});
      },
      {random_tensor({2, 3, 4}, 16)});
}

TEST(JoinGradients, ExpandedUpstreamGradient) {
  // sum()'s backward gives a stride-0 gradient; narrow/pad must read it through its strides.
  Tensor a = random_tensor({2, 2}, 40).requires_grad_();
  Tensor b = random_tensor({2, 1}, 41).requires_grad_();
  cat({a, b}, 1).sum().backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, 1, 1, 1}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));
  Tensor p = random_tensor({3}, 42).requires_grad_();
  pad(p, {-1, 2}).sum().backward();
  EXPECT_EQ(p.grad().to_vector<double>(), (std::vector<double>{0, 1, 1}));
}
