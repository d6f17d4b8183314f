#include "ember/nn/linear.hpp"

#include <cmath>

#include "ember/nn/functional.hpp"
#include "ember/nn/init.hpp"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, LinearOptions options) : in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, ValueError, "Linear: in_features and out_features must be positive, got ", in, " and ",
              out);
  weight = empty({out, in});
  register_parameter("weight", weight);
  if (options.bias) {
    bias = empty({out});
    register_parameter("bias", bias);
  }
  reset_parameters();
}

void Linear::reset_parameters() {
  // PyTorch's default: kaiming_uniform(a = sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)) for the
  // weight, and the bias uses the same bound.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  Tensor y = functional::linear(x, weight, bias);
  if (adapter_ && adapter_->active()) y = y + adapter_->delta(x);
  return y;
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

}  // namespace ember::nn
