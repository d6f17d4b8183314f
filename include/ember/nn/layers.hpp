// Simple layers: activations, Dropout, Flatten, Embedding, LayerNorm.
#pragma once

#include <string>

#include "ember/nn/functional.hpp"
#include "ember/nn/module.hpp"

namespace ember::nn {

class EMBER_API ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return functional::relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class EMBER_API GELU : public UnaryModule {
 public:
  explicit GELU(std::string approximate = "none") : approximate_(std::move(approximate)) {}
  Tensor forward(const Tensor& x) override { return functional::gelu(x, approximate_); }
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return approximate_ == "none" ? "" : "approximate='" + approximate_ + "'"; }

 private:
  std::string approximate_;
};

class EMBER_API SiLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return functional::silu(x); }
  std::string type_name() const override { return "SiLU"; }
};

class EMBER_API Tanh : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return functional::tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

class EMBER_API Sigmoid : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return functional::sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

/// Zeroes elements with probability p in training mode (scaling the rest by 1/(1-p)).
class EMBER_API Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override { return functional::dropout(x, p, is_training()); }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p;
};

/// Flattens dims start_dim..end_dim (default: all but the batch dim).
class EMBER_API Flatten : public UnaryModule {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  int64_t start_dim, end_dim;
};

/// A lookup table (num_embeddings, embedding_dim) initialised N(0, 1), as PyTorch.
class EMBER_API Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override { return functional::embedding(indices, weight); }
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  int64_t num_embeddings, embedding_dim;
  Tensor weight;
};

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
  bool bias = true;
};

/// Normalises over the trailing `normalized_shape` dims; weight ones, bias zeros.
class EMBER_API LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  Tensor forward(const Tensor& x) override {
    return functional::layer_norm(x, normalized_shape, weight, bias, options.eps);
  }
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  Shape normalized_shape;
  LayerNormOptions options;
  Tensor weight, bias;
};

}  // namespace ember::nn
