// FlatBuffer: parameters and gradients re-pointed into one allocation per dtype.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;
using namespace ember::optim;

namespace {

TEST(FlatBuffer, PreservesValuesAndAliasesTheBuffer) {
  nn::Linear a(3, 4), b(4, 2);
  std::vector<Tensor> ps = a.parameters();
  for (auto& p : b.parameters()) ps.push_back(p);
  std::vector<Tensor> before;
  for (auto& p : ps) before.push_back(p.clone());
  Tensor handle = a.weight;  // a handle taken before flattening

  FlatBuffer flat(ps);
  ASSERT_EQ(flat.buckets().size(), 1u);
  const auto& bk = flat.bucket(kFloat32);
  EXPECT_EQ(bk.data.dim(), 1);
  EXPECT_TRUE(flat.is_attached());
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_TRUE(equal(ps[i], before[i])) << i;
    EXPECT_TRUE(ps[i].shares_storage(bk.data)) << i;
    EXPECT_TRUE(ps[i].is_leaf());
    EXPECT_TRUE(ps[i].requires_grad());
    // 64-byte aligned offsets.
    EXPECT_EQ((reinterpret_cast<uintptr_t>(ps[i].data_ptr()) - reinterpret_cast<uintptr_t>(bk.data.data_ptr())) % 64,
              0u);
    ASSERT_TRUE(ps[i].grad().defined());
    EXPECT_TRUE(ps[i].grad().shares_storage(bk.grad));
  }
  EXPECT_TRUE(handle.is_same(a.weight));
  EXPECT_TRUE(a.weight.shares_storage(bk.data));
  // Writing through the flat buffer is visible in the parameters and vice versa.
  {
    NoGradGuard ng;
    bk.data.narrow(0, bk.offsets[0], 1).fill_(42.0);
    EXPECT_EQ(a.weight.to_vector<float>()[0], 42.0f);
    a.bias.fill_(-1.0);
    EXPECT_EQ(bk.data.narrow(0, bk.offsets[1], 1).item<float>(), -1.0f);
  }
}

TEST(FlatBuffer, TrainingStepGoesThroughTheFlatBuffers) {
  nn::Sequential net;
  net.emplace<nn::Linear>(5, 8);
  net.emplace<nn::Tanh>();
  net.emplace<nn::Linear>(8, 1);
  FlatBuffer flat(net.parameters());
  SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  const auto& bk = flat.bucket(kFloat32);
  const Tensor data0 = bk.data.clone();
  Tensor x = ones({4, 5});
  for (int step = 0; step < 2; ++step) {
    flat.zero_grad();
    EXPECT_EQ(bk.grad.abs().sum().item<double>(), 0.0);
    net(x).pow(2).sum().backward();
    EXPECT_GT(bk.grad.abs().sum().item<double>(), 0.0);  // backward accumulated into the flat grad
    EXPECT_TRUE(flat.is_attached());
    // The flat gradient equals the concatenated parameter gradients.
    for (size_t k = 0; k < bk.params.size(); ++k) {
      const Tensor& p = flat.params()[bk.params[k]];
      EXPECT_TRUE(equal(bk.grad.narrow(0, bk.offsets[k], p.numel()).view(p.shape()), p.grad()));
    }
    opt.step();
  }
  EXPECT_FALSE(equal(bk.data, data0));
  EXPECT_TRUE(flat.is_attached());
  // Parameters read the updated flat values.
  Tensor w0 = net.parameters()[0];
  EXPECT_TRUE(equal(bk.data.narrow(0, bk.offsets[0], w0.numel()).view(w0.shape()), w0));
}

TEST(FlatBuffer, ExistingGradientsAreCopiedAndSetToNoneIsRepaired) {
  Tensor p = tensor(std::vector<float>{1, 2, 3}, {3}).requires_grad_(true);
  p.set_grad(tensor(std::vector<float>{0.5f, 0.25f, 0.125f}, {3}));
  FlatBuffer flat({p});
  EXPECT_EQ(p.grad().to_vector<float>(), (std::vector<float>{0.5f, 0.25f, 0.125f}));
  EXPECT_TRUE(p.grad().shares_storage(flat.bucket(kFloat32).grad));
  p.set_grad(Tensor());  // what Optimizer::zero_grad() does by default
  EXPECT_FALSE(flat.is_attached());
  flat.attach_grads();
  EXPECT_TRUE(flat.is_attached());
  EXPECT_EQ(p.grad().to_vector<float>(), (std::vector<float>{0, 0, 0}));
  p.set_grad(tensor(std::vector<float>{7, 8, 9}, {3}));  // a fresh tensor: copied in
  flat.attach_grads();
  EXPECT_EQ(flat.bucket(kFloat32).grad.narrow(0, 0, 3).to_vector<float>(), (std::vector<float>{7, 8, 9}));
}

TEST(FlatBuffer, OneBucketPerDtype) {
  Tensor a = ones({2, 3}, {.requires_grad = true});
  Tensor b = full({5}, 2.0, {.dtype = kFloat64, .requires_grad = true});
  Tensor c = full({1}, 3.0, {.requires_grad = true});
  FlatBuffer flat({a, b, c});
  ASSERT_EQ(flat.buckets().size(), 2u);
  EXPECT_EQ(flat.bucket(kFloat32).params, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(flat.bucket(kFloat32).offsets, (std::vector<int64_t>{0, 16}));  // 6 floats padded to 64 bytes
  EXPECT_EQ(flat.bucket(kFloat32).data.numel(), 17);
  EXPECT_EQ(flat.bucket(kFloat64).params, (std::vector<size_t>{1}));
  EXPECT_EQ(b.dtype(), kFloat64);
  EXPECT_TRUE(equal(b, full({5}, 2.0, {.dtype = kFloat64})));
  EXPECT_EQ(c.item<float>(), 3.0f);
  EXPECT_THROW(flat.bucket(kFloat16), ValueError);
}

TEST(FlatBuffer, Errors) {
  Tensor a = ones({2}, {.requires_grad = true});
  EXPECT_THROW(FlatBuffer({a, a}), ValueError);
  EXPECT_THROW(FlatBuffer({Tensor()}), ValueError);
  Tensor nonleaf = a * 2;
  EXPECT_THROW(FlatBuffer({nonleaf}), ValueError);
}

}  // namespace
