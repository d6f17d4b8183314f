#pragma once

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

/// torch.optim.SGD: g += wd·p; buf = momentum·buf + (1 − dampening)·g (buf = g at the first
/// step); g = nesterov ? g + momentum·buf : buf; p −= lr·g.
class EMBER_API SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});
  SGD(std::vector<Tensor> params, SGDOptions options = {}) : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  void step() override;
};

}  // namespace ember::optim
