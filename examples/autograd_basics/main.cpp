// Fits y = 3x - 2 (plus Gaussian noise) with two scalar parameters, using Ember tensors and
// autograd and a hand-written gradient-descent step: the smallest complete training loop.
//
//   autograd_basics [--steps N] [--seed S] [--threads T] [--lr LR] [--samples N]
//                   [--device cpu|cuda] [--amp off|bf16|fp16]
//
// The data is made on the CPU (so every device fits the same points) and moved to --device once;
// with --amp the product x·w runs under autocast (a bf16/f16 matmul, f32 parameters).
//
// Ends with `key: value` summary lines (final_loss, w, b, ...) and exits 0 only when w and b
// are within --tolerance of the true 3 and -2.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include <ember/ember.hpp>

namespace {

constexpr double kTrueW = 3.0;
constexpr double kTrueB = -2.0;

struct Options {
  int steps = 300;
  uint64_t seed = 0;
  int threads = 0;  // 0: Ember's default
  double lr = 0.1;
  int64_t samples = 256;
  double noise = 0.1;
  int log_every = 50;
  double tolerance = 0.05;
  std::string device = "cpu";
  std::string amp = "off";
};

int run(const Options& opt) {
  using namespace ember;
  if (opt.threads > 0) set_num_threads(opt.threads);
  manual_seed(opt.seed);
  const Device device = opt.device == "cuda" ? Device::cuda(0) : Device::cpu();
  EMBER_CHECK(!device.is_cuda() || cuda::is_available(), DeviceError,
              "--device cuda: no usable CUDA device (Ember built without CUDA, or no GPU/driver); use --device cpu");
  const std::optional<DType> amp_dtype =
      opt.amp == "bf16" ? std::optional(kBFloat16) : (opt.amp == "fp16" ? std::optional(kFloat16) : std::nullopt);

  // Data: x uniform on [-2, 2), y = 3x - 2 + noise.                                  (N, 1)
  Tensor x = (rand({opt.samples, 1}) * 4.0 - 2.0).to(device);
  Tensor y = (x.to(Device::cpu()) * kTrueW + kTrueB + randn({opt.samples, 1}) * opt.noise).to(device);

  // Parameters, starting at 0: w is a (1, 1) matrix so that x·w is a matrix product.
  Tensor w = zeros({1, 1}, {.device = device, .requires_grad = true});
  Tensor b = zeros({1}, {.device = device, .requires_grad = true});

  const auto start = std::chrono::steady_clock::now();
  double loss_value = 0.0;
  for (int step = 1; step <= opt.steps; ++step) {
    Tensor pred;
    {
      // Under --amp the product runs in bf16/f16; "+ b" promotes the result back to f32.
      amp::AutocastGuard autocast(amp_dtype.value_or(kBFloat16), device.type, amp_dtype.has_value());
      pred = x.matmul(w);  // (N, 1)
    }
    Tensor diff = pred + b - y;          // (N, 1), broadcasting b
    Tensor loss = (diff * diff).mean();  // mean squared error, a 0-d f32 tensor
    loss.backward();
    {
      // The update itself must not be recorded by autograd.
      NoGradGuard no_grad;
      w.sub_(w.grad() * opt.lr);
      b.sub_(b.grad() * opt.lr);
    }
    // Gradients accumulate across backward calls, as in LibTorch: clear them every step.
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    loss_value = loss.item<double>();
    if (step % opt.log_every == 0 || step == 1 || step == opt.steps) {
      std::printf("step %5d/%d  loss %.6f  w %.4f  b %.4f\n", step, opt.steps, loss_value, w.item<double>(),
                  b.item<double>());
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const double w_fit = w.item<double>();
  const double b_fit = b.item<double>();
  const bool ok = std::abs(w_fit - kTrueW) <= opt.tolerance && std::abs(b_fit - kTrueB) <= opt.tolerance;
  std::printf("final_loss: %.6f\n", loss_value);
  std::printf("w: %.6f\n", w_fit);
  std::printf("b: %.6f\n", b_fit);
  std::printf("steps: %d\n", opt.steps);
  std::printf("device: %s\n", device.str().c_str());
  std::printf("amp: %s\n", opt.amp.c_str());
  std::printf("threads: %d\n", get_num_threads());
  std::printf("seconds: %.3f\n", seconds);
  std::printf("result: %s\n", ok ? "ok" : "FAIL");
  if (!ok) {
    std::fprintf(stderr, "autograd_basics: fit w=%.4f b=%.4f is not within %.3g of w=%.1f b=%.1f\n", w_fit, b_fit,
                 opt.tolerance, kTrueW, kTrueB);
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Fit y = 3x - 2 + noise by gradient descent with Ember autograd"};
  app.add_option("--steps", opt.steps, "gradient-descent steps")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed for the data")->capture_default_str();
  app.add_option("--threads", opt.threads, "CPU threads (0: Ember's default)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--lr", opt.lr, "learning rate")->check(CLI::Range(1e-9, 10.0))->capture_default_str();
  app.add_option("--samples", opt.samples, "number of (x, y) points")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--noise", opt.noise, "standard deviation of the noise on y")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--log-every", opt.log_every, "print a progress line every N steps")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--tolerance", opt.tolerance, "largest accepted |w - 3| and |b + 2|")
      ->check(CLI::Range(1e-9, 100.0))
      ->capture_default_str();
  app.add_option("--device", opt.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--amp", opt.amp, "autocast the product x·w to bf16 or fp16 (f32 parameters), or off")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "autograd_basics: error: %s\n", e.what());
    return 2;
  }
}
