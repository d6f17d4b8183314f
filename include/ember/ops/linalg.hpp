// Matrix products. On the CPU they go to oneDNN's GEMM when Ember was built with it (the
// fastest measured path here), to Eigen otherwise.
#pragma once

#include "ember/core/tensor.hpp"

namespace ember {

/// torch.matmul: 1-d·1-d dot, 2-d·2-d mm, batched with broadcast batch dimensions, 1-d operands
/// promoted and the added dim removed.
EMBER_API Tensor matmul(const Tensor& a, const Tensor& b);
/// (n, k) · (k, m).
EMBER_API Tensor mm(const Tensor& a, const Tensor& b);
/// (b, n, k) · (b, k, m).
EMBER_API Tensor bmm(const Tensor& a, const Tensor& b);
/// x · wᵀ + bias over the last dim of x (w: (out, in), bias: (out) or undefined).
EMBER_API Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());
/// Sum of elementwise products of two 1-d tensors.
EMBER_API Tensor dot(const Tensor& a, const Tensor& b);

}  // namespace ember
