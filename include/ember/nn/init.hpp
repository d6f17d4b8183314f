// Parameter initialisation, with PyTorch's formulas (torch.nn.init). All functions fill in
// place under no-grad and draw from the given generator (the default one when null).
#pragma once

#include <string>
#include <utility>

#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"

namespace ember::nn::init {

/// (fan_in, fan_out) of a weight: dims 1 and 0 times the receptive field (dims 2...).
EMBER_API std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& w);
/// torch.nn.init.calculate_gain for "linear", "conv2d", "sigmoid", "tanh", "relu",
/// "leaky_relu" (with param = negative slope), "selu".
EMBER_API double calculate_gain(const std::string& nonlinearity, double param = 0.01);

EMBER_API Tensor& uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
EMBER_API Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
EMBER_API Tensor& constant_(Tensor& t, double value);
EMBER_API Tensor& zeros_(Tensor& t);
EMBER_API Tensor& ones_(Tensor& t);
EMBER_API Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
EMBER_API Tensor& xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// mode "fan_in" or "fan_out"; Linear and Conv use a = sqrt(5), "leaky_relu".
EMBER_API Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                                   const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
EMBER_API Tensor& kaiming_normal_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                                  const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace ember::nn::init
