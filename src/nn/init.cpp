// torch.nn.init formulas.
#include "ember/nn/init.hpp"

#include <cmath>

#include "ember/core/grad_mode.hpp"
#include "ember/ops/random.hpp"

namespace ember::nn::init {

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& w) {
  EMBER_CHECK(w.dim() >= 2, ShapeError, "init: fan in and fan out need a tensor with at least 2 dimensions, got shape ",
              shape_str(w.shape()));
  int64_t receptive = 1;
  for (int64_t i = 2; i < w.dim(); ++i) receptive *= w.size(i);
  return {w.size(1) * receptive, w.size(0) * receptive};
}

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" || nl == "sigmoid") return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nl == "selu") return 3.0 / 4.0;
  EMBER_THROW(ValueError, "calculate_gain: unsupported nonlinearity \"", nl, "\"");
}

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) {
  NoGradGuard ng;
  Tensor d = t.detach();
  ember::uniform_(d, low, high, gen);
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard ng;
  Tensor d = t.detach();
  ember::normal_(d, mean, std, gen);
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  NoGradGuard ng;
  t.detach().fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double a = std::sqrt(3.0) * std;
  return init::uniform_(t, -a, a, gen);
}

Tensor& xavier_normal_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  return init::normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

namespace {
double kaiming_std(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  EMBER_CHECK(mode == "fan_in" || mode == "fan_out", ValueError, "kaiming init: mode must be \"fan_in\" or \"fan_out\", got \"",
              mode, "\"");
  const int64_t fan = mode == "fan_in" ? fan_in : fan_out;
  EMBER_CHECK(fan > 0, ValueError, "kaiming init: zero fan for a tensor of shape ", shape_str(t.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}
}  // namespace

Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode, const std::string& nonlinearity, Generator* gen) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  return init::uniform_(t, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, const std::string& mode, const std::string& nonlinearity, Generator* gen) {
  return init::normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity), gen);
}

}  // namespace ember::nn::init
