// Numerical gradient checking: compares autograd's gradients with central differences in f64.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch: input, element, analytic and numeric values
  explicit operator bool() const { return ok; }
};

/// `fn` maps the inputs to one output tensor. Inputs that require grad are checked. fn sees
/// f64 copies of every floating input (the caller's tensors are never modified); non-float
/// inputs are passed unchanged. The scalar checked is sum(output * w) for a fixed random w, so
/// every output element contributes. An input the output does not depend on must get an
/// undefined or all-zero gradient. Throws ValueError when no input requires grad and
/// DTypeError when the output is not floating; mismatches are reported in the result.
EMBER_API GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                    const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {});

}  // namespace ember::autograd
