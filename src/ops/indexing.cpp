// Gathering and scattering: index_select, gather, scatter_add, embedding, masked_fill,
// triu / tril, one_hot.
#include "ember/ops/indexing.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/elementwise.hpp"
#include "indexing_checks.hpp"

namespace ember {

namespace {
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

/// The region [0, sizes[d]) of every dim of t (a view; no autograd).
Tensor leading_region(const Tensor& t, const Shape& sizes) {
  return t.as_strided(sizes, t.strides(), t.storage_offset());
}

/// A fresh copy of t (no autograd), contiguous, on t's device.
Tensor plain_copy(const Tensor& t) {
  Tensor out = empty(t.shape(), {.dtype = t.dtype(), .device = t.device()});
  NoGradGuard ng;
  out.copy_(t);
  return out;
}

/// CUDA tensors: masked_fill as where(mask, value, x) into a fresh tensor (no autograd).
Tensor cuda_masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value) {
  NoGradGuard ng;
  EMBER_CHECK(mask.device() == x.device(), DeviceError, "masked_fill: the mask is on ", mask.device().str(),
              " but the input is on ", x.device().str());
  return where(mask, x.detach(), scalar_tensor(value, {.dtype = x.dtype()}));
}

/// Where the last two dims of a (rows, cols) matrix keep their values in triu/tril (on the CPU).
Tensor triangle_mask(int64_t rows, int64_t cols, int64_t diagonal, bool upper) {
  std::vector<uint8_t> keep(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) keep[r * cols + c] = upper ? c - r >= diagonal : c - r <= diagonal;
  return ne(tensor<uint8_t>(keep, {rows, cols}), 0);
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_cpu(x, "index_select");
  detail::check_cpu(index, "index_select");
  detail::check_index_dtype(index, "index_select");
  EMBER_CHECK(index.dim() <= 1, ShapeError, "index_select: index must be 0-d or 1-d, got shape ",
              shape_str(index.shape()));
  dim = wrap_dim(dim, x.dim(), "index_select");
  // A 0-d input behaves as one element along dim 0.
  const Tensor xv = x.dim() == 0 ? x.detach().reshape({1}) : x.detach();
  const Tensor idx = index.detach().reshape({-1});
  detail::check_index_range(idx, xv.size(dim), "index_select", dim);
  Shape out_shape = xv.shape();
  out_shape[dim] = idx.numel();
  // The result is a fresh tensor (not a view) even when it must be 0-d.
  Tensor out = empty(x.dim() == 0 && index.dim() == 0 ? Shape{} : out_shape, {.dtype = x.dtype()});
  cpu::index_select(out.view(out_shape), xv, dim, idx);
  const Shape in_shape = xv.shape(), x_shape = x.shape();
  return autograd::record("IndexSelectBackward", {x}, out,
                          [si = SavedTensor(idx), dim, in_shape, x_shape, out_shape](const Grads& g, const Needs&) {
                            // Scatter-add the rows back: an index listed twice receives both.
                            Tensor r = zeros(in_shape, {.dtype = g[0].dtype()});
                            cpu::index_add(r, dim, si.get(), g[0].reshape(out_shape));
                            return Grads{r.reshape(x_shape)};
                          });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_cpu(x, "gather");
  detail::check_cpu(index, "gather");
  detail::check_index_dtype(index, "gather");
  EMBER_CHECK(index.dim() == x.dim(), ShapeError, "gather: index ", shape_str(index.shape()),
              " must have as many dimensions as the input ", shape_str(x.shape()));
  dim = wrap_dim(dim, x.dim(), "gather");
  for (int64_t d = 0; d < x.dim(); ++d) {
    EMBER_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, "gather: index shape ", shape_str(index.shape()),
                " exceeds input shape ", shape_str(x.shape()), " in dimension ", d, " (only dimension ", dim,
                " may be larger)");
  }
  detail::check_index_range(index, x.dim() == 0 ? 1 : x.size(dim), "gather", dim);
  Tensor out = empty(index.shape(), {.dtype = x.dtype()});
  cpu::gather(out, x, dim, index);
  const Shape x_shape = x.shape();
  return autograd::record("GatherBackward", {x}, out,
                          [si = SavedTensor(index), dim, x_shape](const Grads& g, const Needs&) {
                            Tensor r = zeros(x_shape, {.dtype = g[0].dtype()});
                            cpu::scatter_add(r, dim, si.get(), g[0]);
                            return Grads{r};
                          });
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_cpu(x, "scatter_add");
  detail::check_cpu(index, "scatter_add");
  detail::check_cpu(src, "scatter_add");
  detail::check_index_dtype(index, "scatter_add");
  EMBER_CHECK(src.dtype() == x.dtype(), DTypeError, "scatter_add: src dtype ", dtype_name(src.dtype()),
              " must equal the input dtype ", dtype_name(x.dtype()));
  EMBER_CHECK(index.dim() == x.dim() && src.dim() == x.dim(), ShapeError, "scatter_add: input ", shape_str(x.shape()),
              ", index ", shape_str(index.shape()), " and src ", shape_str(src.shape()),
              " must have the same number of dimensions");
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  for (int64_t d = 0; d < x.dim(); ++d) {
    EMBER_CHECK(index.size(d) <= src.size(d), ShapeError, "scatter_add: index shape ", shape_str(index.shape()),
                " exceeds src shape ", shape_str(src.shape()), " in dimension ", d);
    EMBER_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, "scatter_add: index shape ",
                shape_str(index.shape()), " exceeds input shape ", shape_str(x.shape()), " in dimension ", d,
                " (only dimension ", dim, " may be larger)");
  }
  detail::check_index_range(index, x.dim() == 0 ? 1 : x.size(dim), "scatter_add", dim);
  Tensor out = plain_copy(x);
  cpu::scatter_add(out, dim, index, src);
  const Shape src_shape = src.shape();
  return autograd::record("ScatterAddBackward", {x, src}, out,
                          [si = SavedTensor(index), dim, src_shape](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            if (needs[0]) r[0] = g[0];
                            if (needs[1]) {
                              const Tensor idx = si.get();
                              r[1] = zeros(src_shape, {.dtype = g[0].dtype()});
                              cpu::gather(leading_region(r[1], idx.shape()), g[0], dim, idx);
                            }
                            return r;
                          });
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  detail::check_cpu(weight, "embedding");
  detail::check_cpu(indices, "embedding");
  detail::check_index_dtype(indices, "embedding", "indices");
  EMBER_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be 2-d (num_embeddings, embedding_dim), got ",
              shape_str(weight.shape()));
  const int64_t rows = weight.size(0), cols = weight.size(1);
  const Tensor flat = indices.detach().reshape({-1});
  auto [lo, hi] = cpu::index_min_max(flat);
  EMBER_CHECK(flat.numel() == 0 || (lo >= 0 && hi < rows), IndexError, "embedding: index ", lo < 0 ? lo : hi,
              " is out of range for a table of ", rows, " rows (weight shape ", shape_str(weight.shape()), ")");
  Shape out_shape = indices.shape();
  out_shape.push_back(cols);
  Tensor out = empty(out_shape, {.dtype = weight.dtype()});
  cpu::index_select(out.view({flat.numel(), cols}), weight.detach(), 0, flat);
  const Shape w_shape = weight.shape();
  return autograd::record("EmbeddingBackward", {weight}, out,
                          [si = SavedTensor(flat), w_shape](const Grads& g, const Needs&) {
                            // Dense gradient; rows hit by several indices sum their contributions.
                            const Tensor idx = si.get();
                            Tensor r = zeros(w_shape, {.dtype = g[0].dtype()});
                            cpu::index_add(r, 0, idx, g[0].reshape({idx.numel(), w_shape[1]}));
                            return Grads{r};
                          });
}

namespace {
void check_mask(const Tensor& x, const Tensor& mask, const char* op) {
  EMBER_CHECK(x.defined() && mask.defined(), ValueError, op, ": got an undefined tensor");
  EMBER_CHECK(mask.dtype() == kBool, DTypeError, op, ": mask must be a bool tensor, got ", dtype_name(mask.dtype()));
  const Shape b = broadcast_shapes(x.shape(), mask.shape(), op);
  EMBER_CHECK(b == x.shape(), ShapeError, op, ": mask of shape ", shape_str(mask.shape()),
              " cannot be broadcast to the input shape ", shape_str(x.shape()));
}

Tensor masked_fill_backward(const Tensor& g, const Tensor& mask) {
  if (g.is_cuda()) return cuda_masked_fill(g, mask, 0);
  Tensor r = plain_copy(g);
  cpu::masked_fill(r, mask, 0);
  return r;
}
}  // namespace

Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value) {
  check_mask(x, mask, "masked_fill");
  Tensor out;
  if (x.is_cuda()) {
    out = cuda_masked_fill(x, mask, value);
  } else {
    EMBER_CHECK(mask.is_cpu(), DeviceError, "masked_fill: the input is on cpu but the mask is on ",
                mask.device().str());
    out = plain_copy(x);
    cpu::masked_fill(out, mask, value);
  }
  return autograd::record("MaskedFillBackward", {x}, out, [sm = SavedTensor(mask)](const Grads& g, const Needs&) {
    return Grads{masked_fill_backward(g[0], sm.get())};
  });
}

Tensor& masked_fill_(Tensor& x, const Tensor& mask, const Scalar& value) {
  check_mask(x, mask, "masked_fill_");
  autograd::check_inplace(x, "masked_fill_");
  if (x.is_cuda()) {
    NoGradGuard ng;
    x.copy_(cuda_masked_fill(x, mask, value));
  } else {
    EMBER_CHECK(mask.is_cpu(), DeviceError, "masked_fill_: the input is on cpu but the mask is on ",
                mask.device().str());
    cpu::masked_fill(x, mask, value);
  }
  x.storage()->bump_version();
  autograd::record("MaskedFillBackward", {x}, x, [sm = SavedTensor(mask)](const Grads& g, const Needs&) {
    return Grads{masked_fill_backward(g[0], sm.get())};
  });
  return x;
}

namespace {
Tensor triangle(const Tensor& x, int64_t diagonal, bool upper) {
  const char* op = upper ? "triu" : "tril";
  EMBER_CHECK(x.defined(), ValueError, op, ": got an undefined tensor");
  EMBER_CHECK(x.dim() >= 2, ShapeError, op, ": input must have at least 2 dimensions, got shape ",
              shape_str(x.shape()));
  Tensor out;
  if (x.is_cuda()) {
    NoGradGuard ng;
    const Tensor keep = triangle_mask(x.size(-2), x.size(-1), diagonal, upper).to(x.device());
    out = where(keep, x.detach(), scalar_tensor(0, {.dtype = x.dtype()}));
  } else {
    out = plain_copy(x);
    cpu::triangle_zero(out, diagonal, upper);
  }
  return autograd::record(upper ? "TriuBackward" : "TrilBackward", {x}, out,
                          [diagonal, upper](const Grads& g, const Needs&) {
                            return Grads{upper ? triu(g[0], diagonal) : tril(g[0], diagonal)};
                          });
}
}  // namespace

Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true); }
Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false); }

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  EMBER_CHECK(indices.defined(), ValueError, "one_hot: got an undefined tensor");
  detail::check_index_dtype(indices, "one_hot", "indices");
  EMBER_CHECK(num_classes >= -1, ValueError, "one_hot: num_classes must be -1 (infer) or non-negative, got ",
              num_classes);
  // The range check reads the values on the host (a CUDA index is copied back: a synchronisation).
  auto [lo, hi] = cpu::index_min_max(indices.is_cpu() ? indices : indices.cpu());
  if (num_classes == -1) {
    EMBER_CHECK(indices.numel() > 0, ValueError,
                "one_hot: cannot infer num_classes from an empty tensor; pass num_classes explicitly");
    num_classes = hi + 1;
  }
  if (indices.numel() > 0) {
    EMBER_CHECK(lo >= 0, IndexError, "one_hot: class values must be non-negative, got ", lo);
    EMBER_CHECK(hi < num_classes, IndexError, "one_hot: class value ", hi,
                " must be smaller than num_classes = ", num_classes);
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(num_classes);
  if (indices.is_cuda()) {
    // eq against 0 .. num_classes-1 broadcast over a new last dim, as int64.
    NoGradGuard ng;
    std::vector<int64_t> classes(static_cast<size_t>(num_classes));
    for (int64_t c = 0; c < num_classes; ++c) classes[c] = c;
    const Tensor ks = tensor<int64_t>(classes, {num_classes}).to(indices.device());
    return eq(indices.detach().to(kInt64).unsqueeze(-1), ks).to(kInt64);
  }
  Tensor out = zeros(out_shape, {.dtype = kInt64});
  cpu::one_hot(out, indices.detach().contiguous());
  return out;
}

}  // namespace ember
