// Fused loss ops (nn::functional wraps them with PyTorch's option structs).
#pragma once

#include "ember/core/tensor.hpp"

namespace ember {

enum class LossReduction { none = 0, mean = 1, sum = 2 };

/// Cross entropy of logits (M, C) against int64 class indices (M), fused log-softmax + NLL,
/// with PyTorch's ignore_index, per-class weight (C) and label smoothing rules. One pass over
/// the logits forward and one backward (softmax − one-hot, scaled).
EMBER_API Tensor cross_entropy_2d(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                  int64_t ignore_index, double label_smoothing, LossReduction reduction);

}  // namespace ember
