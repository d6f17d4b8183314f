// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
#pragma once

#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::optim {

/// Scales the gradients of `params` in place so that their joint norm is at most max_norm, and
/// returns the joint norm before clipping as a 0-d tensor (on the gradients' device).
///
/// PyTorch's formula: total = ‖(‖g₁‖ₚ, ‖g₂‖ₚ, …)‖ₚ (p = inf: the largest |gᵢⱼ|), then every
/// gradient is multiplied by clamp(max_norm / (total + 1e-6), max = 1). The scaling is done
/// with tensor ops only, so the total never has to be read on the host (no device sync) —
/// except with error_if_nonfinite, which throws ValueError when the total is NaN or ±inf
/// (gradients untouched). Parameters without a gradient are skipped; with none at all the
/// result is a 0-d f32 zero. norm_type must be positive (ValueError otherwise).
///
/// CUDA gradients (one device, all f32 or all f64, contiguous) with norm_type 2 or inf take a
/// fused path: one multi-tensor reduction, one kernel computing the total and the coefficient
/// on the device, one multi-tensor scaling kernel; the total's partial sums are in double and
/// reduced in a fixed order (deterministic). error_if_nonfinite reads the total on the host
/// (one synchronisation), as PyTorch does.
EMBER_API Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                                 bool error_if_nonfinite = false);

/// Clamps every gradient of `params` in place to [−clip_value, clip_value]. clip_value must
/// be non-negative (ValueError otherwise).
EMBER_API void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace ember::optim
