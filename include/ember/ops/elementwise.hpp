// Elementwise ops: NumPy broadcasting, PyTorch type promotion, autograd for floating inputs.
#pragma once

#include <optional>
#include <string>

#include "ember/core/tensor.hpp"

namespace ember {

/// The dtype of a op(a, b) result (torch.result_type): tensors of more dimensions do not win
/// over 0-d tensors of a higher category; scalars only raise the category (bool < int < float).
EMBER_API DType result_type(const Tensor& a, const Tensor& b);
EMBER_API DType result_type(const Tensor& a, const Scalar& b);

// Arithmetic. Integer / integer gives the default float dtype (true division, as PyTorch).
EMBER_API Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
EMBER_API Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
EMBER_API Tensor mul(const Tensor& a, const Tensor& b);
EMBER_API Tensor div(const Tensor& a, const Tensor& b);
EMBER_API Tensor maximum(const Tensor& a, const Tensor& b);
EMBER_API Tensor minimum(const Tensor& a, const Tensor& b);
EMBER_API Tensor pow(const Tensor& base, const Tensor& exponent);
EMBER_API Tensor pow(const Tensor& base, const Scalar& exponent);
EMBER_API Tensor pow(const Scalar& base, const Tensor& exponent);

// Unary math (integer inputs to exp/log/sqrt/... give float results, as PyTorch).
EMBER_API Tensor neg(const Tensor& x);
EMBER_API Tensor abs(const Tensor& x);
EMBER_API Tensor sign(const Tensor& x);
EMBER_API Tensor exp(const Tensor& x);
EMBER_API Tensor log(const Tensor& x);
EMBER_API Tensor log1p(const Tensor& x);
EMBER_API Tensor sqrt(const Tensor& x);
EMBER_API Tensor rsqrt(const Tensor& x);
EMBER_API Tensor square(const Tensor& x);
EMBER_API Tensor reciprocal(const Tensor& x);
EMBER_API Tensor sin(const Tensor& x);
EMBER_API Tensor cos(const Tensor& x);
EMBER_API Tensor erf(const Tensor& x);
EMBER_API Tensor tanh(const Tensor& x);
EMBER_API Tensor sigmoid(const Tensor& x);
EMBER_API Tensor relu(const Tensor& x);
/// GELU; approximate = "none" (erf form) or "tanh".
EMBER_API Tensor gelu(const Tensor& x, const std::string& approximate = "none");
EMBER_API Tensor silu(const Tensor& x);
EMBER_API Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);

// In-place variants (modify x, bump its version; errors on leaves requiring grad).
EMBER_API Tensor& relu_(Tensor& x);
EMBER_API Tensor& clamp_(Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);

/// cond ? a : b, broadcasting all three; cond must be bool.
EMBER_API Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
EMBER_API Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b);

// Comparisons give bool tensors (no gradient).
EMBER_API Tensor eq(const Tensor& a, const Tensor& b);
EMBER_API Tensor ne(const Tensor& a, const Tensor& b);
EMBER_API Tensor lt(const Tensor& a, const Tensor& b);
EMBER_API Tensor le(const Tensor& a, const Tensor& b);
EMBER_API Tensor gt(const Tensor& a, const Tensor& b);
EMBER_API Tensor ge(const Tensor& a, const Tensor& b);
EMBER_API Tensor eq(const Tensor& a, const Scalar& b);
EMBER_API Tensor ne(const Tensor& a, const Scalar& b);
EMBER_API Tensor lt(const Tensor& a, const Scalar& b);
EMBER_API Tensor le(const Tensor& a, const Scalar& b);
EMBER_API Tensor gt(const Tensor& a, const Scalar& b);
EMBER_API Tensor ge(const Tensor& a, const Scalar& b);
EMBER_API Tensor logical_not(const Tensor& x);
EMBER_API Tensor logical_and(const Tensor& a, const Tensor& b);
EMBER_API Tensor logical_or(const Tensor& a, const Tensor& b);
EMBER_API Tensor isfinite(const Tensor& x);
EMBER_API Tensor isnan(const Tensor& x);
EMBER_API Tensor isinf(const Tensor& x);
/// True when every element is equal (same shape required, no broadcasting).
EMBER_API bool equal(const Tensor& a, const Tensor& b);
/// |a - b| <= atol + rtol * |b| elementwise, NaN never close (unless equal_nan).
EMBER_API bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
                        bool equal_nan = false);

}  // namespace ember
