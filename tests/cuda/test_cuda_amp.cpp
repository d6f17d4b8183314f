// Mixed precision on the GPU (skips without a device): autocast's dtypes on CUDA tensors, f32
// gradients of f32 masters close to the CPU's, the GradScaler sequence (skip bit for bit on the
// device, backoff, growth) with every value kept on the device, pinned batches and non-blocking
// copies. Mirrors tests/unit/test_amp.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "cuda_diff.hpp"
#include "ember/amp/amp.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/nn/nn.hpp"
#include "ember/optim/optim.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

std::vector<float> host_values(const Tensor& t) {
  const Tensor c = t.detach().to(Device::cpu(), kFloat32).contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

TEST(CudaAmp, AutocastPicks16BitOnCudaOnly) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device dev = Device::cuda();
  const Tensor a = cuda_test::random_tensor({8, 16}, kFloat32, 1).to(dev);
  const Tensor w = cuda_test::random_tensor({4, 16}, kFloat32, 2).to(dev);
  const Tensor x = cuda_test::random_tensor({2, 3, 8, 8}, kFloat32, 3).to(dev);
  const Tensor k = cuda_test::random_tensor({4, 3, 3, 3}, kFloat32, 4).to(dev);
  for (DType low : {kBFloat16, kFloat16}) {
    amp::AutocastGuard g(low, DeviceType::cuda);
    EXPECT_EQ(linear(a, w, Tensor()).dtype(), low);
    EXPECT_EQ(matmul(a, w.t()).dtype(), low);
    EXPECT_EQ(conv2d(x, k, Tensor(), 1, 1).dtype(), low);
    EXPECT_EQ(matmul(a.to(Device::cpu()), w.to(Device::cpu()).t()).dtype(), kFloat32);  // CPU untouched
  }
  EXPECT_EQ(linear(a, w, Tensor()).dtype(), kFloat32);
}

TEST(CudaAmp, GradientsOfMastersAreFloat32AndMatchTheCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Tensor x = cuda_test::random_tensor({32, 16}, kFloat32, 11);
  const Tensor w0 = cuda_test::random_tensor({5, 16}, kFloat32, 12, -0.5, 0.5);
  const Tensor target = argmax(cuda_test::random_tensor({32, 5}, kFloat32, 13), 1);
  auto grads = [&](Device dev) {
    Tensor w = w0.to(dev).detach().requires_grad_(true);
    Tensor loss;
    {
      amp::AutocastGuard g(kBFloat16, dev.type);
      loss = nn::functional::cross_entropy(linear(x.to(dev), w, Tensor()), target.to(dev));
    }
    EXPECT_EQ(loss.dtype(), kFloat32);
    loss.backward();
    EXPECT_EQ(w.grad().dtype(), kFloat32);
    return host_values(w.grad());
  };
  const auto cpu = grads(Device::cpu()), gpu = grads(Device::cuda());
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_FALSE(std::isnan(gpu[i]));
    // The same bf16 operands; the GEMMs' accumulation order differs, and the bf16 rounding of
    // the logits can flip by one unit (2^-8 relative).
    EXPECT_NEAR(gpu[i], cpu[i], 0.02 * std::abs(cpu[i]) + 2e-3) << i;
  }
}

TEST(CudaAmp, GradScalerSequenceOnTheDevice) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device dev = Device::cuda();
  Tensor p = tensor<float>({1.0f, -2.0f, 0.5f, 3.0f}).to(dev).detach().requires_grad_(true);
  optim::SGD opt(std::vector<Tensor>{p}, {.lr = 0.25});
  amp::GradScaler scaler({.init_scale = 8.0, .growth_interval = 2});
  const float inf = std::numeric_limits<float>::infinity();
  struct Step {
    bool inf;
    double scale_after;
    int64_t tracker_after;
  };
  const std::vector<Step> plan = {{false, 8, 1}, {false, 16, 0}, {true, 8, 0}, {false, 8, 1}, {false, 16, 0}};
  for (size_t i = 0; i < plan.size(); ++i) {
    opt.zero_grad();
    std::vector<float> c = {0.5f, 1.0f, -1.5f, 2.0f};
    if (plan[i].inf) c[1] = inf;
    const Tensor before = p.detach().clone();
    scaler.scale((p * tensor<float>(c).to(dev)).sum()).backward();
    scaler.step(opt);
    scaler.update();
    const Tensor now = p.detach().to(Device::cpu()), was = before.to(Device::cpu());
    if (plan[i].inf) {
      EXPECT_EQ(std::memcmp(now.data_ptr(), was.data_ptr(), static_cast<size_t>(now.nbytes())), 0) << "step " << i;
    } else {
      const auto nv = host_values(now), wv = host_values(was);
      for (size_t j = 0; j < c.size(); ++j) EXPECT_EQ(nv[j], wv[j] - 0.25f * c[j]) << "step " << i;
    }
    EXPECT_EQ(scaler.get_scale(), plan[i].scale_after) << "step " << i;
    EXPECT_EQ(scaler.growth_tracker(), plan[i].tracker_after) << "step " << i;
  }
  const auto sd = scaler.state_dict();
  amp::GradScaler back;
  back.load_state_dict(sd);
  EXPECT_EQ(back.state_dict(), sd);
}

TEST(CudaAmp, PinnedBatchesCopyWithoutBlocking) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Tensor x = cuda_test::random_tensor({64, 8}, kFloat32, 21);
  const Tensor y = arange(64, {.dtype = kInt64});
  data::DataLoader loader(data::TensorDataset(x, y), {.batch_size = 16, .num_workers = 2, .pin_memory = true});
  int64_t row = 0;
  for (auto& [bx, by] : loader) {
    EXPECT_TRUE(cuda_backend::is_pinned(bx));
    EXPECT_TRUE(cuda_backend::is_pinned(by));
    const Tensor dx = bx.to(Device::cuda(), /*non_blocking=*/true);
    const Tensor dy = by.to(Device::cuda(), /*non_blocking=*/true);
    // The host reads back on the same stream: ordered after the copies.
    EXPECT_TRUE(equal(dx.to(Device::cpu()), x.narrow(0, row, bx.size(0))));
    EXPECT_TRUE(equal(dy.to(Device::cpu()), y.narrow(0, row, by.size(0))));
    row += bx.size(0);
  }
  EXPECT_EQ(row, 64);
}

}  // namespace
