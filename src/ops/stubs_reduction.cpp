// Placeholders until the reduction family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember {

#define EMBER_TODO(name) EMBER_THROW(NotImplemented, name ": not implemented yet")
Tensor Tensor::max() const { EMBER_TODO("max"); }
Tensor Tensor::min() const { EMBER_TODO("min"); }
Tensor Tensor::argmax(std::optional<int64_t>, bool) const { EMBER_TODO("argmax"); }

Tensor prod(const Tensor& x) { EMBER_THROW(NotImplemented, "prod: not implemented yet"); }
Tensor max(const Tensor& x) { EMBER_THROW(NotImplemented, "max: not implemented yet"); }
Tensor min(const Tensor& x) { EMBER_THROW(NotImplemented, "min: not implemented yet"); }
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { EMBER_THROW(NotImplemented, "max: not implemented yet"); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { EMBER_THROW(NotImplemented, "min: not implemented yet"); }
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { EMBER_THROW(NotImplemented, "amax: not implemented yet"); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { EMBER_THROW(NotImplemented, "amin: not implemented yet"); }
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { EMBER_THROW(NotImplemented, "argmax: not implemented yet"); }
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { EMBER_THROW(NotImplemented, "argmin: not implemented yet"); }
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) { EMBER_THROW(NotImplemented, "logsumexp: not implemented yet"); }
Tensor softmax(const Tensor& x, int64_t dim) { EMBER_THROW(NotImplemented, "softmax: not implemented yet"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { EMBER_THROW(NotImplemented, "log_softmax: not implemented yet"); }
Tensor cumsum(const Tensor& x, int64_t dim) { EMBER_THROW(NotImplemented, "cumsum: not implemented yet"); }
Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) { EMBER_THROW(NotImplemented, "var: not implemented yet"); }
Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) { EMBER_THROW(NotImplemented, "std: not implemented yet"); }
Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim) { EMBER_THROW(NotImplemented, "norm: not implemented yet"); }

}  // namespace ember
