// The backward pass.
#pragma once

#include <vector>

#include "ember/autograd/node.hpp"

namespace ember::autograd {

/// Backpropagates from `roots` with initial gradients `grads` (same length; an undefined grad
/// is allowed only for a one-element root and means ones). Accumulates into leaf .grad, runs
/// hooks, and frees the graph unless retain_graph.
EMBER_API void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {},
                        bool retain_graph = false);

/// Gradients of `outputs` w.r.t. `inputs` without touching .grad (torch.autograd.grad).
/// Inputs the outputs do not depend on get an undefined Tensor unless allow_unused is false,
/// which makes that an error.
EMBER_API std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                                   const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                                   bool allow_unused = false);

}  // namespace ember::autograd
