// Placeholders until the linalg family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember {

Tensor Tensor::matmul(const Tensor&) const { EMBER_THROW(NotImplemented, "matmul: not implemented yet"); }

Tensor matmul(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "matmul: not implemented yet"); }
Tensor mm(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "mm: not implemented yet"); }
Tensor bmm(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "bmm: not implemented yet"); }
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) { EMBER_THROW(NotImplemented, "linear: not implemented yet"); }
Tensor dot(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "dot: not implemented yet"); }

}  // namespace ember
