// Joining, splitting, padding, gathering and scattering, sorting.
#pragma once

#include <utility>
#include <vector>

#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"

namespace ember {

/// Concatenation along dim. Dtypes promote as torch.cat; shapes must match except in dim;
/// 1-d empty tensors (shape (0,)) are skipped whatever the others' shapes.
EMBER_API Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Same-shape tensors joined along a new dim (unsqueeze, then cat).
EMBER_API Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Pieces of `split_size` along dim (the last may be smaller); views of x.
EMBER_API std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
/// Pieces of the given sizes (must sum to the size of dim); views of x.
EMBER_API std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// Up to `chunks` views of size ceil(n / chunks) along dim (torch.chunk; may return fewer).
EMBER_API std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
/// Constant padding, torch.nn.functional.pad order: (left, right) of the last dim first, then
/// the dim before... Negative pads crop.
EMBER_API Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);
/// Rows of x along dim at int32/int64 `index` (1-d).
EMBER_API Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// out[i][j] = x[index[i][j]][j] for dim 0 (and so on), index of the same rank as x.
EMBER_API Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of x with src added at `index` along dim (torch.scatter_add).
EMBER_API Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
/// weight[indices]: (…) int indices into a (num, dim) table → (…, dim).
EMBER_API Tensor embedding(const Tensor& weight, const Tensor& indices);
/// x with `value` where mask (bool, broadcast to x) is true.
EMBER_API Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value);
/// In-place masked_fill; returns x.
EMBER_API Tensor& masked_fill_(Tensor& x, const Tensor& mask, const Scalar& value);
/// Upper / lower triangle of the last two dims (diagonal offset as torch.triu / tril).
EMBER_API Tensor triu(const Tensor& x, int64_t diagonal = 0);
EMBER_API Tensor tril(const Tensor& x, int64_t diagonal = 0);
/// (values, indices) of the k largest (or smallest) along dim; always in sorted order (ties:
/// lower index first; NaN counts as the largest).
EMBER_API std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true,
                                         bool sorted = true);
/// (values, indices) sorted along dim; stable; NaN sorts as larger than every number.
EMBER_API std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The int64 indices of sort (no gradient).
EMBER_API Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// `num_samples` int64 category indices per row of non-negative weights (1-d or 2-d; rows need
/// not sum to 1), from gen's (or the default generator's) Philox stream.
EMBER_API Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false,
                             Generator* gen = nullptr);
/// One-hot int64 encoding; num_classes = -1 infers max + 1.
EMBER_API Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);

}  // namespace ember
