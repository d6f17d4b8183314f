// Batch normalisation layers (torch.nn.BatchNorm1d / BatchNorm2d).
#pragma once

#include <optional>
#include <string>

#include "ember/nn/module.hpp"

namespace ember::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  /// Weight of the new batch statistics in the running averages; nullopt: a cumulative
  /// average (factor 1 / num_batches_tracked), as PyTorch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;               // learnable weight (ones) and bias (zeros)
  bool track_running_stats = true;  // buffers running_mean, running_var, num_batches_tracked
};

/// Shared implementation: parameters "weight", "bias"; buffers "running_mean" (zeros),
/// "running_var" (ones) and "num_batches_tracked" (0-d int64), the names PyTorch's state dicts
/// use. Training mode normalises with batch statistics and updates the running ones (and
/// num_batches_tracked) in place; eval mode normalises with the running statistics.
class EMBER_API BatchNormBase : public UnaryModule {
 public:
  BatchNormBase(int64_t num_features, BatchNormOptions options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  /// Running statistics back to mean 0, variance 1, no batches seen.
  void reset_running_stats();

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                    // (C) or undefined (affine = false)
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking

 protected:
  /// Throws ShapeError unless x has a rank this layer accepts.
  virtual void check_input(const Tensor& x) const = 0;
};

/// Over (N, C) or (N, C, L) input.
class EMBER_API BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions options = {}) : BatchNormBase(num_features, options) {}
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

/// Over (N, C, H, W) input.
class EMBER_API BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {}) : BatchNormBase(num_features, options) {}
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

}  // namespace ember::nn
