// nn::functional: activations, losses and layer functions (torch.nn.functional).
#pragma once

#include <optional>
#include <string>

#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"

namespace ember::nn::functional {

enum class Reduction { none, mean, sum };

EMBER_API Tensor relu(const Tensor& x);
EMBER_API Tensor gelu(const Tensor& x, const std::string& approximate = "none");
EMBER_API Tensor silu(const Tensor& x);
EMBER_API Tensor tanh(const Tensor& x);
EMBER_API Tensor sigmoid(const Tensor& x);
EMBER_API Tensor softmax(const Tensor& x, int64_t dim);
EMBER_API Tensor log_softmax(const Tensor& x, int64_t dim);
EMBER_API Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// gelu(linear(x, weight, bias), "tanh"): the tanh-form GELU of a linear layer. On the CPU (and
/// wherever the fused call does not apply) it is exactly that composition. On CUDA with f32,
/// f16 or bf16 operands and a bias it is one cuBLASLt call with the GELU_AUX_BIAS epilogue,
/// which keeps the GELU input for the backward; the backward gets the GELU input's gradient
/// and the bias gradient from one DGELU_BGRAD call, then dX and dW from one GEMM each.
EMBER_API Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias);
EMBER_API Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);
EMBER_API Tensor embedding(const Tensor& indices, const Tensor& weight);
/// Normalises over the trailing dims given by normalized_shape; weight/bias optional.
EMBER_API Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                            const Tensor& bias = Tensor(), double eps = 1e-5);

struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  Tensor weight;  // optional per-class weights (C)
};
/// Logits (N, C) or (N, C, d1, ...) against int64 class indices (N) / (N, d1, ...); fused
/// log-softmax + NLL. Mean reduction divides by the (weighted) count of non-ignored targets.
EMBER_API Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});
/// Negative log-likelihood of log-probabilities (N, C) against class indices (N).
EMBER_API Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options = {});
EMBER_API Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
/// Numerically stable BCE on logits; pos_weight optional (broadcast over the last dim).
EMBER_API Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                                  Reduction reduction = Reduction::mean,
                                                  const Tensor& pos_weight = Tensor());

}  // namespace ember::nn::functional
