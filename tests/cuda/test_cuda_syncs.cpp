// cuda::host_sync_count(): each blocking call of the CUDA runtime is counted exactly once, async
// work is not counted, and a training step whose data and bookkeeping stay on the device (Adam;
// Adam with StepGuard; fp16 autocast with GradScaler; SGD on the CNN) blocks the host 0 times
// after warm-up. The loss is read (loss.item(), a sync) outside the counted region. All but the
// first test skip without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

const Device kGpu = Device::cuda(0);

std::shared_ptr<nn::Sequential> make_mlp() {
  auto m = std::make_shared<nn::Sequential>();
  m->emplace<nn::Flatten>();
  m->emplace<nn::Linear>(64, 48);
  m->emplace<nn::ReLU>();
  m->emplace<nn::Linear>(48, 32);
  m->emplace<nn::ReLU>();
  m->emplace<nn::Linear>(32, 10);
  return m;
}

std::shared_ptr<nn::Sequential> make_cnn() {
  auto m = std::make_shared<nn::Sequential>();
  m->emplace<nn::Conv2d>(1, 8, 3, nn::Conv2dOptions{.padding = 1});
  m->emplace<nn::BatchNorm2d>(8);
  m->emplace<nn::ReLU>();
  m->emplace<nn::MaxPool2d>(2);
  m->emplace<nn::Flatten>();
  m->emplace<nn::Linear>(8 * 4 * 4, 10);
  return m;
}

enum class Mode { plain, guard, fp16_scaler, bf16_autocast };

// Trains `model` on a fixed device-resident batch: `warmup` uncounted steps (the allocator,
// cuBLAS/cuDNN plans and optimizer state settle; the loss is read each step), then `steps`
// counted steps whose losses are read only afterwards. Returns the counted syncs.
uint64_t counted_steps(nn::Sequential& model, const Tensor& x, const Tensor& y, optim::Optimizer& opt, Mode mode,
                       int warmup = 3, int steps = 5) {
  std::optional<optim::StepGuard> guard;
  if (mode == Mode::guard) guard.emplace(opt);
  std::optional<amp::GradScaler> scaler;
  if (mode == Mode::fp16_scaler) scaler.emplace();
  const bool autocast = mode == Mode::fp16_scaler || mode == Mode::bf16_autocast;
  const DType amp_dtype = mode == Mode::fp16_scaler ? kFloat16 : kBFloat16;

  auto step = [&]() -> Tensor {
    opt.zero_grad();
    Tensor loss;
    {
      amp::AutocastGuard ac(amp_dtype, DeviceType::cuda, autocast);
      loss = nn::functional::cross_entropy(model.forward(x), y);
    }
    if (scaler) {
      scaler->scale(loss).backward();
      scaler->unscale_(opt);
    } else {
      loss.backward();
    }
    if (guard) guard->check(loss);
    if (scaler) {
      scaler->step(opt);
      scaler->update();
    } else {
      opt.step();
    }
    return loss;
  };

  for (int i = 0; i < warmup; ++i) {
    const double l = step().item<double>();
    EXPECT_TRUE(std::isfinite(l)) << "warm-up step " << i;
  }
  cuda::synchronize();
  std::vector<Tensor> losses;
  const uint64_t n = syncs_during([&] {
    for (int i = 0; i < steps; ++i) losses.push_back(step());
  });
  for (const Tensor& l : losses) EXPECT_TRUE(std::isfinite(l.item<double>()));  // after counting
  if (guard) EXPECT_EQ(guard->skipped_steps(), 0);
  return n;
}

// A batch of 32 images (1×8×8 for both models) and labels, resident on the device.
std::pair<Tensor, Tensor> device_batch() {
  Generator gen(7);
  Tensor x = randn({32, 1, 8, 8}, {}, &gen).to(kGpu);
  Tensor y = randint(0, 10, {32}, {.dtype = kInt64}, &gen).to(kGpu);
  return {x, y};
}

}  // namespace

TEST(CudaHostSyncs, CounterIsReadableAnywhere) {
  // 0 with no device (nothing ever blocked), and never decreasing.
  const uint64_t a = cuda::host_sync_count();
  const uint64_t b = cuda::host_sync_count();
  EXPECT_LE(a, b);
  if (cuda::device_count() == 0) EXPECT_EQ(a, 0u);
}

TEST(CudaHostSyncs, EachBlockingCallCountsOnce) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor t = full({4}, 2.0f, {.device = kGpu});
  cuda::synchronize();
  EXPECT_EQ(syncs_during([] { cuda::synchronize(); }), 1u) << "cuda::synchronize";
  EXPECT_EQ(syncs_during([] { cuda::current_stream().synchronize(); }), 1u) << "Stream::synchronize";
  EXPECT_EQ(syncs_during([] {
              cuda::Event e;
              e.record();
              e.synchronize();
            }),
            1u)
      << "Event::synchronize";
  EXPECT_EQ(syncs_during([&] { EXPECT_EQ(t.sum().item<float>(), 8.0f); }), 1u) << "item()";
  EXPECT_EQ(syncs_during([&] { EXPECT_EQ(t.cpu().to_vector<float>(), std::vector<float>(4, 2.0f)); }), 1u) << "to(cpu)";
  // An owned stream's destructor waits for its work.
  EXPECT_EQ(syncs_during([] { cuda::Stream s = cuda::Stream::create(); }), 1u) << "~Stream";
}

TEST(CudaHostSyncs, HostToDeviceCopies) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Tensor host = full({1024}, 3.0f);
  Tensor d;
  // Blocking from pageable memory: the driver may wait for earlier transfers.
  EXPECT_EQ(syncs_during([&] { d = host.to(kGpu); }), 1u) << "blocking pageable copy";
  // Non-blocking: staged through Ember's pinned buffers, no wait.
  EXPECT_EQ(syncs_during([&] { d = host.to(kGpu, /*non_blocking=*/true); }), 0u) << "non-blocking copy";
  EXPECT_EQ(d.cpu().to_vector<float>(), std::vector<float>(1024, 3.0f));
  // Non-blocking from pinned memory: straight from the page-locked block.
  const Tensor pinned = cuda_backend::pin_memory(host);
  ASSERT_TRUE(cuda_backend::is_pinned(pinned));
  EXPECT_EQ(syncs_during([&] { d = pinned.to(kGpu, /*non_blocking=*/true); }), 0u) << "pinned non-blocking copy";
  EXPECT_EQ(d.cpu().to_vector<float>(), std::vector<float>(1024, 3.0f));
  // Blocking from pinned memory waits for the copy (the caller may reuse the source at once).
  EXPECT_EQ(syncs_during([&] { d = pinned.to(kGpu); }), 1u) << "pinned blocking copy";
}

TEST(CudaHostSyncs, DeviceWorkIsNotCounted) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor a = randn({256, 256}).to(kGpu), b = randn({256, 256}).to(kGpu);
  Tensor y;
  (void)matmul(a, b);  // cuBLAS handle and workspace
  cuda::synchronize();
  EXPECT_EQ(syncs_during([&] {
              y = relu(matmul(a, b) + 1.0) * a;
              y = y.sum({1});
              y = softmax(y, 0);
            }),
            0u);
  ASSERT_TRUE(y.is_cuda());
}

TEST(CudaHostSyncs, MlpAdamStepHasNoSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(1);
  auto model = make_mlp();
  model->to(kGpu);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto [x, y] = device_batch();
  EXPECT_EQ(counted_steps(*model, x, y, opt, Mode::plain), 0u);
}

TEST(CudaHostSyncs, MlpAdamWithStepGuardHasNoSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(2);
  auto model = make_mlp();
  model->to(kGpu);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto [x, y] = device_batch();
  EXPECT_EQ(counted_steps(*model, x, y, opt, Mode::guard), 0u);
}

TEST(CudaHostSyncs, MlpFp16GradScalerHasNoSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(3);
  auto model = make_mlp();
  model->to(kGpu);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto [x, y] = device_batch();
  EXPECT_EQ(counted_steps(*model, x, y, opt, Mode::fp16_scaler), 0u);
}

TEST(CudaHostSyncs, MlpBf16AutocastHasNoSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(4);
  auto model = make_mlp();
  model->to(kGpu);
  optim::AdamW opt(model->parameters(), {.lr = 1e-3});
  auto [x, y] = device_batch();
  EXPECT_EQ(counted_steps(*model, x, y, opt, Mode::bf16_autocast), 0u);
}

TEST(CudaHostSyncs, CnnSgdStepHasNoSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(5);
  auto model = make_cnn();
  model->to(kGpu);
  optim::SGD opt(model->parameters(), {.lr = 0.05, .momentum = 0.9});
  auto [x, y] = device_batch();
  EXPECT_EQ(counted_steps(*model, x, y, opt, Mode::plain), 0u);
}

TEST(CudaHostSyncs, CountedStepsFailWhenTheStepReadsTheLoss) {
  // The check can fail: a step that reads its loss on the host is counted.
  EMBER_REQUIRE_CUDA_DEVICE();
  manual_seed(6);
  auto model = make_mlp();
  model->to(kGpu);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  auto [x, y] = device_batch();
  const uint64_t n = syncs_during([&] {
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      Tensor loss = nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      opt.step();
      (void)loss.item<double>();
    }
  });
  EXPECT_GE(n, 3u);
}
