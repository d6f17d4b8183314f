// Training on the GPU against training on the CPU: a small MLP (Adam) and a small CNN (conv, batch
// norm, ReLU, max pool, dropout p = 0; SGD with momentum) start from the same weights and see the
// same 20 batches on both devices. Float32 with TF32 off: the per-step losses, the final
// parameters and the batch-norm buffers match within tolerances derived below. Under bf16
// autocast on the GPU the losses stay within a looser bound of the float32 CPU run. All skip
// without a CUDA device.
//
// Tolerances. Both backends round every operation in float32 (unit roundoff u = 6e-8) but sum in
// different orders (oneDNN/own kernels vs cuBLAS/cuDNN/CUDA reductions), so one step's results
// differ by about u·sqrt(K)·(a few) relative for reductions of length K ≤ 288: ~1e-6. The
// learning rates are small (each update moves a parameter by ≤ lr·|g| ≈ 1e-3), so over 20 steps
// the difference grows at most a few times. Losses: |Δ| ≤ 1e-4 + 1e-4·|loss| (about 100× the
// expected difference; a wrong gradient, a missed momentum or batch-norm update changes the loss
// by ≥ 1e-3 within a few steps). Parameters and buffers: |Δ| ≤ 1e-4 + 1e-3·|ref|. Adam's update
// g/(sqrt(v)+eps) amplifies relative differences of gradients near 0 (a sign flip of a gradient
// of 1e-9 moves a weight by 2·lr); eps = 1e-4 keeps that linear for such gradients, so they
// contribute only their (tiny) absolute difference.
// bf16: operands of matmul/linear/conv are rounded to 8 significant bits (relative 2^-9 ≈ 2e-3);
// with f32 accumulation a logit of a length-K product is off by ≈ 2e-3·sqrt(K)·|typical term|,
// below 0.02 for these models, and cross-entropy moves by at most 2·max|Δlogit|. Training on
// slightly different losses then drifts a little more: |Δloss| ≤ 0.04 + 0.01·loss (bf16 autocast on
// the CPU backend stays within 5e-3 of its float32 run for the CNN, 4e-4 for the MLP). The bf16
// run must also differ from the float32 GPU run somewhere (autocast did act).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

const Device kGpu = Device::cuda(0);
constexpr int kSteps = 20;
constexpr int64_t kBatch = 32;
constexpr int64_t kSide = 12;  // 1×12×12 images
constexpr int64_t kClasses = 10;

std::shared_ptr<nn::Sequential> make_mlp() {
  auto m = std::make_shared<nn::Sequential>();
  m->emplace<nn::Flatten>();
  m->emplace<nn::Linear>(kSide * kSide, 64);
  m->emplace<nn::ReLU>();
  m->emplace<nn::Linear>(64, 32);
  m->emplace<nn::ReLU>();
  m->emplace<nn::Linear>(32, kClasses);
  return m;
}

std::shared_ptr<nn::Sequential> make_cnn() {
  auto m = std::make_shared<nn::Sequential>();
  m->emplace<nn::Conv2d>(1, 8, 3, nn::Conv2dOptions{.padding = 1});
  m->emplace<nn::BatchNorm2d>(8);
  m->emplace<nn::ReLU>();
  m->emplace<nn::MaxPool2d>(2);  // 12 → 6
  m->emplace<nn::Conv2d>(8, 8, 3, nn::Conv2dOptions{.padding = 1});
  m->emplace<nn::BatchNorm2d>(8);
  m->emplace<nn::ReLU>();
  m->emplace<nn::MaxPool2d>(2);  // 6 → 3
  m->emplace<nn::Flatten>();
  m->emplace<nn::Linear>(8 * 3 * 3, 32);
  m->emplace<nn::ReLU>();
  m->emplace<nn::Dropout>(0.0);
  m->emplace<nn::Linear>(32, kClasses);
  return m;
}

struct Batch {
  Tensor x, y;
};

// kSteps batches with a learnable rule (the label is the brightest of ten fixed pixel blocks),
// so that the loss falls over the run.
std::vector<Batch> make_batches(uint64_t seed) {
  Generator gen(seed);
  std::vector<Batch> out;
  for (int s = 0; s < kSteps; ++s) {
    Tensor x = randn({kBatch, 1, kSide, kSide}, {}, &gen);
    Tensor y = randint(0, kClasses, {kBatch}, {.dtype = kInt64}, &gen);
    std::vector<float> xs = x.to_vector<float>();
    const std::vector<int64_t> ys = y.to_vector<int64_t>();
    for (int64_t i = 0; i < kBatch; ++i)  // brighten the block of the label's column
      for (int64_t r = 0; r < kSide; ++r) xs[static_cast<size_t>(i * kSide * kSide + r * kSide + ys[i])] += 1.5f;
    out.push_back({tensor<float>(xs, {kBatch, 1, kSide, kSide}), y});
  }
  return out;
}

enum class Opt { adam, sgd };

std::unique_ptr<optim::Optimizer> make_optimizer(Opt o, const std::vector<Tensor>& params) {
  if (o == Opt::adam) return std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = 1e-3, .eps = 1e-4});
  return std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = 0.02, .momentum = 0.9});
}

// Trains `model` (already on `device`) on the batches; returns the per-step losses (read after
// each step). `autocast`: bf16 autocast (for `device`'s type) around the forward pass and the loss.
std::vector<double> train(nn::Sequential& model, Device device, Opt o, const std::vector<Batch>& batches,
                          bool autocast = false) {
  auto opt = make_optimizer(o, model.parameters());
  model.train();
  std::vector<double> losses;
  for (const Batch& b : batches) {
    const Tensor x = b.x.to(device), y = b.y.to(device);
    opt->zero_grad();
    Tensor loss;
    {
      amp::AutocastGuard ac(kBFloat16, device.type, autocast);
      loss = nn::functional::cross_entropy(model.forward(x), y);
    }
    EXPECT_EQ(loss.dtype(), kFloat32);
    loss.backward();
    opt->step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

::testing::AssertionResult losses_close(const std::vector<double>& got, const std::vector<double>& ref, double atol,
                                        double rtol) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << got.size() << " losses vs " << ref.size();
  std::string report;
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(ref[i])) {
      report += " step " + std::to_string(i) + " not finite;";
      ++bad;
      continue;
    }
    if (std::abs(got[i] - ref[i]) > atol + rtol * std::abs(ref[i])) {
      report += " step " + std::to_string(i) + ": " + std::to_string(got[i]) + " vs " + std::to_string(ref[i]) + ";";
      ++bad;
    }
  }
  if (bad > 0) return ::testing::AssertionFailure() << bad << " of " << ref.size() << " losses differ:" << report;
  return ::testing::AssertionSuccess();
}

// CPU and GPU copies of one freshly initialised model (same weights and buffers).
std::pair<std::shared_ptr<nn::Sequential>, std::shared_ptr<nn::Sequential>> twin_models(
    const std::function<std::shared_ptr<nn::Sequential>()>& make, uint64_t seed) {
  manual_seed(seed);
  auto cpu_model = make();
  auto gpu_model = make();
  gpu_model->load_state_dict(cpu_model->state_dict());
  gpu_model->to(kGpu);
  return {cpu_model, gpu_model};
}

void expect_same_state(const nn::Sequential& gpu, const nn::Sequential& cpu, Tol tol) {
  const nn::StateDict g = gpu.state_dict(), c = cpu.state_dict();
  ASSERT_EQ(g.size(), c.size());
  for (const auto& [name, ref] : c) {
    auto it = g.find(name);
    ASSERT_NE(it, g.end()) << name;
    ASSERT_TRUE(it->second.is_cuda()) << name;
    if (is_floating(ref.dtype()))
      EXPECT_TRUE(close_to(it->second, ref, tol)) << name;
    else
      EXPECT_EQ(it->second.cpu().to_vector<int64_t>(), ref.to_vector<int64_t>()) << name;
  }
}

void expect_learns(const std::vector<double>& losses) {
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps));
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += losses[static_cast<size_t>(i)];
    last += losses[static_cast<size_t>(kSteps - 1 - i)];
  }
  EXPECT_LT(last, first) << "the loss did not fall: the comparison would be vacuous";
}

void require_cudnn() {
  std::string why;
  ASSERT_TRUE(cuda_backend::cudnn_available(&why)) << "cuDNN: " << why;
}

constexpr Tol kLossTol{1e-4, 1e-4};
constexpr Tol kParamTol{1e-4, 1e-3};

}  // namespace

TEST(CudaTraining, MlpAdamMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(11);
  auto [cpu_model, gpu_model] = twin_models(make_mlp, 21);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::adam, batches);
  const auto got = train(*gpu_model, kGpu, Opt::adam, batches);
  expect_learns(ref);
  EXPECT_TRUE(losses_close(got, ref, kLossTol.atol, kLossTol.rtol));
  expect_same_state(*gpu_model, *cpu_model, kParamTol);
}

TEST(CudaTraining, MlpSgdMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(12);
  auto [cpu_model, gpu_model] = twin_models(make_mlp, 22);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::sgd, batches);
  const auto got = train(*gpu_model, kGpu, Opt::sgd, batches);
  expect_learns(ref);
  EXPECT_TRUE(losses_close(got, ref, kLossTol.atol, kLossTol.rtol));
  expect_same_state(*gpu_model, *cpu_model, kParamTol);
}

TEST(CudaTraining, CnnSgdMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  require_cudnn();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(13);
  auto [cpu_model, gpu_model] = twin_models(make_cnn, 23);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::sgd, batches);
  const auto got = train(*gpu_model, kGpu, Opt::sgd, batches);
  expect_learns(ref);
  EXPECT_TRUE(losses_close(got, ref, kLossTol.atol, kLossTol.rtol));
  // Parameters and the batch-norm buffers (running mean/var, num_batches_tracked).
  expect_same_state(*gpu_model, *cpu_model, kParamTol);
}

TEST(CudaTraining, CnnAdamMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  require_cudnn();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(14);
  auto [cpu_model, gpu_model] = twin_models(make_cnn, 24);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::adam, batches);
  const auto got = train(*gpu_model, kGpu, Opt::adam, batches);
  expect_learns(ref);
  EXPECT_TRUE(losses_close(got, ref, kLossTol.atol, kLossTol.rtol));
  expect_same_state(*gpu_model, *cpu_model, kParamTol);
}

TEST(CudaTraining, MlpBf16AutocastStaysNearF32) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(15);
  auto [cpu_model, gpu_f32] = twin_models(make_mlp, 25);
  auto gpu_bf16 = make_mlp();
  gpu_bf16->load_state_dict(cpu_model->state_dict());
  gpu_bf16->to(kGpu);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::adam, batches);
  const auto f32 = train(*gpu_f32, kGpu, Opt::adam, batches);
  const auto bf16 = train(*gpu_bf16, kGpu, Opt::adam, batches, /*autocast=*/true);
  EXPECT_TRUE(losses_close(bf16, ref, 0.04, 0.01));
  double max_diff = 0;
  for (size_t i = 0; i < f32.size(); ++i) max_diff = std::max(max_diff, std::abs(bf16[i] - f32[i]));
  EXPECT_GT(max_diff, 0.0) << "bf16 autocast gave the float32 losses bit for bit: did it run?";
  expect_learns(bf16);
  for (const Tensor& p : gpu_bf16->parameters()) EXPECT_EQ(p.dtype(), kFloat32) << "master weights stay float32";
}

TEST(CudaTraining, CnnBf16AutocastStaysNearF32) {
  EMBER_REQUIRE_CUDA_DEVICE();
  require_cudnn();
  cuda::set_allow_tf32(false);
  const auto batches = make_batches(16);
  auto [cpu_model, gpu_f32] = twin_models(make_cnn, 26);
  auto gpu_bf16 = make_cnn();
  gpu_bf16->load_state_dict(cpu_model->state_dict());
  gpu_bf16->to(kGpu);
  const auto ref = train(*cpu_model, Device::cpu(), Opt::sgd, batches);
  const auto f32 = train(*gpu_f32, kGpu, Opt::sgd, batches);
  const auto bf16 = train(*gpu_bf16, kGpu, Opt::sgd, batches, /*autocast=*/true);
  EXPECT_TRUE(losses_close(bf16, ref, 0.04, 0.01));
  double max_diff = 0;
  for (size_t i = 0; i < f32.size(); ++i) max_diff = std::max(max_diff, std::abs(bf16[i] - f32[i]));
  EXPECT_GT(max_diff, 0.0) << "bf16 autocast gave the float32 losses bit for bit: did it run?";
  expect_learns(bf16);
}

TEST(CudaTraining, LossComparisonCanFail) {
  // The comparison helper rejects a difference just above its bound and any NaN (runs anywhere).
  EXPECT_TRUE(losses_close({1.0, 2.0}, {1.0, 2.0}, 1e-4, 1e-4));
  EXPECT_FALSE(losses_close({1.0, 2.0 + 4e-4}, {1.0, 2.0}, 1e-4, 1e-4));
  EXPECT_FALSE(losses_close({1.0, std::nan("")}, {1.0, 2.0}, 1e-4, 1e-4));
  EXPECT_FALSE(losses_close({1.0}, {1.0, 2.0}, 1e-4, 1e-4));
}
