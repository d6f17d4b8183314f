// Reductions (fp32 accumulation for 16-bit floats, f64 for f64) and softmax.
#pragma once

#include <optional>
#include <utility>

#include "ember/core/tensor.hpp"

namespace ember {

/// Sum over all elements; integer/bool inputs give int64.
EMBER_API Tensor sum(const Tensor& x);
/// Sum over `dims` (empty dims means all), keeping reduced dims as size 1 when keepdim.
EMBER_API Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Mean of all elements; floating inputs only (an integer input is a DTypeError, as PyTorch).
EMBER_API Tensor mean(const Tensor& x);
/// Mean over `dims` (empty dims means all); the mean of zero elements is NaN.
EMBER_API Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Product of all elements (int64 for integral/bool inputs); the gradient is exact with zeros.
EMBER_API Tensor prod(const Tensor& x);
/// Max/min of all elements (error on an empty tensor).
EMBER_API Tensor max(const Tensor& x);
EMBER_API Tensor min(const Tensor& x);
/// (values, indices) along dim; ties pick the first index.
EMBER_API std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
EMBER_API std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Max/min over `dims` (empty means all); the gradient is split evenly among tied elements.
/// A reduced dim of size 0 is an IndexError.
EMBER_API Tensor amax(const Tensor& x, const Shape& dims, bool keepdim = false);
EMBER_API Tensor amin(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Index of the max (flattened when dim is omitted), int64.
EMBER_API Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
/// Index of the min (flattened when dim is omitted), int64.
EMBER_API Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
/// Variance with Bessel's correction by default (correction = 1), as torch.var.
EMBER_API Tensor var(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
/// Standard deviation: sqrt(var); a zero std gives a zero gradient.
EMBER_API Tensor std(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
/// p-norm (p = 2 by default; p = inf gives max |x|) over dims (all when empty).
EMBER_API Tensor norm(const Tensor& x, double p = 2.0, const Shape& dims = {}, bool keepdim = false);
/// log(sum(exp(x))) over `dims`, computed as max + log(sum(exp(x - max))) so it cannot overflow.
EMBER_API Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
/// exp(x) / sum(exp(x)) along dim, with the max subtracted first (floating inputs only).
EMBER_API Tensor softmax(const Tensor& x, int64_t dim);
/// x - logsumexp(x) along dim: the numerically stable log of softmax.
EMBER_API Tensor log_softmax(const Tensor& x, int64_t dim);
/// Cumulative sum along dim (int64 for integral/bool inputs).
EMBER_API Tensor cumsum(const Tensor& x, int64_t dim);

}  // namespace ember
