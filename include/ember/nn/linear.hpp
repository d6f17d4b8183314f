// nn::Linear: y = x·Wᵀ + b, with an adapter slot for LoRA.
#pragma once

#include <memory>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Something that adds a learned correction to a Linear's output (LoRA). Registered as child
/// modules of the Linear, so its parameters appear as "<linear>.<name>.weight" (PEFT's
/// "fc1.lora_A.weight" layout).
class EMBER_API LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  /// The correction for input x (…, in) → (…, out), added to x·Wᵀ + b.
  virtual Tensor delta(const Tensor& x) = 0;
  /// Whether the adapter currently contributes (false after merging it into the weight).
  virtual bool active() const { return true; }
};

struct LinearOptions {
  bool bias = true;
};

class EMBER_API Linear : public UnaryModule {
 public:
  /// Weight (out, in) and bias (out) initialised as PyTorch: kaiming_uniform(a = √5), bias
  /// uniform ±1/√in.
  Linear(int64_t in_features, int64_t out_features, LinearOptions options = {});

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  /// Re-draws weight and bias from PyTorch's default initialisation.
  void reset_parameters();

  /// Installs (or, with nullptr, removes) an adapter; see lora::inject.
  void set_adapter(std::shared_ptr<LinearAdapter> adapter) { adapter_ = std::move(adapter); }
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }

  int64_t in_features, out_features;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined

 private:
  std::shared_ptr<LinearAdapter> adapter_;
};

}  // namespace ember::nn
