// Trains a Fashion-MNIST classifier (an MLP or a small CNN) with Ember on the IDX files that
// Debian's dataset-fashion-mnist package installs, and reports test accuracy and speed.
//
//   fashion_mnist [--model mlp|cnn] [--epochs N] [--batch-size B] [--lr LR]
//                 [--optimizer sgd|adam|adamw] [--threads T] [--out DIR] ...   (--help for all)
//
// Per epoch: a progress bar (loss, images/s, ETA), then the test accuracy. With --out DIR:
// DIR/metrics.csv (a row per epoch), DIR/curves.svg (loss and accuracy curves) and
// DIR/model.safetensors (the final state dict). Ends with `key: value` summary lines, the last
// four being test_accuracy, train_loss (mean over the last epoch), epoch_seconds (median over
// epochs, training only) and samples_per_second (training only).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ember/ember.hpp>

#include "models.hpp"

namespace {

using ember::Tensor;
namespace data = ember::data;
namespace nn = ember::nn;
namespace optim = ember::optim;
namespace util = ember::util;

struct Options {
  std::string model = "mlp";
  int epochs = 0;  // 0: the model's default (10 for the MLP, 5 for the CNN)
  int64_t batch_size = 128;
  double lr = 1e-3;
  std::string optimizer = "adam";
  std::string lr_schedule = "cosine";
  double weight_decay = 0.0;
  double momentum = 0.0;
  uint64_t seed = 0;
  int threads = 0;  // 0: the machine's hardware threads
  std::string device = "cpu";
  std::string data_dir = data::FashionMNIST::kDefaultDir;
  bool no_shuffle = false;
  int64_t max_steps = 0;  // 0: no limit
  int64_t eval_batch_size = 1000;
  std::string out_dir;
  std::string init_from;
  std::string save_final;
  std::string resume;
};

constexpr double kPi = 3.14159265358979323846;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Options& opt, std::vector<Tensor> params) {
  if (opt.optimizer == "adam") {
    return std::make_unique<optim::Adam>(std::move(params),
                                         optim::AdamOptions{.lr = opt.lr, .weight_decay = opt.weight_decay});
  }
  if (opt.optimizer == "adamw") {
    return std::make_unique<optim::AdamW>(std::move(params),
                                          optim::AdamWOptions{.lr = opt.lr, .weight_decay = opt.weight_decay});
  }
  return std::make_unique<optim::SGD>(
      std::move(params), optim::SGDOptions{.lr = opt.lr, .momentum = opt.momentum, .weight_decay = opt.weight_decay});
}

struct EvalResult {
  double accuracy = 0.0;
  double loss = 0.0;
};

// Accuracy and mean cross-entropy over the whole test set, in eval mode and without autograd.
EvalResult evaluate(nn::Sequential& model, data::DataLoader& loader, ember::Device device) {
  model.eval();
  ember::NoGradGuard no_grad;
  int64_t correct = 0;
  int64_t total = 0;
  double loss_sum = 0.0;
  loader.set_epoch(0);
  for (auto& [x, y] : loader) {
    const Tensor xd = x.to(device);
    const Tensor yd = y.to(device);
    const Tensor logits = model.forward(xd);
    loss_sum += nn::functional::cross_entropy(logits, yd, {.reduction = nn::functional::Reduction::sum}).item<double>();
    correct += ember::eq(logits.argmax(1), yd).sum().item<int64_t>();
    total += yd.numel();
  }
  model.train();
  return {static_cast<double>(correct) / static_cast<double>(total), loss_sum / static_cast<double>(total)};
}

// Loss (per window of steps, against fractional epochs) and test accuracy/loss (per epoch).
struct Curves {
  std::vector<double> step_loss_x, step_loss_y;
  std::vector<double> epoch_x, test_accuracy, test_loss;

  void write(const std::string& path, const std::string& model) const {
    util::write_svg_plot(path, "Fashion-MNIST " + model,
                         {{"train loss", step_loss_x, step_loss_y},
                          {"test loss", epoch_x, test_loss},
                          {"test accuracy", epoch_x, test_accuracy}},
                         {.x_label = "epoch", .y_label = "loss / accuracy"});
  }
};

int run(Options opt) {
  const auto wall_start = std::chrono::steady_clock::now();
  if (opt.epochs == 0) opt.epochs = opt.model == "cnn" ? 5 : 10;
  ember::set_num_threads(opt.threads > 0 ? opt.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ember::manual_seed(opt.seed);

  const ember::Device device = ember::Device::parse(opt.device);
  if (device.is_cuda()) {
    EMBER_CHECK(ember::cuda::is_available(), ember::DeviceError,
                "--device cuda: no usable CUDA device (Ember built without CUDA, or no GPU/driver); use --device cpu");
  }
  if (!opt.resume.empty()) {
    std::fprintf(stderr, "fashion_mnist: --resume %s: not implemented yet (checkpoints come later); "
                 "training from the start\n", opt.resume.c_str());
  }

  // Data: pixels / 255, no normalisation (as the LibTorch reference).
  auto train_set = data::FashionMNIST::train(opt.data_dir);
  auto test_set = data::FashionMNIST::test(opt.data_dir);
  data::DataLoader train_loader(std::move(train_set),
                                {.batch_size = opt.batch_size, .shuffle = !opt.no_shuffle, .seed = opt.seed});
  data::DataLoader test_loader(std::move(test_set), {.batch_size = opt.eval_batch_size});

  // Model (initialised from the seeded default generator) and optimizer.
  auto model = fashion_mnist::make_model(opt.model);
  if (!opt.init_from.empty()) {
    model->load_state_dict(ember::io::load_safetensors(opt.init_from));
    std::printf("loaded initial weights from %s\n", opt.init_from.c_str());
  }
  model->to(device);
  auto optimizer = make_optimizer(opt, model->parameters());

  int64_t num_params = 0;
  for (const Tensor& p : model->parameters()) num_params += p.numel();
  std::printf("%s", model->str().c_str());
  std::printf("\nparameters: %lld | train %lld, test %lld images | batch %lld | %s lr %g (%s) | %d threads | %s\n",
              static_cast<long long>(num_params), static_cast<long long>(train_loader.dataset().size()),
              static_cast<long long>(test_loader.dataset().size()), static_cast<long long>(opt.batch_size),
              opt.optimizer.c_str(), opt.lr, opt.lr_schedule.c_str(), ember::get_num_threads(), device.str().c_str());

  std::optional<util::MetricsCSV> csv;
  if (!opt.out_dir.empty()) {
    std::filesystem::create_directories(opt.out_dir);
    csv.emplace(opt.out_dir + "/metrics.csv",
                std::vector<std::string>{"step", "epoch", "loss", "lr", "accuracy", "test_loss", "samples_per_second",
                                         "elapsed"});
  }

  Curves curves;
  std::vector<double> epoch_seconds;
  double train_seconds = 0.0;
  int64_t trained_samples = 0;
  int64_t step = 0;
  double last_epoch_loss = std::nan("");
  EvalResult last_eval;
  const int64_t steps_per_epoch = train_loader.size();
  // About ten points of the training-loss curve per epoch.
  const int64_t window = std::max<int64_t>(1, steps_per_epoch / 10);
  // The cosine schedule decays the learning rate from --lr to 0 over every step of the run.
  const int64_t total_steps = opt.max_steps > 0 ? std::min<int64_t>(opt.max_steps, opt.epochs * steps_per_epoch)
                                                : opt.epochs * steps_per_epoch;
  auto set_lr = [&](int64_t done) {
    if (opt.lr_schedule != "cosine") return;
    const double lr = 0.5 * opt.lr * (1.0 + std::cos(kPi * static_cast<double>(done) / static_cast<double>(total_steps)));
    for (auto& group : optimizer->param_groups()) group.lr() = lr;
  };

  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    if (opt.max_steps > 0 && step >= opt.max_steps) break;
    const int64_t epoch_steps =
        opt.max_steps > 0 ? std::min(steps_per_epoch, opt.max_steps - step) : steps_per_epoch;
    util::ProgressBar bar(epoch_steps, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opt.epochs),
                          {.items_per_step = static_cast<double>(opt.batch_size), .unit = "img"});
    train_loader.set_epoch(epoch);
    model->train();
    double loss_sum = 0.0;
    double window_sum = 0.0;
    int64_t window_count = 0;
    int64_t epoch_samples = 0;
    int64_t s = 0;

    // The timed region: batches, forward, backward, update (and the bar). Evaluation is outside.
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& [x, y] : train_loader) {
      const Tensor xd = x.to(device);
      const Tensor yd = y.to(device);
      const Tensor loss = nn::functional::cross_entropy(model->forward(xd), yd);
      optimizer->zero_grad();
      loss.backward();
      set_lr(step);
      optimizer->step();

      const double l = loss.item<double>();
      loss_sum += l;
      window_sum += l;
      epoch_samples += yd.size(0);
      ++s;
      ++step;
      if (++window_count == window || s == epoch_steps) {
        curves.step_loss_x.push_back(epoch + static_cast<double>(s) / static_cast<double>(steps_per_epoch));
        curves.step_loss_y.push_back(window_sum / static_cast<double>(window_count));
        window_sum = 0.0;
        window_count = 0;
      }
      bar.update(s, {{"loss", loss_sum / static_cast<double>(s)}});
      if (s == epoch_steps) break;
    }
    const double secs = seconds_since(t0);
    // In a log the last update already printed the final line; a terminal redraws it with the end time.
    const util::Metrics final_metrics{{"loss", loss_sum / static_cast<double>(std::max<int64_t>(s, 1))}};
    bar.finish_at(s, bar.terminal() ? final_metrics : util::Metrics{});

    epoch_seconds.push_back(secs);
    train_seconds += secs;
    trained_samples += epoch_samples;
    last_epoch_loss = loss_sum / static_cast<double>(std::max<int64_t>(s, 1));

    last_eval = evaluate(*model, test_loader, device);
    const double rate = static_cast<double>(epoch_samples) / secs;
    std::printf("epoch %d: train_loss %.4f  test_loss %.4f  test_accuracy %.4f  %.3f s  %.0f img/s\n", epoch + 1,
                last_epoch_loss, last_eval.loss, last_eval.accuracy, secs, rate);
    std::fflush(stdout);
    curves.epoch_x.push_back(epoch + static_cast<double>(s) / static_cast<double>(steps_per_epoch));
    curves.test_accuracy.push_back(last_eval.accuracy);
    curves.test_loss.push_back(last_eval.loss);
    if (csv) {
      csv->write({step, static_cast<int64_t>(epoch + 1), last_epoch_loss, optimizer->param_groups()[0].lr(),
                  last_eval.accuracy, last_eval.loss, rate, seconds_since(wall_start)});
      // Rewritten each epoch so a running job's curves can be looked at.
      curves.write(opt.out_dir + "/curves.svg", opt.model);
    }
  }

  ember::io::Metadata meta{{"model", opt.model}, {"steps", std::to_string(step)}};
  if (!opt.out_dir.empty()) {
    ember::io::save_safetensors(opt.out_dir + "/model.safetensors", model->state_dict(), meta);
    std::printf("wrote %s/{metrics.csv, curves.svg, model.safetensors}\n", opt.out_dir.c_str());
  }
  if (!opt.save_final.empty()) {
    ember::io::save_safetensors(opt.save_final, model->state_dict(), meta);
    std::printf("saved the final model to %s\n", opt.save_final.c_str());
  }

  std::printf("model: %s\n", opt.model.c_str());
  std::printf("epochs: %zu\n", epoch_seconds.size());
  std::printf("steps: %lld\n", static_cast<long long>(step));
  std::printf("threads: %d\n", ember::get_num_threads());
  std::printf("steps_per_epoch: %lld\n", static_cast<long long>(steps_per_epoch));
  std::printf("step_ms: %.4f\n", 1000.0 * train_seconds / static_cast<double>(std::max<int64_t>(step, 1)));
  std::printf("test_loss: %.4f\n", last_eval.loss);
  std::printf("total_seconds: %.3f\n", seconds_since(wall_start));
  std::printf("test_accuracy: %.4f\n", last_eval.accuracy);
  std::printf("train_loss: %.4f\n", last_epoch_loss);
  std::printf("epoch_seconds: %.4f\n", median(epoch_seconds));
  std::printf("samples_per_second: %.1f\n", static_cast<double>(trained_samples) / train_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Train an MLP or a CNN on Fashion-MNIST with Ember"};
  app.add_option("--model", opt.model, "network: mlp (784-256-128-10) or cnn (2 conv blocks + 2 linear)")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--epochs", opt.epochs, "training epochs (default: 10 for mlp, 5 for cnn)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch-size", opt.batch_size, "training batch size")
      ->check(CLI::Range(int64_t{1}, int64_t{60000}))
      ->capture_default_str();
  app.add_option("--lr", opt.lr, "learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  app.add_option("--lr-schedule", opt.lr_schedule, "constant, or cosine: decay from --lr to 0 over the run's steps")
      ->check(CLI::IsMember({"constant", "cosine"}))
      ->capture_default_str();
  app.add_option("--optimizer", opt.optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--momentum", opt.momentum, "momentum (sgd only)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the initial weights, the shuffle and dropout")->capture_default_str();
  app.add_option("--threads", opt.threads, "CPU threads (default: all hardware threads)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--device", opt.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--data", opt.data_dir, "directory with the Fashion-MNIST IDX files (.gz or raw)")
      ->capture_default_str();
  app.add_flag("--no-shuffle", opt.no_shuffle, "visit the training images in file order");
  app.add_option("--max-steps", opt.max_steps, "stop after this many training steps in all (smoke tests)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--eval-batch-size", opt.eval_batch_size, "batch size of the test-set evaluation")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}))
      ->capture_default_str();
  app.add_option("--out", opt.out_dir, "write metrics.csv, curves.svg and model.safetensors here");
  app.add_option("--init-from", opt.init_from, "load the model's state dict from this .safetensors file first");
  app.add_option("--save-final", opt.save_final, "save the final state dict to this .safetensors file");
  app.add_option("--resume", opt.resume, "auto|PATH: resume from a checkpoint (not implemented yet)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mnist: error: %s\n", e.what());
    return 2;
  }
}
