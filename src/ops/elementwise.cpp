// Binary elementwise ops: type promotion, arithmetic (out-of-place, in-place, operators),
// maximum/minimum, pow, with autograd.
#include <cmath>
#include <limits>
#include <optional>

#include "elementwise_common.hpp"

namespace ember {

using namespace elementwise_detail;
using cpu::BinaryOp;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

// ------------------------------------------------------------------ type promotion
namespace {

using OptDType = std::optional<DType>;

OptDType promote_opt(OptDType a, OptDType b) {
  if (!a) return b;
  if (!b) return a;
  return promote_types(*a, *b);
}

// torch's combine_categories: the higher-priority group (dimensioned tensors over 0-d tensors
// over scalars) wins unless the lower group is of a higher category.
OptDType combine_categories(OptDType higher, OptDType lower) {
  if (higher && is_floating(*higher)) return higher;
  if ((higher && *higher == DType::boolean) || (lower && is_floating(*lower))) return promote_opt(higher, lower);
  if (higher) return higher;
  return lower;
}

/// A Scalar's dtype as a wrapped number: the default dtype of its category.
DType wrapped_dtype(const Scalar& s) { return s.is_floating() ? kDefaultFloat : s.natural_dtype(); }

/// A 0-d tensor holding s in dtype d (the other operand of tensor-scalar ops).
Tensor scalar_operand(const Scalar& s, DType d) {
  NoGradGuard ng;
  return scalar_tensor(s, {.dtype = d});
}

void check_alpha(DType dt, const Scalar& alpha, const char* op) {
  EMBER_CHECK(!(is_integral(dt, true) && alpha.is_floating()), ValueError, op,
              ": for integral input tensors, argument alpha must not be a floating point number (got ",
              alpha.to_double(), ")");
  EMBER_CHECK(!(dt != DType::boolean && alpha.is_bool()), ValueError, op,
              ": boolean alpha is only supported for boolean results");
}

/// out = op(a, b) in dtype `compute`, written as `out_dtype` (a fresh contiguous tensor).
Tensor binary_core(BinaryOp op, const char* name, const Tensor& a, const Tensor& b, DType compute, DType out_dtype,
                   const Scalar& alpha = 1) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(shape, {.dtype = out_dtype, .device = result_device(a, b)});
  NoGradGuard ng;
  run_binary(op, out, cast(a, compute), cast(b, compute), alpha);
  return out;
}

/// SavedTensor of t only when `needed` (saving what backward never reads would make later
/// in-place changes of t fail the version check for nothing).
autograd::SavedTensor save_if(bool needed, const Tensor& t) {
  return needed ? autograd::SavedTensor(t) : autograd::SavedTensor();
}

bool wants_grad(const Tensor& t) { return GradMode::is_enabled() && t.requires_grad(); }

}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  OptDType dim, zero;
  for (const Tensor* t : {&a, &b}) {
    EMBER_CHECK(t->defined(), ValueError, "result_type: an input is an undefined tensor");
    OptDType& slot = t->dim() > 0 ? dim : zero;
    slot = promote_opt(slot, t->dtype());
  }
  return *combine_categories(dim, zero);
}

DType result_type(const Tensor& a, const Scalar& b) {
  EMBER_CHECK(a.defined(), ValueError, "result_type: the input is an undefined tensor");
  OptDType dim, zero;
  (a.dim() > 0 ? dim : zero) = a.dtype();
  return *combine_categories(dim, combine_categories(zero, wrapped_dtype(b)));
}

// ------------------------------------------------------------------ add / sub / mul / div
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  check_operand(a, "add");
  check_operand(b, "add");
  const DType dt = result_type(a, b);
  check_alpha(dt, alpha, "add");
  Tensor out = binary_core(BinaryOp::add, "add", a, b, dt, dt, alpha);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  const double al = alpha.to_double();
  return autograd::record(
      "AddBackward0", {a, b}, out,
      [sa = a.shape(), sb = b.shape(), da = a.dtype(), db = b.dtype(), al](const Grads& g, const Needs& needs) {
        Grads r(2);
        if (needs[0]) r[0] = reduce_grad(g[0], sa, da);
        if (needs[1]) r[1] = reduce_grad(al == 1.0 ? g[0] : g[0] * al, sb, db);
        return r;
      });
}

Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  check_operand(a, "sub");
  check_operand(b, "sub");
  const DType dt = result_type(a, b);
  EMBER_CHECK(dt != DType::boolean, DTypeError,
              "sub: subtraction of bool tensors is not supported; use logical_xor or logical_not instead");
  check_alpha(dt, alpha, "sub");
  Tensor out = binary_core(BinaryOp::sub, "sub", a, b, dt, dt, alpha);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  const double al = alpha.to_double();
  return autograd::record(
      "SubBackward0", {a, b}, out,
      [sa = a.shape(), sb = b.shape(), da = a.dtype(), db = b.dtype(), al](const Grads& g, const Needs& needs) {
        Grads r(2);
        if (needs[0]) r[0] = reduce_grad(g[0], sa, da);
        if (needs[1]) r[1] = reduce_grad(g[0] * (-al), sb, db);
        return r;
      });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_operand(a, "mul");
  check_operand(b, "mul");
  const DType dt = result_type(a, b);
  Tensor out = binary_core(BinaryOp::mul, "mul", a, b, dt, dt);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  return autograd::record("MulBackward0", {a, b}, out,
                          [sa = save_if(wants_grad(b), a), sb = save_if(wants_grad(a), b), sha = a.shape(),
                           shb = b.shape(), da = a.dtype(), db = b.dtype()](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            if (needs[0]) r[0] = reduce_grad(g[0] * sb.get(), sha, da);
                            if (needs[1]) r[1] = reduce_grad(g[0] * sa.get(), shb, db);
                            return r;
                          });
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_operand(a, "div");
  check_operand(b, "div");
  const DType dt = float_result(result_type(a, b));
  Tensor out = binary_core(BinaryOp::div, "div", a, b, dt, dt);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  return autograd::record("DivBackward0", {a, b}, out,
                          [sa = save_if(wants_grad(b), a), sb = autograd::SavedTensor(b), sha = a.shape(),
                           shb = b.shape(), da = a.dtype(), db = b.dtype()](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            const Tensor bv = sb.get();
                            if (needs[0]) r[0] = reduce_grad(g[0] / bv, sha, da);
                            if (needs[1]) r[1] = reduce_grad(-(g[0] * sa.get()) / (bv * bv), shb, db);
                            return r;
                          });
}

// ------------------------------------------------------------------ Tensor members and operators
Tensor Tensor::add(const Tensor& other, const Scalar& alpha) const { return ember::add(*this, other, alpha); }
Tensor Tensor::sub(const Tensor& other, const Scalar& alpha) const { return ember::sub(*this, other, alpha); }
Tensor Tensor::mul(const Tensor& other) const { return ember::mul(*this, other); }
Tensor Tensor::div(const Tensor& other) const { return ember::div(*this, other); }
Tensor Tensor::add(const Scalar& other) const {
  check_operand(*this, "add");
  return ember::add(*this, scalar_operand(other, result_type(*this, other)));
}
Tensor Tensor::sub(const Scalar& other) const {
  check_operand(*this, "sub");
  return ember::sub(*this, scalar_operand(other, result_type(*this, other)));
}
Tensor Tensor::mul(const Scalar& other) const {
  check_operand(*this, "mul");
  return ember::mul(*this, scalar_operand(other, result_type(*this, other)));
}
Tensor Tensor::div(const Scalar& other) const {
  check_operand(*this, "div");
  return ember::div(*this, scalar_operand(other, result_type(*this, other)));
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, const Scalar& b) { return a.add(b); }
Tensor operator-(const Tensor& a, const Scalar& b) { return a.sub(b); }
Tensor operator*(const Tensor& a, const Scalar& b) { return a.mul(b); }
Tensor operator/(const Tensor& a, const Scalar& b) { return a.div(b); }
Tensor operator+(const Scalar& a, const Tensor& b) { return b.add(a); }
Tensor operator*(const Scalar& a, const Tensor& b) { return b.mul(a); }
Tensor operator-(const Scalar& a, const Tensor& b) {
  check_operand(b, "sub");
  return sub(scalar_operand(a, result_type(b, a)), b);
}
Tensor operator/(const Scalar& a, const Tensor& b) {
  check_operand(b, "div");
  return div(scalar_operand(a, result_type(b, a)), b);
}
Tensor operator-(const Tensor& a) { return neg(a); }

// ------------------------------------------------------------------ in-place arithmetic
namespace {

bool same_view(const Tensor& a, const Tensor& b) {
  return a.storage_offset() == b.storage_offset() && a.shape() == b.shape() && a.strides() == b.strides() &&
         a.dtype() == b.dtype();
}

/// self = op(self, other) with torch's rules: other broadcasts to self's shape, the result
/// dtype must be castable to self's dtype.
Tensor& inplace_binary(Tensor& self, const Tensor& other_in, BinaryOp op, const char* name, const Scalar& alpha) {
  check_operand(self, name);
  check_operand(other_in, name);
  DType dt = result_type(self, other_in);
  if (op == BinaryOp::div) dt = float_result(dt);
  EMBER_CHECK(can_cast(dt, self.dtype()), DTypeError, name, ": result type ", dtype_name(dt),
              " can't be cast to the desired output type ", dtype_name(self.dtype()));
  EMBER_CHECK(!(op == BinaryOp::sub && dt == DType::boolean), DTypeError, name,
              ": subtraction of bool tensors is not supported");
  if (op == BinaryOp::add || op == BinaryOp::sub) check_alpha(dt, alpha, name);
  const Shape b = broadcast_shapes(self.shape(), other_in.shape(), name);
  EMBER_CHECK(b == self.shape(), ShapeError, name, ": output with shape ", shape_str(self.shape()),
              " doesn't match the broadcast shape ", shape_str(b), " (other has shape ", shape_str(other_in.shape()),
              ")");
  autograd::check_inplace(self, name);
  const bool grad = autograd::any_requires_grad({&self, &other_in});
  Tensor other = other_in;
  {
    NoGradGuard ng;
    // A partially overlapping view of self would be read after it is overwritten.
    if (other.shares_storage(self) && !same_view(other, self)) other = other.clone();
  }
  // mul_ and div_ need self's old value for other's gradient.
  Tensor old_self;
  if (grad && (op == BinaryOp::mul || op == BinaryOp::div) && wants_grad(other_in)) {
    NoGradGuard ng;
    old_self = self.clone();
  }
  {
    NoGradGuard ng;
    if (dt == self.dtype()) {
      run_binary(op, self, self, cast(other, dt), alpha);
    } else {
      Tensor tmp = empty(self.shape(), {.dtype = dt, .device = self.device()});
      run_binary(op, tmp, cast(self, dt), cast(other, dt), alpha);
      run_copy(self, tmp);
    }
  }
  self.storage()->bump_version();
  if (!grad) return self;

  const Shape sha = self.shape(), shb = other_in.shape();
  const DType da = self.dtype(), db = other_in.dtype();
  switch (op) {
    case BinaryOp::add:
    case BinaryOp::sub: {
      const double al = op == BinaryOp::add ? alpha.to_double() : -alpha.to_double();
      autograd::record(op == BinaryOp::add ? "AddBackward0" : "SubBackward0", {self, other_in}, self,
                       [sha, shb, da, db, al](const Grads& g, const Needs& needs) {
                         Grads r(2);
                         if (needs[0]) r[0] = reduce_grad(g[0], sha, da);
                         if (needs[1]) r[1] = reduce_grad(al == 1.0 ? g[0] : g[0] * al, shb, db);
                         return r;
                       });
      break;
    }
    case BinaryOp::mul:
      autograd::record("MulBackward0", {self, other_in}, self,
                       [so = save_if(wants_grad(self), other), old = autograd::SavedTensor(old_self), sha, shb, da, db](
                           const Grads& g, const Needs& needs) {
                         Grads r(2);
                         if (needs[0]) r[0] = reduce_grad(g[0] * so.get(), sha, da);
                         if (needs[1]) r[1] = reduce_grad(g[0] * old.get(), shb, db);
                         return r;
                       });
      break;
    case BinaryOp::div:
      autograd::record("DivBackward0", {self, other_in}, self,
                       [sb = autograd::SavedTensor(other), old = autograd::SavedTensor(old_self), sha, shb, da, db](
                           const Grads& g, const Needs& needs) {
                         Grads r(2);
                         const Tensor bv = sb.get();
                         if (needs[0]) r[0] = reduce_grad(g[0] / bv, sha, da);
                         if (needs[1]) r[1] = reduce_grad(-(g[0] * old.get()) / (bv * bv), shb, db);
                         return r;
                       });
      break;
    default: break;
  }
  return self;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, const Scalar& alpha) {
  return inplace_binary(*this, other, BinaryOp::add, "add_", alpha);
}
Tensor& Tensor::sub_(const Tensor& other, const Scalar& alpha) {
  return inplace_binary(*this, other, BinaryOp::sub, "sub_", alpha);
}
Tensor& Tensor::mul_(const Tensor& other) { return inplace_binary(*this, other, BinaryOp::mul, "mul_", 1); }
Tensor& Tensor::div_(const Tensor& other) { return inplace_binary(*this, other, BinaryOp::div, "div_", 1); }
Tensor& Tensor::add_(const Scalar& other) {
  check_operand(*this, "add_");
  return inplace_binary(*this, scalar_operand(other, result_type(*this, other)), BinaryOp::add, "add_", 1);
}
Tensor& Tensor::sub_(const Scalar& other) {
  check_operand(*this, "sub_");
  return inplace_binary(*this, scalar_operand(other, result_type(*this, other)), BinaryOp::sub, "sub_", 1);
}
Tensor& Tensor::mul_(const Scalar& other) {
  check_operand(*this, "mul_");
  return inplace_binary(*this, scalar_operand(other, result_type(*this, other)), BinaryOp::mul, "mul_", 1);
}
Tensor& Tensor::div_(const Scalar& other) {
  check_operand(*this, "div_");
  return inplace_binary(*this, scalar_operand(other, result_type(*this, other)), BinaryOp::div, "div_", 1);
}

// ------------------------------------------------------------------ maximum / minimum
namespace {

Tensor extremum(bool is_max, const Tensor& a, const Tensor& b) {
  const char* name = is_max ? "maximum" : "minimum";
  check_operand(a, name);
  check_operand(b, name);
  const DType dt = result_type(a, b);
  Tensor out = binary_core(is_max ? BinaryOp::maximum : BinaryOp::minimum, name, a, b, dt, dt);
  if (!autograd::any_requires_grad({&a, &b})) return out;
  // The gradient goes to the winner; ties split it half and half (as torch).
  return autograd::record(
      is_max ? "MaximumBackward0" : "MinimumBackward0", {a, b}, out,
      [sa = autograd::SavedTensor(a), sb = autograd::SavedTensor(b), sha = a.shape(), shb = b.shape(), da = a.dtype(),
       db = b.dtype(), is_max](const Grads& g, const Needs& needs) {
        Grads r(2);
        const Tensor av = sa.get(), bv = sb.get();
        const Tensor half = where(eq(av, bv), g[0] * 0.5, 0.0);
        if (needs[0]) r[0] = reduce_grad(where(is_max ? gt(av, bv) : lt(av, bv), g[0], half), sha, da);
        if (needs[1]) r[1] = reduce_grad(where(is_max ? lt(av, bv) : gt(av, bv), g[0], half), shb, db);
        return r;
      });
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(true, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(false, a, b); }

// ------------------------------------------------------------------ pow
Tensor pow(const Tensor& base, const Tensor& exponent) {
  check_operand(base, "pow");
  check_operand(exponent, "pow");
  const DType dt = result_type(base, exponent);
  EMBER_CHECK(dt != DType::boolean, DTypeError, "pow: bool tensors are not supported");
  Tensor out = binary_core(BinaryOp::pow, "pow", base, exponent, dt, dt);
  if (!autograd::any_requires_grad({&base, &exponent})) return out;
  return autograd::record("PowBackward1", {base, exponent}, out,
                          [sb = autograd::SavedTensor(base), se = autograd::SavedTensor(exponent),
                           so = save_if(wants_grad(exponent), out), shb = base.shape(), she = exponent.shape(),
                           db = base.dtype(), de = exponent.dtype()](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            const Tensor b = sb.get(), e = se.get();
                            // d/dbase = e b^(e-1), zero where e == 0 (also at b == 0, where b^(e-1) is inf).
                            if (needs[0]) r[0] = reduce_grad(where(ne(e, 0), g[0] * e * pow(b, e - 1), 0.0), shb, db);
                            // d/de = b^e log b, zero where b == 0 and e >= 0 (the limit, instead of 0 * -inf).
                            if (needs[1]) {
                              const Tensor zero_base = logical_and(eq(b, 0), ge(e, 0));
                              r[1] = reduce_grad(where(logical_not(zero_base), g[0] * so.get() * log(b), 0.0), she, de);
                            }
                            return r;
                          });
}

Tensor pow(const Tensor& base, const Scalar& exponent) {
  check_operand(base, "pow");
  const DType dt = result_type(base, exponent);
  EMBER_CHECK(dt != DType::boolean, DTypeError, "pow: bool tensors are not supported");
  EMBER_CHECK(!(is_integral(dt) && exponent.to_int() < 0), ValueError,
              "pow: integers to negative integer powers are not allowed (exponent ", exponent.to_int(), ")");
  Tensor out;
  if (exponent.to_double() == 2.0) {
    out = binary_core(BinaryOp::mul, "pow", base, base, dt, dt);  // the common square, on the fast path
  } else {
    out = binary_core(BinaryOp::pow, "pow", base, scalar_operand(exponent, dt), dt, dt);
  }
  if (!autograd::any_requires_grad({&base})) return out;
  const double e = exponent.to_double();
  return autograd::record("PowBackward0", {base}, out,
                          [sb = autograd::SavedTensor(base), e, db = base.dtype()](const Grads& g, const Needs&) {
                            if (e == 0.0) return Grads{zeros_like(g[0]).to(db)};
                            const Tensor b = sb.get();
                            Tensor r = e == 2.0 ? g[0] * b * 2.0 : g[0] * pow(b, e - 1.0) * e;
                            return Grads{r.dtype() == db ? r : r.to(db)};
                          });
}

Tensor pow(const Scalar& base, const Tensor& exponent) {
  check_operand(exponent, "pow");
  const DType dt = result_type(exponent, base);
  EMBER_CHECK(dt != DType::boolean, DTypeError, "pow: bool tensors are not supported");
  Tensor out = binary_core(BinaryOp::pow, "pow", scalar_operand(base, dt), exponent, dt, dt);
  if (!autograd::any_requires_grad({&exponent})) return out;
  const double b = base.to_double();
  return autograd::record("PowBackward2", {exponent}, out,
                          [so = autograd::SavedTensor(out), se = autograd::SavedTensor(exponent), b,
                           de = exponent.dtype()](const Grads& g, const Needs&) {
                            Tensor r;
                            if (b == 0.0) {
                              // 0^e: zero gradient for e >= 0 (torch's convention), -inf * g below.
                              r = where(lt(se.get(), 0), g[0] * so.get() * -std::numeric_limits<double>::infinity(),
                                        0.0);
                            } else {
                              r = g[0] * so.get() * std::log(b);
                            }
                            return Grads{r.dtype() == de ? r : r.to(de)};
                          });
}

Tensor Tensor::pow(const Scalar& exponent) const { return ember::pow(*this, exponent); }
Tensor Tensor::pow(const Tensor& exponent) const { return ember::pow(*this, exponent); }

}  // namespace ember
