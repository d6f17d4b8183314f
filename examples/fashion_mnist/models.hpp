// The two Fashion-MNIST classifiers of the example, built from ember::nn layers. The LibTorch
// peer (benchmarks/peers/fashion_mnist_libtorch.cpp) builds the same networks layer for layer,
// so their state dicts have the same names and shapes.
#pragma once

#include <memory>
#include <string>

#include <ember/ember.hpp>

namespace fashion_mnist {

/// Dropout probability before the CNN's classifier layer.
inline constexpr double kCnnDropout = 0.25;

/// 784-256-128-10 with ReLU: Flatten, Linear, ReLU, Linear, ReLU, Linear (logits).
inline std::shared_ptr<ember::nn::Sequential> make_mlp() {
  using namespace ember::nn;
  auto m = std::make_shared<Sequential>();
  m->emplace<Flatten>();
  m->emplace<Linear>(28 * 28, 256);
  m->emplace<ReLU>();
  m->emplace<Linear>(256, 128);
  m->emplace<ReLU>();
  m->emplace<Linear>(128, 10);
  return m;
}

/// Two conv blocks (3×3 conv with padding 1, BatchNorm2d, ReLU, 2×2 max pool: 28 → 14 → 7)
/// with 32 and 64 channels, then Linear(64·7·7, 128), ReLU, Dropout, Linear(128, 10).
inline std::shared_ptr<ember::nn::Sequential> make_cnn() {
  using namespace ember::nn;
  auto m = std::make_shared<Sequential>();
  m->emplace<Conv2d>(1, 32, 3, Conv2dOptions{.padding = 1});
  m->emplace<BatchNorm2d>(32);
  m->emplace<ReLU>();
  m->emplace<MaxPool2d>(2);
  m->emplace<Conv2d>(32, 64, 3, Conv2dOptions{.padding = 1});
  m->emplace<BatchNorm2d>(64);
  m->emplace<ReLU>();
  m->emplace<MaxPool2d>(2);
  m->emplace<Flatten>();
  m->emplace<Linear>(64 * 7 * 7, 128);
  m->emplace<ReLU>();
  m->emplace<Dropout>(kCnnDropout);
  m->emplace<Linear>(128, 10);
  return m;
}

/// The model named by --model ("mlp" or "cnn"); ValueError otherwise.
inline std::shared_ptr<ember::nn::Sequential> make_model(const std::string& name) {
  if (name == "mlp") return make_mlp();
  if (name == "cnn") return make_cnn();
  EMBER_THROW(ember::ValueError, "unknown model '", name, "' (expected mlp or cnn)");
}

}  // namespace fashion_mnist
