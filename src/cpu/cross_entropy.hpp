// Private: fused cross-entropy kernels on contiguous (M, C) logits (f32 or f64).
#pragma once

#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// Per row i: lse[i] = logsumexp(x_i); nll[i] = w_t·(lse − x_t); smooth[i] = Σ_j w_j (lse − x_j);
/// wt[i] = w_t (all 0 for ignored rows). weight may be undefined (all ones).
void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           const Tensor& lse, const Tensor& nll, const Tensor& smooth, const Tensor& wt);
/// grad (M, C) = row_scale[i] · d(loss_i)/d(x_i), loss_i = (1−e)·nll_i + (e/C)·smooth_i.
void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                            double label_smoothing, const Tensor& lse, const Tensor& row_scale, const Tensor& grad);

}  // namespace ember::cpu
