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
//
// Checkpoints (--checkpoint-every N, --keep K, --checkpoint-dir DIR, default OUT/checkpoints):
// crash-safe directories written by ember::io::CheckpointManager every N steps, at the end and
// on SIGINT/SIGTERM (the step in flight finishes, the checkpoint is saved, the program exits 0).
// --resume auto|PATH continues a run exactly: every later loss line and the final parameters
// and optimizer state are bit for bit those of an uninterrupted run (same --threads). The
// configuration rule on resume is in README.md.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/optim/step_guard.hpp>

#include "models.hpp"

namespace {

using ember::Tensor;
namespace data = ember::data;
namespace io = ember::io;
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
  std::string amp = "off";  // off, bf16 or fp16 (autocast on --device; fp16 adds a GradScaler)
  std::string data_dir = data::FashionMNIST::kDefaultDir;
  bool no_shuffle = false;
  int64_t max_steps = 0;  // 0: no limit
  int64_t eval_batch_size = 1000;
  std::string out_dir;
  std::string init_from;
  std::string save_final;
  std::string resume;
  // Checkpoints and numerical faults.
  int64_t checkpoint_every = 0;  // 0: off
  int keep = 3;
  std::string checkpoint_dir;  // empty: OUT/checkpoints when --out is given
  int64_t log_every = 0;       // 0: no per-step loss lines
  bool check_finite = false;
  int64_t max_skips = 10;
  double spike_z = 0.0;  // 0: no spike detection
  // Testing only (not saved in checkpoints).
  int64_t inject_nan_at = 0;
  int64_t inject_nan_steps = 1;
  int64_t inject_spike_at = 0;
  int64_t test_step_delay_ms = 0;
};

constexpr double kPi = 3.14159265358979323846;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The loss spike detector's window (LossSpikeDetector's default); its recent losses are saved
// in checkpoints so that a resumed run flags the same spikes.
constexpr size_t kSpikeWindow = 100;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------------
// The configuration saved in TrainerState::config: every option (but --resume and the testing
// options) as text that reads back to the same value.

// The shortest %g text that reads back exactly ("0.0005", "1e-05", never "0.10000000000000001").
std::string double_text(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    double back = 0.0;
    const auto r = std::from_chars(buf, buf + std::strlen(buf), back);
    if (r.ec == std::errc{} && back == v) break;
  }
  return buf;
}

template <class T>
std::string to_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    return double_text(v);
  } else {
    return std::to_string(v);
  }
}

template <class T>
void from_text(const std::string& s, T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    v = s;
  } else if constexpr (std::is_same_v<T, bool>) {
    EMBER_CHECK(s == "true" || s == "false", ember::ValueError, "expected true or false, found '", s, "'");
    v = s == "true";
  } else {
    T out{};
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    EMBER_CHECK(r.ec == std::errc{} && r.ptr == s.data() + s.size(), ember::ValueError, "expected a number, found '", s,
                "'");
    v = out;
  }
}

struct ConfigField {
  std::string name;  // the option without "--"
  bool fixed;        // may not change on resume
  std::function<std::string(const Options&)> get;
  std::function<void(Options&, const std::string&)> set;
};

template <class T>
ConfigField field(std::string name, T Options::*member, bool fixed = false) {
  return {std::move(name), fixed, [member](const Options& o) { return to_text(o.*member); },
          [member](Options& o, const std::string& s) { from_text(s, o.*member); }};
}

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = {
      field("model", &Options::model, true),
      field("epochs", &Options::epochs),
      field("batch-size", &Options::batch_size, true),
      field("lr", &Options::lr),
      field("lr-schedule", &Options::lr_schedule),
      field("optimizer", &Options::optimizer, true),
      field("weight-decay", &Options::weight_decay),
      field("momentum", &Options::momentum),
      field("seed", &Options::seed, true),
      field("threads", &Options::threads),
      field("device", &Options::device),
      field("amp", &Options::amp),
      field("data", &Options::data_dir),
      field("no-shuffle", &Options::no_shuffle, true),
      field("max-steps", &Options::max_steps),
      field("eval-batch-size", &Options::eval_batch_size),
      field("out", &Options::out_dir),
      field("init-from", &Options::init_from),
      field("save-final", &Options::save_final),
      field("checkpoint-every", &Options::checkpoint_every),
      field("keep", &Options::keep),
      field("checkpoint-dir", &Options::checkpoint_dir),
      field("log-every", &Options::log_every),
      field("check-finite", &Options::check_finite),
      field("max-skips", &Options::max_skips),
      field("spike-z", &Options::spike_z),
  };
  return fields;
}

std::map<std::string, std::string> config_of(const Options& opt) {
  std::map<std::string, std::string> config;
  for (const ConfigField& f : config_fields()) config[f.name] = f.get(opt);
  return config;
}

// The resume rule: an option given on the command line wins over the checkpoint's value (and a
// change is printed); an option not given takes the checkpoint's value. The options that shape
// the model, the optimizer state or the data order cannot change.
void merge_config(Options& opt, const std::map<std::string, std::string>& saved,
                  const std::function<bool(const std::string&)>& given) {
  for (const ConfigField& f : config_fields()) {
    const auto it = saved.find(f.name);
    if (it == saved.end()) continue;  // a checkpoint without this option: the command line's value
    const std::string now = f.get(opt);
    if (now == it->second) continue;
    if (given(f.name)) {
      EMBER_CHECK(!f.fixed, ember::ValueError, "--resume: --", f.name, " cannot change on resume (the checkpoint has ",
                  it->second, ", the command line ", now, ")");
      std::printf("resume: --%s changed from %s to %s (command line wins)\n", f.name.c_str(), it->second.c_str(),
                  now.c_str());
    } else {
      try {
        f.set(opt, it->second);
      } catch (const ember::Error& e) {
        EMBER_THROW(ember::ValueError, "--resume: the checkpoint's --", f.name, ": ", e.what());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Signals: SIGINT/SIGTERM ask the training loop to save a checkpoint and exit 0.

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) { g_signal = sig; }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Blocks SIGINT and SIGTERM in this thread for a scope (a checkpoint save): a signal that
// arrives meanwhile stays pending (or sets the flag in another thread) and the save finishes.
class BlockStopSignals {
 public:
  BlockStopSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockStopSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  BlockStopSignals(const BlockStopSignals&) = delete;
  BlockStopSignals& operator=(const BlockStopSignals&) = delete;

 private:
  sigset_t old_;
};

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

// ---------------------------------------------------------------------------------------------

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
EvalResult evaluate(nn::Sequential& model, data::DataLoader& loader, ember::Device device,
                    std::optional<ember::DType> amp_dtype) {
  model.eval();
  ember::NoGradGuard no_grad;
  // Inference under the training run's autocast setting (cross_entropy itself runs in f32).
  ember::amp::AutocastGuard autocast(amp_dtype.value_or(ember::kBFloat16), device.type, amp_dtype.has_value());
  int64_t correct = 0;
  int64_t total = 0;
  double loss_sum = 0.0;
  loader.set_epoch(0);
  data::DeviceLoader batches(loader, device);  // on CUDA: the next batch is copied meanwhile
  for (auto& [xd, yd] : batches) {
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

// Everything the training loop accumulates that a resumed run needs to print and save exactly
// what the uninterrupted run would.
struct LoopState {
  int64_t step = 0;             // optimizer steps done
  int64_t epoch = 0;            // the epoch in progress (0-based); its evaluation is not done yet
  int64_t epoch_step = 0;       // steps done in it
  int64_t epoch_samples = 0;    // images trained in it
  double epoch_loss_sum = 0.0;  // over its counted (finite, with --check-finite) losses
  int64_t epoch_loss_count = 0;
  double window_sum = 0.0;  // the training-loss curve's current window
  int64_t window_count = 0;
  int64_t window_loss_count = 0;
  double epoch_partial_seconds = 0.0;  // training time of the epoch in progress, before this process
  int64_t trained_samples = 0;
  double train_seconds = 0.0;
  std::vector<double> epoch_seconds;
  double last_epoch_loss = kNaN;
  EvalResult last_eval;
  Curves curves;
  std::deque<double> recent_losses;  // the spike detector's window
};

// A training step whose loss is still on the device: its bookkeeping (loss sums, curve window,
// `step N loss` line, spike check) waits until the losses are read back, all at once.
struct PendingLoss {
  Tensor loss;  // 0-d, detached
  int64_t epoch = 0;
  int64_t step = 0;        // st.step after the step
  int64_t epoch_step = 0;  // st.epoch_step after the step
  bool epoch_end = false;  // the epoch's last step
  double lr = 0.0;
};

void put_vector(std::map<std::string, double>& values, const std::string& name, const std::vector<double>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    char key[96];
    std::snprintf(key, sizeof(key), "%s.%06zu", name.c_str(), i);
    values[key] = v[i];
  }
}

std::vector<double> get_vector(const std::map<std::string, double>& values, const std::string& name) {
  std::vector<double> v;
  const std::string prefix = name + ".";
  for (auto it = values.lower_bound(prefix); it != values.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    v.push_back(it->second);  // the keys' zero-padded indices sort in order
  return v;
}

io::TrainerState to_trainer_state(const LoopState& s) {
  io::TrainerState t;
  t.step = s.step;
  t.epoch = s.epoch;
  t.counters = {{"epoch_step", s.epoch_step},
                {"epoch_samples", s.epoch_samples},
                {"epoch_loss_count", s.epoch_loss_count},
                {"window_count", s.window_count},
                {"window_loss_count", s.window_loss_count},
                {"trained_samples", s.trained_samples},
                {"epochs_done", static_cast<int64_t>(s.epoch_seconds.size())}};
  auto& v = t.values;
  auto put = [&v](const std::string& key, double x) { v[key] = x; };  // trainer.json keeps NaN and infinities
  put("epoch_loss_sum", s.epoch_loss_sum);
  put("window_sum", s.window_sum);
  put("epoch_partial_seconds", s.epoch_partial_seconds);
  put("train_seconds", s.train_seconds);
  put("last_epoch_loss", s.last_epoch_loss);
  put("last_test_accuracy", s.last_eval.accuracy);
  put("last_test_loss", s.last_eval.loss);
  put_vector(v, "epoch_seconds", s.epoch_seconds);
  put_vector(v, "curve.step_loss_x", s.curves.step_loss_x);
  put_vector(v, "curve.step_loss_y", s.curves.step_loss_y);
  put_vector(v, "curve.epoch_x", s.curves.epoch_x);
  put_vector(v, "curve.test_accuracy", s.curves.test_accuracy);
  put_vector(v, "curve.test_loss", s.curves.test_loss);
  put_vector(v, "spike_window", std::vector<double>(s.recent_losses.begin(), s.recent_losses.end()));
  return t;
}

LoopState from_trainer_state(const io::TrainerState& t) {
  auto counter = [&t](const std::string& key) {
    const auto it = t.counters.find(key);
    return it == t.counters.end() ? int64_t{0} : it->second;
  };
  auto value = [&t](const std::string& key) {
    const auto it = t.values.find(key);
    return it == t.values.end() ? kNaN : it->second;
  };
  LoopState s;
  s.step = t.step;
  s.epoch = t.epoch;
  s.epoch_step = counter("epoch_step");
  s.epoch_samples = counter("epoch_samples");
  s.epoch_loss_count = counter("epoch_loss_count");
  s.window_count = counter("window_count");
  s.window_loss_count = counter("window_loss_count");
  s.trained_samples = counter("trained_samples");
  s.epoch_loss_sum = value("epoch_loss_sum");
  s.window_sum = value("window_sum");
  s.epoch_partial_seconds = value("epoch_partial_seconds");
  s.train_seconds = value("train_seconds");
  s.last_epoch_loss = value("last_epoch_loss");
  s.last_eval = {value("last_test_accuracy"), value("last_test_loss")};
  s.epoch_seconds = get_vector(t.values, "epoch_seconds");
  s.curves.step_loss_x = get_vector(t.values, "curve.step_loss_x");
  s.curves.step_loss_y = get_vector(t.values, "curve.step_loss_y");
  s.curves.epoch_x = get_vector(t.values, "curve.epoch_x");
  s.curves.test_accuracy = get_vector(t.values, "curve.test_accuracy");
  s.curves.test_loss = get_vector(t.values, "curve.test_loss");
  const std::vector<double> recent = get_vector(t.values, "spike_window");
  s.recent_losses.assign(recent.begin(), recent.end());
  if (std::isnan(s.epoch_partial_seconds)) s.epoch_partial_seconds = 0.0;
  if (std::isnan(s.train_seconds)) s.train_seconds = 0.0;
  const int64_t epochs_done = counter("epochs_done");
  EMBER_CHECK(s.epoch_step >= 0 && s.epoch >= 0 && epochs_done == static_cast<int64_t>(s.epoch_seconds.size()),
              ember::ValueError, "--resume: trainer.json is inconsistent: epoch_step ", s.epoch_step, ", epoch ",
              s.epoch, ", epochs_done ", epochs_done, " but ", s.epoch_seconds.size(), " epoch_seconds values");
  return s;
}

// On resume: keeps metrics.csv's header and its first `rows` rows (one per epoch the checkpoint
// has completed), dropping those the interrupted process wrote after it saved the checkpoint and
// a row cut off by a crash, so that the continued file has each epoch once.
void keep_metrics_rows(const std::string& path, int64_t rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::vector<std::string> keep;
  std::string line;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (static_cast<int64_t>(keep.size()) <= rows && !in.eof()) {  // the header and complete rows
      keep.push_back(line);
    } else {
      dropped = true;
    }
  }
  in.close();
  if (!dropped) return;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& l : keep) out << l << '\n';
  out.close();
  EMBER_CHECK(out.good(), ember::IOError, "cannot rewrite '", path, "'");
}

int run(Options opt, const std::function<bool(const std::string&)>& given) {
  const auto wall_start = std::chrono::steady_clock::now();

  // Resume: find the checkpoint first, since its configuration fills in the options not given.
  std::optional<io::Checkpoint> resumed;
  if (!opt.resume.empty()) {
    const std::string run_dir =
        !opt.checkpoint_dir.empty() ? opt.checkpoint_dir : (!opt.out_dir.empty() ? opt.out_dir + "/checkpoints" : "");
    EMBER_CHECK(opt.resume != "auto" || !run_dir.empty(), ember::ValueError,
                "--resume auto: no checkpoint directory to look in (give --out DIR or --checkpoint-dir DIR)");
    resumed = io::resume_checkpoint(opt.resume, run_dir);
    if (!resumed) {
      std::printf("resume: no checkpoint in %s; starting from the beginning\n", run_dir.c_str());
    } else {
      const std::string spec = opt.resume;
      merge_config(opt, resumed->trainer.config, given);
      opt.resume = spec;
    }
  }
  if (opt.epochs == 0) opt.epochs = opt.model == "cnn" ? 5 : 10;
  const std::string checkpoint_dir =
      !opt.checkpoint_dir.empty() ? opt.checkpoint_dir : (!opt.out_dir.empty() ? opt.out_dir + "/checkpoints" : "");
  EMBER_CHECK(opt.checkpoint_every == 0 || !checkpoint_dir.empty(), ember::ValueError, "--checkpoint-every ",
              opt.checkpoint_every, ": no checkpoint directory (give --out DIR or --checkpoint-dir DIR)");
  const std::map<std::string, std::string> config = config_of(opt);

  ember::set_num_threads(opt.threads > 0 ? opt.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ember::manual_seed(opt.seed);

  const ember::Device device = ember::Device::parse(opt.device);
  if (device.is_cuda()) {
    EMBER_CHECK(ember::cuda::is_available(), ember::DeviceError,
                "--device cuda: no usable CUDA device (Ember built without CUDA, or no GPU/driver); use --device cpu");
  }

  // Data: pixels / 255, no normalisation (as the LibTorch reference).
  auto train_set = data::FashionMNIST::train(opt.data_dir);
  auto test_set = data::FashionMNIST::test(opt.data_dir);
  // On CUDA the batches come in pinned memory, so DeviceLoader's copies (on its own stream, a
  // batch ahead) are direct DMA transfers that the host does not wait for (a no-op on the CPU).
  data::DataLoader train_loader(std::move(train_set), {.batch_size = opt.batch_size,
                                                       .shuffle = !opt.no_shuffle,
                                                       .seed = opt.seed,
                                                       .pin_memory = device.is_cuda()});
  data::DataLoader test_loader(std::move(test_set), {.batch_size = opt.eval_batch_size, .pin_memory = device.is_cuda()});

  // Mixed precision: autocast runs the matrix products and convolutions in bf16/f16 while the
  // parameters stay f32; f16's narrow range needs dynamic loss scaling, bf16's does not.
  const std::optional<ember::DType> amp_dtype =
      opt.amp == "bf16" ? std::optional(ember::kBFloat16)
                        : (opt.amp == "fp16" ? std::optional(ember::kFloat16) : std::nullopt);
  std::optional<ember::amp::GradScaler> scaler;
  if (opt.amp == "fp16") scaler.emplace();

  // Model (initialised from the seeded default generator) and optimizer.
  auto model = fashion_mnist::make_model(opt.model);
  if (!opt.init_from.empty() && !resumed) {
    model->load_state_dict(ember::io::load_safetensors(opt.init_from));
    std::printf("loaded initial weights from %s\n", opt.init_from.c_str());
  }
  model->to(device);
  auto optimizer = make_optimizer(opt, model->parameters());

  std::optional<optim::StepGuard> guard;
  if (opt.check_finite) guard.emplace(*optimizer, optim::StepGuardOptions{.max_consecutive_skips = opt.max_skips});
  std::optional<optim::LossSpikeDetector> spikes;
  if (opt.spike_z > 0.0) spikes.emplace(kSpikeWindow, opt.spike_z);

  LoopState st;
  if (resumed) {
    const io::TrainerState& t = resumed->trainer;
    model->load_state_dict(resumed->model);
    optimizer->load_state_dict(resumed->optimizer);
    // The hyper-parameters of this run's configuration (the command line may have changed them).
    // The cosine schedule sets the lr before every step; until then the group keeps the last
    // step's lr (which metrics.csv shows for an epoch that ends at the checkpoint).
    for (auto& group : optimizer->param_groups()) {
      if (opt.lr_schedule == "constant") group.options["lr"] = opt.lr;
      if (group.options.count("weight_decay") > 0) group.options["weight_decay"] = opt.weight_decay;
      if (group.options.count("momentum") > 0) group.options["momentum"] = opt.momentum;
    }
    if (const auto it = t.generators.find("default"); it != t.generators.end())
      ember::default_generator().set_state(it->second);
    if (guard) guard->load_state(t.counters);
    // A checkpoint written without fp16 has no scaler state: the scaler starts fresh.
    if (scaler && !t.grad_scaler.empty()) scaler->load_state_dict(t.grad_scaler);
    st = from_trainer_state(t);
    if (st.epoch_step > 0) {
      EMBER_CHECK(t.loader.epoch == st.epoch && t.loader.batch == st.epoch_step, ember::ValueError,
                  "--resume: ", resumed->path, ": the loader position (epoch ", t.loader.epoch, ", batch ",
                  t.loader.batch, ") does not match the trainer's (epoch ", st.epoch, ", step ", st.epoch_step,
                  " of it)");
      train_loader.load_state(t.loader);
    }
    if (spikes)
      for (double l : st.recent_losses) spikes->observe(l);  // rebuilds the detector's window exactly
    std::printf("resumed from %s: step %lld, epoch %lld, batch %lld\n", resumed->path.c_str(),
                static_cast<long long>(st.step), static_cast<long long>(st.epoch + 1),
                static_cast<long long>(st.epoch_step));
  }

  int64_t num_params = 0;
  for (const Tensor& p : model->parameters()) num_params += p.numel();
  std::printf("%s", model->str().c_str());
  std::printf("\nparameters: %lld | train %lld, test %lld images | batch %lld | %s lr %g (%s) | %d threads | %s\n",
              static_cast<long long>(num_params), static_cast<long long>(train_loader.dataset().size()),
              static_cast<long long>(test_loader.dataset().size()), static_cast<long long>(opt.batch_size),
              opt.optimizer.c_str(), opt.lr, opt.lr_schedule.c_str(), ember::get_num_threads(), device.str().c_str());
  std::fflush(stdout);

  std::optional<util::MetricsCSV> csv;
  if (!opt.out_dir.empty()) {
    std::filesystem::create_directories(opt.out_dir);
    std::vector<std::string> columns{"step",   "epoch", "loss", "lr", "accuracy", "test_loss", "samples_per_second",
                                     "elapsed"};
    if (opt.check_finite) columns.push_back("skipped_steps");
    const std::string path = opt.out_dir + "/metrics.csv";
    if (resumed) keep_metrics_rows(path, static_cast<int64_t>(st.epoch_seconds.size()));
    csv.emplace(path, columns, /*append=*/resumed.has_value());
  }

  std::optional<io::CheckpointManager> checkpoints;
  if (!checkpoint_dir.empty()) {
    checkpoints.emplace(checkpoint_dir, io::CheckpointOptions{.keep = opt.keep});
    install_stop_handlers();  // SIGINT/SIGTERM: save and exit 0
  }
  // The training batches, on the device (a pass-through on the CPU). Its state() is the position
  // of the batches the loop has received, which is what a checkpoint saves (on CUDA the loader
  // itself is a batch ahead inside the loop).
  data::DeviceLoader train_batches(train_loader, device);

  const int64_t steps_per_epoch = train_loader.size();
  // About ten points of the training-loss curve per epoch.
  const int64_t window = std::max<int64_t>(1, steps_per_epoch / 10);

  // The steps whose losses are not read yet. On the CPU the list is flushed after every step;
  // on CUDA reading a loss waits for the device, so the list is flushed with one copy every
  // `window` steps and before anything that needs the numbers (see the training loop).
  std::vector<PendingLoss> pending;
  auto record_loss = [&](const PendingLoss& p, double l) {
    if (!opt.check_finite || std::isfinite(l)) {
      st.epoch_loss_sum += l;
      ++st.epoch_loss_count;
      st.window_sum += l;
      ++st.window_loss_count;
    }
    if (++st.window_count == window || p.epoch_end) {
      if (st.window_loss_count > 0) {
        st.curves.step_loss_x.push_back(static_cast<double>(p.epoch) +
                                        static_cast<double>(p.epoch_step) / static_cast<double>(steps_per_epoch));
        st.curves.step_loss_y.push_back(st.window_sum / static_cast<double>(st.window_loss_count));
      }
      st.window_sum = 0.0;
      st.window_count = 0;
      st.window_loss_count = 0;
    }
    if (opt.log_every > 0 && p.step % opt.log_every == 0) {
      std::printf("step %lld loss %.9e lr %.9e\n", static_cast<long long>(p.step), l, p.lr);
      std::fflush(stdout);
    }
    if (spikes && std::isfinite(l)) {
      if (const auto z = spikes->observe(l)) {
        std::printf("loss spike at step %lld: loss %.9e (z = %.2f)\n", static_cast<long long>(p.step), l, *z);
        std::fflush(stdout);
      }
      st.recent_losses.push_back(l);
      if (st.recent_losses.size() > kSpikeWindow) st.recent_losses.pop_front();
    }
  };
  auto flush_losses = [&]() {
    if (pending.empty()) return;
    std::vector<double> losses;
    if (pending.size() == 1) {
      losses.push_back(pending[0].loss.item<double>());
    } else {
      std::vector<Tensor> all;
      all.reserve(pending.size());
      for (const PendingLoss& p : pending) all.push_back(p.loss);
      losses = ember::stack(all).to(ember::Device::cpu()).to_vector<double>();  // one device-to-host copy
    }
    for (size_t i = 0; i < pending.size(); ++i) record_loss(pending[i], losses[i]);
    pending.clear();
  };

  // Host synchronisations of the training steps (CUDA), without those of checkpoint saves.
  uint64_t checkpoint_syncs = 0;
  auto save_checkpoint = [&]() {
    BlockStopSignals block;
    const uint64_t syncs_before = ember::cuda::host_sync_count();
    flush_losses();  // the saved sums cover every step done
    io::TrainerState t = to_trainer_state(st);
    t.loader = train_batches.state();
    t.generators["default"] = ember::default_generator().state();
    if (guard)
      for (const auto& [k, v] : guard->state()) t.counters[k] = v;
    if (scaler) t.grad_scaler = scaler->state_dict();
    t.config = config;
    std::string path = checkpoints->save(model->state_dict(), optimizer->state_dict(), std::move(t));
    checkpoint_syncs += ember::cuda::host_sync_count() - syncs_before;
    return path;
  };
  // After each step and each epoch: a pending SIGINT/SIGTERM saves and ends the program.
  auto stop_requested = [&]() -> bool {
    const int sig = g_signal;
    if (sig == 0 || !checkpoints) return false;
    const std::string path = save_checkpoint();
    std::printf("\ninterrupted by %s: saved checkpoint %s\n", signal_name(sig), path.c_str());
    std::fflush(stdout);
    return true;
  };

  uint64_t train_syncs = 0;  // over the timed steps of this process
  int64_t timed_steps = 0;
  // The cosine schedule decays the learning rate from --lr to 0 over every step of the run.
  const int64_t total_steps =
      opt.max_steps > 0 ? std::min<int64_t>(opt.max_steps, opt.epochs * steps_per_epoch) : opt.epochs * steps_per_epoch;
  auto set_lr = [&](int64_t done) {
    if (opt.lr_schedule != "cosine") return;
    const double lr =
        0.5 * opt.lr * (1.0 + std::cos(kPi * static_cast<double>(done) / static_cast<double>(total_steps)));
    for (auto& group : optimizer->param_groups()) group.lr() = lr;
  };

  while (st.epoch < opt.epochs) {
    const int64_t epoch = st.epoch;
    if (st.epoch_step == 0) {
      if (opt.max_steps > 0 && st.step >= opt.max_steps) break;
      train_loader.set_epoch(epoch);
    }
    const int64_t epoch_start_step = st.step - st.epoch_step;
    // A resumed epoch never ends before the step it reached (even if --max-steps went down).
    const int64_t epoch_steps =
        std::max(st.epoch_step,
                 opt.max_steps > 0 ? std::min(steps_per_epoch, opt.max_steps - epoch_start_step) : steps_per_epoch);
    util::ProgressBar bar(epoch_steps, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opt.epochs),
                          {.items_per_step = static_cast<double>(opt.batch_size), .unit = "img"});
    model->train();
    auto mean_loss = [&st]() {
      return st.epoch_loss_sum / static_cast<double>(std::max<int64_t>(st.epoch_loss_count, 1));
    };
    const double seconds_before = st.epoch_partial_seconds;

    // The timed region: batches, forward, backward, update (and the bar). Evaluation is outside.
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t syncs0 = ember::cuda::host_sync_count(), checkpoint_syncs0 = checkpoint_syncs;
    const int64_t step0 = st.step;
    if (st.epoch_step < epoch_steps) {
      for (auto& [xd, yd] : train_batches) {
        Tensor loss;
        {
          ember::amp::AutocastGuard autocast(amp_dtype.value_or(ember::kBFloat16), device.type, amp_dtype.has_value());
          loss = nn::functional::cross_entropy(model->forward(xd), yd);  // f32 under autocast
        }
        const int64_t this_step = st.step + 1;
        if (opt.inject_nan_at > 0 && this_step >= opt.inject_nan_at &&
            this_step < opt.inject_nan_at + opt.inject_nan_steps)
          loss = loss * kNaN;  // testing only: a non-finite loss and gradients
        if (opt.inject_spike_at > 0 && this_step == opt.inject_spike_at)
          loss = loss * 100.0;  // testing only: a loss spike
        optimizer->zero_grad();
        if (scaler) {
          scaler->scale(loss).backward();
          // The guard judges the true gradients; the scaler's own overflow check ors into the
          // same skip flag (an overflow skip also counts as a skipped step).
          scaler->unscale_(*optimizer);
        } else {
          loss.backward();
        }
        if (guard) guard->check(loss);
        set_lr(st.step);
        const double lr = optimizer->param_groups()[0].lr();
        if (scaler) {
          scaler->step(*optimizer);
          scaler->update();
        } else {
          optimizer->step();
        }

        ++st.step;
        ++st.epoch_step;
        st.epoch_samples += yd.size(0);
        pending.push_back({loss.detach(), epoch, st.step, st.epoch_step, st.epoch_step == epoch_steps, lr});
        // The last step of the run is saved after the evaluation, below.
        const bool checkpoint_due =
            checkpoints && opt.checkpoint_every > 0 && st.step % opt.checkpoint_every == 0 && st.step != total_steps;
        // Read the losses back: every step on the CPU (nothing to wait for); on CUDA every
        // `window` steps and whenever the numbers are needed now (a log line, a checkpoint, a
        // stop, the epoch's end); with --check-finite every step (StepGuard reads the device anyway).
        if (!device.is_cuda() || guard || static_cast<int64_t>(pending.size()) >= window ||
            (opt.log_every > 0 && st.step % opt.log_every == 0) || checkpoint_due || g_signal != 0 ||
            st.epoch_step == epoch_steps)
          flush_losses();
        bar.update(st.epoch_step, {{"loss", mean_loss()}});
        if (guard) {
          try {
            guard->throw_if_diverged();
          } catch (const optim::NumericalError&) {
            std::fprintf(stderr, "fashion_mnist: stopping at step %lld (--max-skips %lld)\n",
                         static_cast<long long>(st.step), static_cast<long long>(opt.max_skips));
            throw;
          }
        }
        if (opt.test_step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt.test_step_delay_ms));

        st.epoch_partial_seconds = seconds_before + seconds_since(t0);
        if (checkpoint_due) save_checkpoint();
        if (stop_requested()) return 0;
        if (st.epoch_step == epoch_steps) break;
      }
    }
    flush_losses();
    const double secs = seconds_before + seconds_since(t0);
    train_syncs += (ember::cuda::host_sync_count() - syncs0) - (checkpoint_syncs - checkpoint_syncs0);
    timed_steps += st.step - step0;
    // In a log the last update already printed the final line; a terminal redraws it with the end time.
    const util::Metrics final_metrics{{"loss", mean_loss()}};
    bar.finish_at(st.epoch_step, bar.terminal() ? final_metrics : util::Metrics{});

    st.epoch_seconds.push_back(secs);
    st.train_seconds += secs;
    st.trained_samples += st.epoch_samples;
    st.last_epoch_loss = mean_loss();

    st.last_eval = evaluate(*model, test_loader, device, amp_dtype);
    const double rate = static_cast<double>(st.epoch_samples) / secs;
    std::printf("epoch %lld: train_loss %.4f  test_loss %.4f  test_accuracy %.4f  %.3f s  %.0f img/s\n",
                static_cast<long long>(epoch + 1), st.last_epoch_loss, st.last_eval.loss, st.last_eval.accuracy, secs,
                rate);
    std::fflush(stdout);
    const double epoch_x =
        static_cast<double>(epoch) + static_cast<double>(st.epoch_step) / static_cast<double>(steps_per_epoch);
    st.curves.epoch_x.push_back(epoch_x);
    st.curves.test_accuracy.push_back(st.last_eval.accuracy);
    st.curves.test_loss.push_back(st.last_eval.loss);
    if (csv) {
      std::vector<util::CsvValue> row{st.step,
                                      epoch + 1,
                                      st.last_epoch_loss,
                                      optimizer->param_groups()[0].lr(),
                                      st.last_eval.accuracy,
                                      st.last_eval.loss,
                                      rate,
                                      seconds_since(wall_start)};
      if (guard) row.emplace_back(guard->skipped_steps());
      csv->write(row);
      // Rewritten each epoch so a running job's curves can be looked at.
      st.curves.write(opt.out_dir + "/curves.svg", opt.model);
    }
    // The next epoch starts.
    st.epoch = epoch + 1;
    st.epoch_step = 0;
    st.epoch_samples = 0;
    st.epoch_loss_sum = 0.0;
    st.epoch_loss_count = 0;
    st.window_sum = 0.0;
    st.window_count = 0;
    st.window_loss_count = 0;
    st.epoch_partial_seconds = 0.0;
    if (stop_requested()) return 0;
  }

  if (checkpoints && opt.checkpoint_every > 0) {
    const std::string path = save_checkpoint();
    std::printf("saved checkpoint %s\n", path.c_str());
  }
  ember::io::Metadata meta{{"model", opt.model}, {"steps", std::to_string(st.step)}};
  if (!opt.out_dir.empty()) {
    ember::io::save_safetensors(opt.out_dir + "/model.safetensors", model->state_dict(), meta);
    std::printf("wrote %s/{metrics.csv, curves.svg, model.safetensors}\n", opt.out_dir.c_str());
  }
  if (!opt.save_final.empty()) {
    ember::io::save_safetensors(opt.save_final, model->state_dict(), meta);
    std::printf("saved the final model to %s\n", opt.save_final.c_str());
  }

  std::printf("model: %s\n", opt.model.c_str());
  std::printf("epochs: %zu\n", st.epoch_seconds.size());
  std::printf("steps: %lld\n", static_cast<long long>(st.step));
  std::printf("threads: %d\n", ember::get_num_threads());
  std::printf("steps_per_epoch: %lld\n", static_cast<long long>(steps_per_epoch));
  if (guard) std::printf("skipped_steps: %lld\n", static_cast<long long>(guard->skipped_steps()));
  std::printf("step_ms: %.4f\n", 1000.0 * st.train_seconds / static_cast<double>(std::max<int64_t>(st.step, 1)));
  if (device.is_cuda()) {
    // Times the host waited for the GPU per training step (loss read-backs every `window` steps;
    // the data copies add none).
    std::printf("host_syncs_per_step: %.4f\n",
                static_cast<double>(train_syncs) / static_cast<double>(std::max<int64_t>(timed_steps, 1)));
  }
  std::printf("test_loss: %.4f\n", st.last_eval.loss);
  std::printf("total_seconds: %.3f\n", seconds_since(wall_start));
  std::printf("test_accuracy: %.4f\n", st.last_eval.accuracy);
  std::printf("train_loss: %.4f\n", st.last_epoch_loss);
  std::printf("epoch_seconds: %.4f\n", median(st.epoch_seconds));
  std::printf("samples_per_second: %.1f\n", static_cast<double>(st.trained_samples) / st.train_seconds);
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
  app.add_option("--threads", opt.threads, "CPU threads (default: all hardware threads)")->check(CLI::Range(1, 4096));
  app.add_option("--device", opt.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--amp", opt.amp,
                 "mixed precision: bf16 or fp16 autocast for matmul/conv with f32 master weights (fp16 adds dynamic "
                 "loss scaling), or off")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
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
  app.add_option("--checkpoint-every", opt.checkpoint_every,
                 "save a checkpoint every N steps and at the end (0: off; SIGINT/SIGTERM always save one when "
                 "there is a checkpoint directory)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--keep", opt.keep, "keep the newest K checkpoints (0: all)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--checkpoint-dir", opt.checkpoint_dir, "where checkpoints go (default: OUT/checkpoints with --out)");
  app.add_option("--resume", opt.resume,
                 "auto: continue from the newest complete checkpoint in the checkpoint directory (start fresh when "
                 "there is none); PATH: from this checkpoint (or run directory's newest). Options given on the "
                 "command line override the checkpoint's (the change is printed); others are the checkpoint's");
  app.add_option("--log-every", opt.log_every, "print 'step S loss L lr R' every N steps (0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_flag("--check-finite", opt.check_finite,
               "skip optimizer steps whose loss or gradients are not finite, count them (metrics, summary)");
  app.add_option("--max-skips", opt.max_skips, "with --check-finite: stop with an error after K consecutive skips")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--spike-z", opt.spike_z, "log losses more than Z standard deviations above the recent ones (0: off)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  auto* testing = app.add_option_group("Testing only", "options for Ember's own tests; not for training runs");
  testing->add_option("--inject-nan-at", opt.inject_nan_at, "TESTING ONLY: make the loss NaN at step S (1-based)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  testing->add_option("--inject-nan-steps", opt.inject_nan_steps, "TESTING ONLY: ... and at the next C - 1 steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  testing->add_option("--inject-spike-at", opt.inject_spike_at, "TESTING ONLY: multiply the loss of step S by 100")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  testing
      ->add_option("--test-step-delay-ms", opt.test_step_delay_ms,
                   "TESTING ONLY: sleep this long after every step (lets tests interrupt a run mid-way)")
      ->check(CLI::Range(int64_t{0}, int64_t{60000}));
  CLI11_PARSE(app, argc, argv);
  auto given = [&app](const std::string& name) { return app.count("--" + name) > 0; };
  try {
    return run(opt, given);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "fashion_mnist: error: %s\n", e.what());
    return 2;
  }
}
