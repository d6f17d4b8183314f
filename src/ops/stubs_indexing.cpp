// Placeholders until the indexing family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) { EMBER_THROW(NotImplemented, "cat: not implemented yet"); }
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) { EMBER_THROW(NotImplemented, "stack: not implemented yet"); }
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) { EMBER_THROW(NotImplemented, "split: not implemented yet"); }
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) { EMBER_THROW(NotImplemented, "split: not implemented yet"); }
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) { EMBER_THROW(NotImplemented, "chunk: not implemented yet"); }
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) { EMBER_THROW(NotImplemented, "pad: not implemented yet"); }
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) { EMBER_THROW(NotImplemented, "index_select: not implemented yet"); }
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) { EMBER_THROW(NotImplemented, "gather: not implemented yet"); }
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) { EMBER_THROW(NotImplemented, "scatter_add: not implemented yet"); }
Tensor embedding(const Tensor& weight, const Tensor& indices) { EMBER_THROW(NotImplemented, "embedding: not implemented yet"); }
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value) { EMBER_THROW(NotImplemented, "masked_fill: not implemented yet"); }
Tensor& masked_fill_(Tensor& x, const Tensor& mask, const Scalar& value) { EMBER_THROW(NotImplemented, "masked_fill_: not implemented yet"); }
Tensor triu(const Tensor& x, int64_t diagonal) { EMBER_THROW(NotImplemented, "triu: not implemented yet"); }
Tensor tril(const Tensor& x, int64_t diagonal) { EMBER_THROW(NotImplemented, "tril: not implemented yet"); }
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) { EMBER_THROW(NotImplemented, "topk: not implemented yet"); }
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) { EMBER_THROW(NotImplemented, "sort: not implemented yet"); }
Tensor argsort(const Tensor& x, int64_t dim, bool descending) { EMBER_THROW(NotImplemented, "argsort: not implemented yet"); }
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* gen) { EMBER_THROW(NotImplemented, "multinomial: not implemented yet"); }
Tensor one_hot(const Tensor& indices, int64_t num_classes) { EMBER_THROW(NotImplemented, "one_hot: not implemented yet"); }

}  // namespace ember
