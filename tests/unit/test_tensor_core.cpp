// Tensor metadata, factories, views sharing storage, conversion, and autograd through views.
#include <gtest/gtest.h>

#include <ember/ember.hpp>

using namespace ember;

TEST(TensorCore, FactoriesAndMetadata) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_TRUE(z.is_contiguous());
  for (float v : z.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  Tensor f = full({4}, 2.5, {.dtype = kFloat64});
  for (double v : f.to_vector<double>()) EXPECT_EQ(v, 2.5);
  EXPECT_THROW(zeros({-1, 2}), ValueError);
}

TEST(TensorCore, ViewsShareStorage) {
  Tensor a = tensor<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.t();
  EXPECT_TRUE(t.shares_storage(a));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor row = a.select(0, 1);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{3, 4, 5}));
  row.fill_(7);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 1, 2, 7, 7, 7}));
  Tensor col = a.slice(1, 0, 3, 2);
  EXPECT_EQ(col.shape(), (Shape{2, 2}));
  EXPECT_EQ(col.to_vector<float>(), (std::vector<float>{0, 2, 7, 7}));
  EXPECT_EQ(a.view({3, 2}).shape(), (Shape{3, 2}));
  EXPECT_EQ(a.view({-1}).shape(), (Shape{6}));
  EXPECT_THROW(t.view({6}), ShapeError);
  EXPECT_EQ(t.reshape({6}).to_vector<float>(), (std::vector<float>{0, 7, 1, 7, 2, 7}));
  EXPECT_EQ(a.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(a.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(a.unsqueeze(0).squeeze().shape(), (Shape{2, 3}));
  EXPECT_EQ(a.permute({1, 0}).to_vector<float>(), t.to_vector<float>());
  Tensor e = tensor<float>({1, 2, 3}).expand({2, 3});
  EXPECT_EQ(e.strides(), (Shape{0, 1}));
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  EXPECT_THROW(a.expand({3, 3}), ShapeError);
  EXPECT_THROW(a.select(2, 0), IndexError);
}

TEST(TensorCore, ConversionAndCopy) {
  Tensor a = tensor<float>({1.5f, -2.25f, 3.0f});
  Tensor d = a.to(kFloat64);
  EXPECT_EQ(d.dtype(), kFloat64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1.5, -2.25, 3.0}));
  Tensor i = a.to(kInt32);
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 3}));
  Tensor h = a.to(kFloat16);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3.0f}));
  Tensor b = a.to(kBFloat16);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3.0f}));
  Tensor c = a.clone();
  EXPECT_FALSE(c.shares_storage(a));
  EXPECT_THROW(a.item<float>(), ValueError);
  EXPECT_EQ(a.select(0, 1).item<float>(), -2.25f);
}

TEST(TensorCore, EmptyTensorsAreContiguous) {
  // contiguous_strides treats a 0 size as 1, so an empty (5, 0, 3) tensor has strides (3, 3, 1):
  // it must still report contiguous, as PyTorch does for every tensor without elements.
  const Tensor e = empty({5, 0, 3});
  EXPECT_TRUE(e.is_contiguous());
  EXPECT_TRUE(empty({0}).is_contiguous());
  EXPECT_TRUE(zeros({4, 0}).transpose(0, 1).is_contiguous());
  EXPECT_EQ(e.contiguous().data_ptr(), e.data_ptr());
  // A non-empty transposed view is still not contiguous.
  EXPECT_FALSE(zeros({2, 3}).transpose(0, 1).is_contiguous());
}
