#pragma once

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

/// torch.optim.Adam (L2 weight decay added to the gradient), with bias correction:
/// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps).
class EMBER_API Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
  Adam(std::vector<Tensor> params, AdamOptions options = {}) : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  void step() override;

 protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions options, std::string type, bool decoupled);

 private:
  bool decoupled_;
};

/// AdamW's options: Adam's, with PyTorch's default weight_decay of 0.01.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

/// torch.optim.AdamW: decoupled weight decay p ← p·(1 − lr·wd) before the Adam update.
class EMBER_API AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
  AdamW(std::vector<Tensor> params, AdamWOptions options = {})
      : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
};

}  // namespace ember::optim
