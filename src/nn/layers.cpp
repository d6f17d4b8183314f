#include "ember/nn/layers.hpp"

#include <sstream>

#include "ember/nn/init.hpp"

namespace ember::nn {

Dropout::Dropout(double p) : p(p) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "Dropout: probability must be in [0, 1], got ", p);
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p << ", inplace=False";
  return os.str();
}

Embedding::Embedding(int64_t num, int64_t dim) : num_embeddings(num), embedding_dim(dim) {
  EMBER_CHECK(num > 0 && dim > 0, ValueError, "Embedding: sizes must be positive, got ", num, " and ", dim);
  weight = empty({num, dim});
  register_parameter("weight", weight);
  init::normal_(weight);
}

std::string Embedding::extra_repr() const { return std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim); }

LayerNorm::LayerNorm(Shape shape, LayerNormOptions opts) : normalized_shape(std::move(shape)), options(opts) {
  EMBER_CHECK(!normalized_shape.empty(), ValueError, "LayerNorm: normalized_shape must not be empty");
  if (options.elementwise_affine) {
    weight = ones(normalized_shape);
    register_parameter("weight", weight);
    if (options.bias) {
      bias = zeros(normalized_shape);
      register_parameter("bias", bias);
    }
  }
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream os;
  os << shape_str(normalized_shape) << ", eps=" << options.eps
     << ", elementwise_affine=" << (options.elementwise_affine ? "True" : "False");
  return os.str();
}

}  // namespace ember::nn
