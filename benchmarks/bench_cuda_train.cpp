// Training-step time of the Fashion-MNIST example's models (examples/fashion_mnist/models.hpp:
// the 784-256-128-10 MLP and the two-block CNN) on the GPU: Adam 1e-3 as the example's default,
// batch 128 and 512, --amp off / bf16 (autocast) / fp16 (autocast + GradScaler), on synthetic
// images and labels already on the device (16 batches, cycled), so that the figure is the step
// itself: zero_grad, forward, cross-entropy, backward, update. The loss is never read (that is a
// host synchronisation; the example reads it every step for its log).
//
// One benchmark iteration = kStepsPerIter steps followed by cuda::synchronize(), timed with the
// wall clock (UseRealTime): host overhead counts, as it does in training. Counters:
//   ms/step          wall milliseconds per step
//   images/s         batch · steps / seconds
//   host_syncs/step  cuda::host_sync_count() added by the steps themselves (the closing
//                    synchronize of each iteration is not counted); the issue requires 0
// An epoch of Fashion-MNIST is 469 steps of 128 (60000 images): epoch seconds ≈ 0.469 · ms/step.
//
//   bench_cuda_train --benchmark_filter=CNN --benchmark_counters_tabular=true
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../examples/fashion_mnist/models.hpp"
#include "bench_cuda_common.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;

namespace {

const Device kGpu = Device::cuda(0);
constexpr int kBatches = 16;
constexpr int kStepsPerIter = 10;

enum Amp : int64_t { kOff = 0, kBf16 = 1, kFp16 = 2 };
const char* amp_name(int64_t a) { return a == kOff ? "off" : a == kBf16 ? "bf16" : "fp16"; }

struct Data {
  std::vector<Tensor> x, y;
};

// kBatches batches of 1×28×28 images in [0, 1) and labels in [0, 10), on the device.
Data device_data(int64_t batch) {
  Generator gen(42);
  Data d;
  for (int i = 0; i < kBatches; ++i) {
    d.x.push_back(rand({batch, 1, 28, 28}, {}, &gen).to(kGpu));
    d.y.push_back(randint(0, 10, {batch}, {.dtype = kInt64}, &gen).to(kGpu));
  }
  return d;
}

void BM_TrainStep(benchmark::State& state, const std::string& model_name) {
  const int64_t batch = state.range(0);
  const int64_t amp_mode = state.range(1);
  try {
    if (model_name == "cnn") {
      std::string why;
      if (!cuda_backend::cudnn_available(&why)) {
        state.SkipWithError(("cuDNN is not available: " + why).c_str());
        return;
      }
    }
    manual_seed(0);
    auto model = fashion_mnist::make_model(model_name);
    model->to(kGpu);
    model->train();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    std::optional<amp::GradScaler> scaler;
    if (amp_mode == kFp16) scaler.emplace();
    const DType amp_dtype = amp_mode == kFp16 ? kFloat16 : kBFloat16;
    const Data data = device_data(batch);
    int next = 0;

    auto step = [&] {
      const Tensor& x = data.x[static_cast<size_t>(next)];
      const Tensor& y = data.y[static_cast<size_t>(next)];
      next = (next + 1) % kBatches;
      opt.zero_grad();
      Tensor loss;
      {
        amp::AutocastGuard ac(amp_dtype, DeviceType::cuda, amp_mode != kOff);
        loss = nn::functional::cross_entropy(model->forward(x), y);
      }
      if (scaler) {
        scaler->scale(loss).backward();
        scaler->step(opt);
        scaler->update();
      } else {
        loss.backward();
        opt.step();
      }
    };

    // Warm-up: cuBLASLt/cuDNN plans, the allocator's blocks, the optimizer state.
    for (int i = 0; i < 2 * kBatches; ++i) step();
    cuda::synchronize();

    uint64_t syncs = 0;
    int64_t steps = 0;
    for (auto _ : state) {
      const uint64_t before = cuda::host_sync_count();
      for (int i = 0; i < kStepsPerIter; ++i) step();
      syncs += cuda::host_sync_count() - before;
      cuda::synchronize();
      steps += kStepsPerIter;
    }
    const auto n = static_cast<double>(std::max<int64_t>(steps, 1));
    state.counters["host_syncs/step"] = static_cast<double>(syncs) / n;
    // Rates divide by the benchmark's time, the real time here (UseRealTime).
    state.counters["ms/step"] = benchmark::Counter(n / 1e3, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch) * n, benchmark::Counter::kIsRate);
    state.SetLabel(model_name + " batch " + std::to_string(batch) + " amp " + amp_name(amp_mode));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void args(benchmark::internal::Benchmark* b) {
  for (int64_t amp : {kOff, kBf16, kFp16})
    for (int64_t batch : {128, 512}) b->Args({batch, amp});
}

}  // namespace

BENCHMARK_CAPTURE(BM_TrainStep, MLP, std::string("mlp"))->Apply(args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, CNN, std::string("cnn"))->Apply(args)->UseRealTime()->Unit(benchmark::kMillisecond);

EMBER_CUDA_BENCHMARK_MAIN()
