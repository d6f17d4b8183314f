// View ops: new geometry over the same storage, each with its backward.
#include <algorithm>
#include <numeric>

#include "ember/autograd/node.hpp"

namespace ember {

namespace {
using autograd::record;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  Tensor v = make_tensor(base.storage(), shape, strides, offset, base.dtype());
  v.impl().device = base.device();
  v.impl().is_view = true;
  return v;
}

/// Strides for viewing `t` as `shape` without copying, or empty when impossible
/// (the rule of torch's computeStride: each group of merged dims must be contiguous).
std::optional<Shape> view_strides(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0 || t.is_contiguous()) return contiguous_strides(shape);
  const Shape& old_shape = t.shape();
  const Shape& old_strides = t.strides();
  Shape new_strides(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

/// Resolves one -1 entry and checks the element count.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      EMBER_CHECK(infer < 0, ShapeError, op, ": only one dimension can be -1, got ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      EMBER_CHECK(out[i] >= 0, ShapeError, op, ": invalid size ", out[i], " in shape ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, ShapeError, op, ": shape ", shape_str(shape),
                " is invalid for input of size ", numel, " (shape ", shape_str(from), ")");
    out[infer] = numel / known;
  }
  EMBER_CHECK(numel_of(out) == numel, ShapeError, op, ": shape ", shape_str(shape), " is invalid for input of size ",
              numel, " (shape ", shape_str(from), ")");
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "view", shape());
  auto st = view_strides(*this, s);
  EMBER_CHECK(st.has_value(), ShapeError, "view: size ", shape_str(s), " is not compatible with the input's size ",
              shape_str(shape()), " and strides ", shape_str(strides()),
              " (at least one dimension spans two contiguous subspaces); use reshape() instead");
  Tensor out = make_view(*this, s, *st, storage_offset());
  Shape in = shape();
  return record("ViewBackward", {*this}, out, [in](const Grads& g, const Needs&) { return Grads{g[0].reshape(in)}; });
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "reshape", shape());
  if (view_strides(*this, s).has_value()) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  if (dim() == 0) return *this;
  Shape s = shape(), st = strides();
  std::swap(s[d0], s[d1]);
  std::swap(st[d0], st[d1]);
  Tensor out = make_view(*this, s, st, storage_offset());
  return record("TransposeBackward", {*this}, out,
                [d0, d1](const Grads& g, const Needs&) { return Grads{g[0].transpose(d0, d1)}; });
}

Tensor Tensor::t() const {
  EMBER_CHECK(dim() <= 2, ShapeError, "t(): expected a tensor with <= 2 dimensions, got shape ", shape_str(shape()),
              "; use transpose(d0, d1)");
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::permute(const Shape& dims) const {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == dim(), ShapeError, "permute: got ", dims.size(),
              " dims for a tensor of shape ", shape_str(shape()));
  Shape s(dims.size()), st(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    EMBER_CHECK(!seen[d], ShapeError, "permute: dimension ", d, " repeats in ", shape_str(dims));
    seen[d] = true;
    s[i] = shape()[d];
    st[i] = strides()[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  Tensor out = make_view(*this, s, st, storage_offset());
  return record("PermuteBackward", {*this}, out,
                [inverse](const Grads& g, const Needs&) { return Grads{g[0].permute(inverse)}; });
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  EMBER_CHECK(dim() > 0, IndexError, "slice: cannot slice a 0-d tensor");
  EMBER_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, s, st, storage_offset() + start * strides()[d]);
  Shape in = shape();
  return record("SliceBackward", {*this}, out, [in, d, start, end, step](const Grads& g, const Needs&) {
    Tensor r = zeros(in, {.dtype = g[0].dtype(), .device = g[0].device()});
    r.slice(d, start, end, step).copy_(g[0]);
    return Grads{r};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = dim() == 0 ? 1 : shape()[d];
  if (start < 0) start += n;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= n, IndexError, "narrow: range [", start, ", ",
              start + length, ") is out of bounds for dimension ", d, " of size ", n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  EMBER_CHECK(dim() > 0, IndexError, "select: cannot select on a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[d];
  EMBER_CHECK(index >= -n && index < n, IndexError, "select: index ", index, " is out of bounds for dimension ", d,
              " with size ", n);
  if (index < 0) index += n;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, storage_offset() + index * strides()[d]);
  Shape in = shape();
  return record("SelectBackward", {*this}, out, [in, d, index](const Grads& g, const Needs&) {
    Tensor r = zeros(in, {.dtype = g[0].dtype(), .device = g[0].device()});
    r.select(d, index).copy_(g[0]);
    return Grads{r};
  });
}

Tensor Tensor::expand(const Shape& target) const {
  const int64_t nd = static_cast<int64_t>(target.size());
  EMBER_CHECK(nd >= dim(), ShapeError, "expand: the number of sizes provided (", nd,
              ") must be greater or equal to the number of dimensions in the tensor (", dim(), ")");
  Shape s(nd), st(nd);
  const int64_t lead = nd - dim();
  for (int64_t i = nd - 1; i >= 0; --i) {
    const int64_t j = i - lead;
    int64_t want = target[i];
    if (j < 0) {
      EMBER_CHECK(want >= 0, ShapeError, "expand: the expanded size ", want, " is not allowed in a leading dimension");
      s[i] = want;
      st[i] = 0;
      continue;
    }
    const int64_t have = shape()[j];
    if (want == -1) want = have;
    EMBER_CHECK(have == want || have == 1, ShapeError, "expand: the expanded size of the tensor (", want,
                ") must match the existing size (", have, ") at dimension ", i, "; target ", shape_str(target),
                ", tensor ", shape_str(shape()));
    s[i] = want;
    st[i] = have == want ? strides()[j] : 0;
  }
  if (s == shape()) return *this;
  Tensor out = make_view(*this, s, st, storage_offset());
  Shape in = shape();
  return record("ExpandBackward", {*this}, out,
                [in](const Grads& g, const Needs&) { return Grads{autograd::sum_to(g[0], in)}; });
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t v : shape())
    if (v != 1) s.push_back(v);
  return s.size() == shape().size() ? *this : reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, storage_offset());
  return record("SqueezeBackward", {*this}, out, [d](const Grads& g, const Needs&) { return Grads{g[0].unsqueeze(d)}; });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  const int64_t new_stride = d < dim() ? strides()[d] * shape()[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  Tensor out = make_view(*this, s, st, storage_offset());
  return record("UnsqueezeBackward", {*this}, out, [d](const Grads& g, const Needs&) { return Grads{g[0].squeeze(d)}; });
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  EMBER_CHECK(start <= end, ValueError, "flatten: start_dim ", start, " must not come after end_dim ", end);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::as_strided(const Shape& s, const Shape& st, int64_t offset) const {
  EMBER_CHECK(s.size() == st.size(), ShapeError, "as_strided: shape ", shape_str(s), " and strides ", shape_str(st),
              " differ in length");
  return make_view(*this, s, st, offset);
}

}  // namespace ember
