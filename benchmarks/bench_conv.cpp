// The Fashion-MNIST CNN's convolution, pooling and batch-norm layers at batch 128, forward and
// forward+backward, at 1 and 2 threads; and one whole training step of the CNN (forward,
// cross entropy, backward, Adam), whose time × 469 steps estimates the epoch.
//
//   conv1: (128, 1, 28, 28) * (32, 1, 3, 3), pad 1 (its input needs no gradient)
//   conv2: (128, 32, 14, 14) * (64, 32, 3, 3), pad 1
// Counters: GFLOP/s for the convolutions (2 multiply-add flops per MAC, per direction run),
// ms per call (the benchmark's own time column).
//
// EMBER_CONV_PLAIN=1 pins oneDNN to plain NCHW layouts (no reorders) to compare the two.
#include <benchmark/benchmark.h>

#include "ember/ember.hpp"

namespace {

using namespace ember;

struct ConvCase {
  int64_t c, h, o;
  bool input_grad;
};
const ConvCase kConv[] = {{1, 28, 32, false}, {32, 14, 64, true}};

double conv_flops(const ConvCase& k) { return 2.0 * 128 * k.o * k.h * k.h * k.c * 9; }

void set_threads(benchmark::State& state) { set_num_threads(static_cast<int>(state.range(1))); }

void BM_ConvForward(benchmark::State& state) {
  set_threads(state);
  const ConvCase& k = kConv[state.range(0)];
  manual_seed(0);
  Tensor x = randn({128, k.c, k.h, k.h}), w = randn({k.o, k.c, 3, 3}), b = randn({k.o});
  NoGradGuard ng;
  for (auto _ : state) benchmark::DoNotOptimize(conv2d(x, w, b, 1, 1));
  state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(k), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ConvForwardBackward(benchmark::State& state) {
  set_threads(state);
  const ConvCase& k = kConv[state.range(0)];
  manual_seed(0);
  Tensor x = randn({128, k.c, k.h, k.h}).requires_grad_(k.input_grad);
  Tensor w = randn({k.o, k.c, 3, 3}).requires_grad_(), b = randn({k.o}).requires_grad_();
  Tensor gy = randn({128, k.o, k.h, k.h});
  for (auto _ : state) {
    conv2d(x, w, b, 1, 1).backward(gy);
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    if (k.input_grad) x.set_grad(Tensor());
  }
  const double dirs = k.input_grad ? 3.0 : 2.0;
  state.counters["GFLOP/s"] = benchmark::Counter(dirs * conv_flops(k), benchmark::Counter::kIsIterationInvariantRate);
}

// Max pool 2 and batch norm (training) at the CNN's two activation shapes, forward + backward.
const Shape kAct[] = {{128, 32, 28, 28}, {128, 64, 14, 14}};

void BM_MaxPoolForwardBackward(benchmark::State& state) {
  set_threads(state);
  manual_seed(0);
  Tensor x = randn(kAct[state.range(0)]).requires_grad_();
  Shape os = x.shape();
  os[2] /= 2;
  os[3] /= 2;
  Tensor gy = randn(os);
  for (auto _ : state) {
    max_pool2d(x, 2).backward(gy);
    x.set_grad(Tensor());
  }
}

void BM_BatchNormForwardBackward(benchmark::State& state) {
  set_threads(state);
  manual_seed(0);
  const Shape& s = kAct[state.range(0)];
  Tensor x = randn(s).requires_grad_(), gy = randn(s);
  Tensor w = ones({s[1]}).requires_grad_(), b = zeros({s[1]}).requires_grad_();
  Tensor rm = zeros({s[1]}), rv = ones({s[1]});
  for (auto _ : state) {
    batch_norm(x, rm, rv, w, b, true).backward(gy);
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    b.set_grad(Tensor());
  }
}

struct Cnn : nn::Module {
  nn::Conv2d conv1{1, 32, 3, {.padding = 1}}, conv2{32, 64, 3, {.padding = 1}};
  nn::BatchNorm2d bn1{32}, bn2{64};
  nn::Linear fc1{64 * 7 * 7, 128}, fc2{128, 10};
  nn::Dropout drop{0.5};
  Cnn() {
    register_modules(
        {{"conv1", conv1}, {"bn1", bn1}, {"conv2", conv2}, {"bn2", bn2}, {"fc1", fc1}, {"fc2", fc2}, {"drop", drop}});
  }
  Tensor forward(const Tensor& x) {
    Tensor h = max_pool2d(relu(bn1.forward(conv1.forward(x))), 2);
    h = max_pool2d(relu(bn2.forward(conv2.forward(h))), 2);
    h = drop.forward(relu(fc1.forward(h.flatten(1))));
    return fc2.forward(h);
  }
};

void BM_CnnTrainStep(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  manual_seed(0);
  Cnn net;
  optim::Adam opt(net.parameters(), {.lr = 1e-3});
  Tensor x = rand({128, 1, 28, 28});
  Tensor y = randint(0, 10, {128});
  for (auto _ : state) {
    opt.zero_grad();
    Tensor loss = nn::functional::cross_entropy(net.forward(x), y);
    loss.backward();
    opt.step();
  }
  state.counters["epoch_s_est"] =
      benchmark::Counter(1.0 / 469.0, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_ConvForward)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvForwardBackward)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MaxPoolForwardBackward)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_BatchNormForwardBackward)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CnnTrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
