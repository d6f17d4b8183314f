// Placeholders until the random family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember {

Tensor arange(const Scalar& end, const TensorOptions& opts) { EMBER_THROW(NotImplemented, "arange: not implemented yet"); }
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, const TensorOptions& opts) { EMBER_THROW(NotImplemented, "arange: not implemented yet"); }
Tensor linspace(double start, double end, int64_t steps, const TensorOptions& opts) { EMBER_THROW(NotImplemented, "linspace: not implemented yet"); }
Tensor eye(int64_t n, int64_t m, const TensorOptions& opts) { EMBER_THROW(NotImplemented, "eye: not implemented yet"); }
Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) { EMBER_THROW(NotImplemented, "rand: not implemented yet"); }
Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) { EMBER_THROW(NotImplemented, "randn: not implemented yet"); }
Tensor randint(int64_t low, int64_t high, const Shape& shape, const TensorOptions& opts, Generator* gen) { EMBER_THROW(NotImplemented, "randint: not implemented yet"); }
Tensor rand_like(const Tensor& t, Generator* gen) { EMBER_THROW(NotImplemented, "rand_like: not implemented yet"); }
Tensor randn_like(const Tensor& t, Generator* gen) { EMBER_THROW(NotImplemented, "randn_like: not implemented yet"); }
Tensor randperm(int64_t n, Generator* gen) { EMBER_THROW(NotImplemented, "randperm: not implemented yet"); }
Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) { EMBER_THROW(NotImplemented, "uniform_: not implemented yet"); }
Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) { EMBER_THROW(NotImplemented, "normal_: not implemented yet"); }
Tensor& bernoulli_(Tensor& t, double p, Generator* gen) { EMBER_THROW(NotImplemented, "bernoulli_: not implemented yet"); }
Tensor dropout(const Tensor& x, double p, bool train, Generator* gen) { EMBER_THROW(NotImplemented, "dropout: not implemented yet"); }

}  // namespace ember
