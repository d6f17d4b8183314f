// Placeholders until the elementwise family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember {

#define EMBER_TODO(name) EMBER_THROW(NotImplemented, name ": not implemented yet")
Tensor Tensor::add(const Tensor&, const Scalar&) const { EMBER_TODO("add"); }
Tensor Tensor::sub(const Tensor&, const Scalar&) const { EMBER_TODO("sub"); }
Tensor Tensor::mul(const Tensor&) const { EMBER_TODO("mul"); }
Tensor Tensor::div(const Tensor&) const { EMBER_TODO("div"); }
Tensor Tensor::add(const Scalar&) const { EMBER_TODO("add"); }
Tensor Tensor::sub(const Scalar&) const { EMBER_TODO("sub"); }
Tensor Tensor::mul(const Scalar&) const { EMBER_TODO("mul"); }
Tensor Tensor::div(const Scalar&) const { EMBER_TODO("div"); }
Tensor& Tensor::add_(const Tensor&, const Scalar&) { EMBER_TODO("add_"); }
Tensor& Tensor::sub_(const Tensor&, const Scalar&) { EMBER_TODO("sub_"); }
Tensor& Tensor::mul_(const Tensor&) { EMBER_TODO("mul_"); }
Tensor& Tensor::div_(const Tensor&) { EMBER_TODO("div_"); }
Tensor& Tensor::add_(const Scalar&) { EMBER_TODO("add_"); }
Tensor& Tensor::sub_(const Scalar&) { EMBER_TODO("sub_"); }
Tensor& Tensor::mul_(const Scalar&) { EMBER_TODO("mul_"); }
Tensor& Tensor::div_(const Scalar&) { EMBER_TODO("div_"); }
Tensor Tensor::neg() const { EMBER_TODO("neg"); }
Tensor Tensor::abs() const { EMBER_TODO("abs"); }
Tensor Tensor::exp() const { EMBER_TODO("exp"); }
Tensor Tensor::log() const { EMBER_TODO("log"); }
Tensor Tensor::sqrt() const { EMBER_TODO("sqrt"); }
Tensor Tensor::rsqrt() const { EMBER_TODO("rsqrt"); }
Tensor Tensor::pow(const Scalar&) const { EMBER_TODO("pow"); }
Tensor Tensor::pow(const Tensor&) const { EMBER_TODO("pow"); }
Tensor Tensor::tanh() const { EMBER_TODO("tanh"); }
Tensor Tensor::sigmoid() const { EMBER_TODO("sigmoid"); }
Tensor Tensor::relu() const { EMBER_TODO("relu"); }
Tensor Tensor::clamp(std::optional<Scalar>, std::optional<Scalar>) const { EMBER_TODO("clamp"); }

Tensor operator+(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator+: not implemented yet"); }
Tensor operator-(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator-: not implemented yet"); }
Tensor operator*(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator*: not implemented yet"); }
Tensor operator/(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator/: not implemented yet"); }
Tensor operator+(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "operator+: not implemented yet"); }
Tensor operator-(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "operator-: not implemented yet"); }
Tensor operator*(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "operator*: not implemented yet"); }
Tensor operator/(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "operator/: not implemented yet"); }
Tensor operator+(const Scalar& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator+: not implemented yet"); }
Tensor operator-(const Scalar& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator-: not implemented yet"); }
Tensor operator*(const Scalar& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator*: not implemented yet"); }
Tensor operator/(const Scalar& a, const Tensor& b) { EMBER_THROW(NotImplemented, "operator/: not implemented yet"); }
Tensor operator-(const Tensor& a) { EMBER_THROW(NotImplemented, "operator-: not implemented yet"); }


DType result_type(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "result_type: not implemented yet"); }
DType result_type(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "result_type: not implemented yet"); }
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) { EMBER_THROW(NotImplemented, "add: not implemented yet"); }
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) { EMBER_THROW(NotImplemented, "sub: not implemented yet"); }
Tensor mul(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "mul: not implemented yet"); }
Tensor div(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "div: not implemented yet"); }
Tensor maximum(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "maximum: not implemented yet"); }
Tensor minimum(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "minimum: not implemented yet"); }
Tensor pow(const Tensor& base, const Tensor& exponent) { EMBER_THROW(NotImplemented, "pow: not implemented yet"); }
Tensor pow(const Tensor& base, const Scalar& exponent) { EMBER_THROW(NotImplemented, "pow: not implemented yet"); }
Tensor pow(const Scalar& base, const Tensor& exponent) { EMBER_THROW(NotImplemented, "pow: not implemented yet"); }
Tensor neg(const Tensor& x) { EMBER_THROW(NotImplemented, "neg: not implemented yet"); }
Tensor abs(const Tensor& x) { EMBER_THROW(NotImplemented, "abs: not implemented yet"); }
Tensor sign(const Tensor& x) { EMBER_THROW(NotImplemented, "sign: not implemented yet"); }
Tensor exp(const Tensor& x) { EMBER_THROW(NotImplemented, "exp: not implemented yet"); }
Tensor log(const Tensor& x) { EMBER_THROW(NotImplemented, "log: not implemented yet"); }
Tensor log1p(const Tensor& x) { EMBER_THROW(NotImplemented, "log1p: not implemented yet"); }
Tensor sqrt(const Tensor& x) { EMBER_THROW(NotImplemented, "sqrt: not implemented yet"); }
Tensor rsqrt(const Tensor& x) { EMBER_THROW(NotImplemented, "rsqrt: not implemented yet"); }
Tensor square(const Tensor& x) { EMBER_THROW(NotImplemented, "square: not implemented yet"); }
Tensor reciprocal(const Tensor& x) { EMBER_THROW(NotImplemented, "reciprocal: not implemented yet"); }
Tensor sin(const Tensor& x) { EMBER_THROW(NotImplemented, "sin: not implemented yet"); }
Tensor cos(const Tensor& x) { EMBER_THROW(NotImplemented, "cos: not implemented yet"); }
Tensor erf(const Tensor& x) { EMBER_THROW(NotImplemented, "erf: not implemented yet"); }
Tensor tanh(const Tensor& x) { EMBER_THROW(NotImplemented, "tanh: not implemented yet"); }
Tensor sigmoid(const Tensor& x) { EMBER_THROW(NotImplemented, "sigmoid: not implemented yet"); }
Tensor relu(const Tensor& x) { EMBER_THROW(NotImplemented, "relu: not implemented yet"); }
Tensor gelu(const Tensor& x, const std::string& approximate) { EMBER_THROW(NotImplemented, "gelu: not implemented yet"); }
Tensor silu(const Tensor& x) { EMBER_THROW(NotImplemented, "silu: not implemented yet"); }
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) { EMBER_THROW(NotImplemented, "clamp: not implemented yet"); }
Tensor& relu_(Tensor& x) { EMBER_THROW(NotImplemented, "relu_: not implemented yet"); }
Tensor& clamp_(Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) { EMBER_THROW(NotImplemented, "clamp_: not implemented yet"); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "where: not implemented yet"); }
Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "where: not implemented yet"); }
Tensor eq(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "eq: not implemented yet"); }
Tensor ne(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "ne: not implemented yet"); }
Tensor lt(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "lt: not implemented yet"); }
Tensor le(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "le: not implemented yet"); }
Tensor gt(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "gt: not implemented yet"); }
Tensor ge(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "ge: not implemented yet"); }
Tensor eq(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "eq: not implemented yet"); }
Tensor ne(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "ne: not implemented yet"); }
Tensor lt(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "lt: not implemented yet"); }
Tensor le(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "le: not implemented yet"); }
Tensor gt(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "gt: not implemented yet"); }
Tensor ge(const Tensor& a, const Scalar& b) { EMBER_THROW(NotImplemented, "ge: not implemented yet"); }
Tensor logical_not(const Tensor& x) { EMBER_THROW(NotImplemented, "logical_not: not implemented yet"); }
Tensor logical_and(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "logical_and: not implemented yet"); }
Tensor logical_or(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "logical_or: not implemented yet"); }
Tensor isfinite(const Tensor& x) { EMBER_THROW(NotImplemented, "isfinite: not implemented yet"); }
Tensor isnan(const Tensor& x) { EMBER_THROW(NotImplemented, "isnan: not implemented yet"); }
Tensor isinf(const Tensor& x) { EMBER_THROW(NotImplemented, "isinf: not implemented yet"); }
bool equal(const Tensor& a, const Tensor& b) { EMBER_THROW(NotImplemented, "equal: not implemented yet"); }
bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) { EMBER_THROW(NotImplemented, "allclose: not implemented yet"); }

}  // namespace ember
