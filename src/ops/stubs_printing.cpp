// Placeholder until printing is implemented.
#include "ember/ember.hpp"

namespace ember {
std::string Tensor::str() const { EMBER_THROW(NotImplemented, "str: not implemented yet"); }
std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }
}  // namespace ember
