// The LibTorch peer of examples/fashion_mnist: the same MLP (784-256-128-10) and CNN, the same
// data (Fashion-MNIST IDX files, pixels / 255), batch 128, Adam 1e-3 with the same cosine decay
// to 0 over the run, written the way an expert LibTorch 1.13 user would (whole set as one float
// tensor, batches by index_select, gradients set to none rather than zeroed). Prints the same
// `key: value` summary lines as the example.
//
//   fashion_mnist_libtorch [--model mlp|cnn] [--epochs N] [--threads T] [--max-steps N]
//                          [--batch-size B] [--lr LR] [--lr-schedule constant|cosine] [--seed S]
//                          [--data DIR]
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model = "mlp";
  int epochs = 0;  // 0: 10 for the MLP, 5 for the CNN
  int threads = 1;
  int64_t max_steps = 0;
  int64_t batch_size = 128;
  double lr = 1e-3;
  bool cosine = true;  // decay the learning rate from lr to 0 over the run, as the example does
  uint64_t seed = 0;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
};

// Reads a whole IDX file (gzip-compressed or raw: zlib reads both).
std::vector<uint8_t> read_file(const std::string& base) {
  std::string path = base + ".gz";
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    path = base;
    f = gzopen(path.c_str(), "rb");
  }
  if (f == nullptr) throw std::runtime_error("cannot open " + base + "[.gz]");
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  int n = 0;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
  }
  gzclose(f);
  if (n < 0) throw std::runtime_error("cannot read " + path);
  return bytes;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Images as float (N, 1, 28, 28) in [0, 1] and labels as int64 (N).
std::pair<torch::Tensor, torch::Tensor> load_split(const std::string& dir, const std::string& split) {
  const std::vector<uint8_t> img = read_file(dir + "/" + split + "-images-idx3-ubyte");
  const std::vector<uint8_t> lab = read_file(dir + "/" + split + "-labels-idx1-ubyte");
  if (img.size() < 16 || be32(img.data()) != 0x803 || lab.size() < 8 || be32(lab.data()) != 0x801) {
    throw std::runtime_error("bad IDX header in " + dir + " (" + split + ")");
  }
  const int64_t n = be32(img.data() + 4), rows = be32(img.data() + 8), cols = be32(img.data() + 12);
  if (be32(lab.data() + 4) != n || img.size() != static_cast<size_t>(16 + n * rows * cols) ||
      lab.size() != static_cast<size_t>(8 + n)) {
    throw std::runtime_error("inconsistent IDX sizes in " + dir + " (" + split + ")");
  }
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(img.data() + 16), {n, 1, rows, cols}, torch::kUInt8)
                        .to(torch::kFloat32)
                        .div_(255.0);
  torch::Tensor y = torch::from_blob(const_cast<uint8_t*>(lab.data() + 8), {n}, torch::kUInt8).to(torch::kInt64);
  return {x, y};
}

torch::nn::Sequential make_model(const std::string& name) {
  namespace nn = torch::nn;
  if (name == "mlp") {
    return nn::Sequential(nn::Flatten(), nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 128), nn::ReLU(),
                          nn::Linear(128, 10));
  }
  if (name == "cnn") {
    return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(32), nn::ReLU(),
                          nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
                          nn::BatchNorm2d(64), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                          nn::Linear(64 * 7 * 7, 128), nn::ReLU(), nn::Dropout(0.25), nn::Linear(128, 10));
  }
  throw std::runtime_error("unknown model " + name + " (mlp or cnn)");
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "fashion_mnist_libtorch [--model mlp|cnn] [--epochs N] [--threads T] [--max-steps N] [--batch-size B]\n"
          "                       [--lr LR] [--lr-schedule constant|cosine] [--seed S] [--data DIR]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--model") o.model = v;
    else if (a == "--epochs") o.epochs = std::stoi(v);
    else if (a == "--threads") o.threads = std::stoi(v);
    else if (a == "--max-steps") o.max_steps = std::stoll(v);
    else if (a == "--batch-size") o.batch_size = std::stoll(v);
    else if (a == "--lr") o.lr = std::stod(v);
    else if (a == "--lr-schedule") o.cosine = v == "cosine";
    else if (a == "--seed") o.seed = std::stoull(v);
    else if (a == "--data") o.data_dir = v;
    else throw std::runtime_error("unknown option " + a);
  }
  if (o.epochs == 0) o.epochs = o.model == "cnn" ? 5 : 10;
  return o;
}

int run(const Options& opt) {
  torch::set_num_threads(opt.threads);
  torch::manual_seed(opt.seed);
  auto [train_x, train_y] = load_split(opt.data_dir, "train");
  auto [test_x, test_y] = load_split(opt.data_dir, "t10k");
  const int64_t n = train_x.size(0);
  const int64_t steps_per_epoch = (n + opt.batch_size - 1) / opt.batch_size;

  torch::nn::Sequential model = make_model(opt.model);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(opt.lr));
  std::printf("libtorch %s | %d threads | batch %lld | adam lr %g\n", opt.model.c_str(), torch::get_num_threads(),
              static_cast<long long>(opt.batch_size), opt.lr);

  const int64_t total_steps = opt.max_steps > 0 ? std::min<int64_t>(opt.max_steps, opt.epochs * steps_per_epoch)
                                                : opt.epochs * steps_per_epoch;
  std::vector<double> epoch_seconds;
  double train_seconds = 0.0, last_loss = std::nan(""), accuracy = 0.0;
  int64_t step = 0, samples = 0;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    if (opt.max_steps > 0 && step >= opt.max_steps) break;
    model->train();
    const torch::Tensor perm = torch::randperm(n, torch::kInt64);
    double loss_sum = 0.0;
    int64_t s = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < n; b += opt.batch_size) {
      if (opt.max_steps > 0 && step >= opt.max_steps) break;
      const torch::Tensor idx = perm.slice(0, b, std::min(n, b + opt.batch_size));
      const torch::Tensor x = train_x.index_select(0, idx);
      const torch::Tensor y = train_y.index_select(0, idx);
      // set_to_none, as PyTorch 2's default (1.13's C++ zero_grad() zeroes in place).
      for (auto& p : model->parameters()) p.mutable_grad().reset();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      if (opt.cosine) {
        const double lr = 0.5 * opt.lr * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps)));
        for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      }
      optimizer.step();
      loss_sum += loss.item<double>();
      samples += x.size(0);
      ++s;
      ++step;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    epoch_seconds.push_back(secs);
    train_seconds += secs;
    last_loss = loss_sum / static_cast<double>(std::max<int64_t>(s, 1));

    model->eval();
    torch::NoGradGuard no_grad;
    int64_t correct = 0;
    for (int64_t b = 0; b < test_x.size(0); b += 1000) {
      const int64_t e = std::min(test_x.size(0), b + 1000);
      const torch::Tensor pred = model->forward(test_x.slice(0, b, e)).argmax(1);
      correct += pred.eq(test_y.slice(0, b, e)).sum().item<int64_t>();
    }
    accuracy = static_cast<double>(correct) / static_cast<double>(test_x.size(0));
    std::printf("epoch %d: train_loss %.4f  test_accuracy %.4f  %.3f s (%lld steps)\n", epoch + 1, last_loss, accuracy,
                secs, static_cast<long long>(s));
    std::fflush(stdout);
  }
  std::printf("model: %s\n", opt.model.c_str());
  std::printf("threads: %d\n", torch::get_num_threads());
  std::printf("steps: %lld\n", static_cast<long long>(step));
  std::printf("steps_per_epoch: %lld\n", static_cast<long long>(steps_per_epoch));
  std::printf("step_ms: %.4f\n", 1000.0 * train_seconds / static_cast<double>(std::max<int64_t>(step, 1)));
  std::printf("test_accuracy: %.4f\n", accuracy);
  std::printf("train_loss: %.4f\n", last_loss);
  std::printf("epoch_seconds: %.4f\n", median(epoch_seconds));
  std::printf("samples_per_second: %.1f\n", static_cast<double>(samples) / train_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mnist_libtorch: error: %s\n", e.what());
    return 2;
  }
}
