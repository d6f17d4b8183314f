// Gathering and scattering: index_select, gather, scatter_add, embedding, masked_fill,
// triu / tril, one_hot.
#include "ember/ops/indexing.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/random.hpp"
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

namespace {
/// x defined; an index on the CPU or on x's device (a CUDA x may take a CPU index).
void check_operands(const Tensor& x, const Tensor& index, const char* op, const char* what = "index") {
  EMBER_CHECK(x.defined() && index.defined(), ValueError, op, ": got an undefined tensor");
  if (x.is_cpu())
    EMBER_CHECK(index.is_cpu(), DeviceError, op, ": the input is on cpu but the ", what, " is on ",
                index.device().str());
  detail::check_index_dtype(index, op, what);
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_operands(x, index, "index_select");
  EMBER_CHECK(index.dim() <= 1, ShapeError, "index_select: index must be 0-d or 1-d, got shape ",
              shape_str(index.shape()));
  dim = wrap_dim(dim, x.dim(), "index_select");
  // A 0-d input behaves as one element along dim 0.
  const Tensor xv = x.dim() == 0 ? x.detach().reshape({1}) : x.detach();
  Tensor idx = index.detach().reshape({-1});
  if (x.is_cuda())
    idx = detail::device_index(idx, x, xv.size(dim), "index_select", dim);
  else
    detail::check_index_range(idx, xv.size(dim), "index_select", dim);
  Shape out_shape = xv.shape();
  out_shape[dim] = idx.numel();
  // The result is a fresh tensor (not a view) even when it must be 0-d.
  const Shape result_shape = x.dim() == 0 && index.dim() == 0 ? Shape{} : out_shape;
  Tensor out = empty(result_shape, {.dtype = x.dtype(), .device = x.device()});
  if (x.is_cuda())
    cuda_backend::index_select(out.view(out_shape), xv, dim, idx);
  else
    cpu::index_select(out.view(out_shape), xv, dim, idx);
  const Shape in_shape = xv.shape(), x_shape = x.shape();
  return autograd::record("IndexSelectBackward", {x}, out,
                          [si = SavedTensor(idx), dim, in_shape, x_shape, out_shape](const Grads& g, const Needs&) {
                            // Scatter-add the rows back: an index listed twice receives both.
                            Tensor r = zeros(in_shape, {.dtype = g[0].dtype(), .device = g[0].device()});
                            detail::index_add_any(r, dim, si.get(), g[0].reshape(out_shape));
                            return Grads{r.reshape(x_shape)};
                          });
}

namespace {
/// index_in (detached) after checking its values against x's size along dim; on x's device for
/// a CUDA x (gather and scatter_add).
Tensor checked_index(const Tensor& index_in, const Tensor& x, int64_t dim, const char* op) {
  const int64_t size = x.dim() == 0 ? 1 : x.size(dim);
  Tensor index = index_in.detach();
  if (x.is_cuda()) return detail::device_index(index, x, size, op, dim);
  detail::check_index_range(index, size, op, dim);
  return index;
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_in) {
  check_operands(x, index_in, "gather");
  EMBER_CHECK(index_in.dim() == x.dim(), ShapeError, "gather: index ", shape_str(index_in.shape()),
              " must have as many dimensions as the input ", shape_str(x.shape()));
  dim = wrap_dim(dim, x.dim(), "gather");
  for (int64_t d = 0; d < x.dim(); ++d) {
    EMBER_CHECK(d == dim || index_in.size(d) <= x.size(d), ShapeError, "gather: index shape ",
                shape_str(index_in.shape()), " exceeds input shape ", shape_str(x.shape()), " in dimension ", d,
                " (only dimension ", dim, " may be larger)");
  }
  const Tensor index = checked_index(index_in, x, dim, "gather");
  Tensor out = empty(index.shape(), {.dtype = x.dtype(), .device = x.device()});
  if (x.is_cuda()) {
    // 0-d operands as (1,): the kernels iterate over at least one dimension.
    const bool scalar = x.dim() == 0;
    cuda_backend::gather(scalar ? out.reshape({1}) : out, scalar ? x.detach().reshape({1}) : x.detach(), dim,
                         scalar ? index.reshape({1}) : index);
  } else {
    cpu::gather(out, x, dim, index);
  }
  const Shape x_shape = x.shape();
  return autograd::record("GatherBackward", {x}, out,
                          [si = SavedTensor(index), dim, x_shape](const Grads& g, const Needs&) {
                            Tensor r = zeros(x_shape, {.dtype = g[0].dtype(), .device = g[0].device()});
                            const Tensor idx = si.get();
                            if (x_shape.empty() && r.is_cuda())
                              detail::scatter_add_any(r.reshape({1}), 0, idx.reshape({1}), g[0].reshape({1}));
                            else
                              detail::scatter_add_any(r, dim, idx, g[0]);
                            return Grads{r};
                          });
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index_in, const Tensor& src) {
  check_operands(x, index_in, "scatter_add");
  EMBER_CHECK(src.defined(), ValueError, "scatter_add: got an undefined tensor");
  EMBER_CHECK(src.device() == x.device(), DeviceError, "scatter_add: src is on ", src.device().str(),
              " but the input is on ", x.device().str());
  EMBER_CHECK(src.dtype() == x.dtype(), DTypeError, "scatter_add: src dtype ", dtype_name(src.dtype()),
              " must equal the input dtype ", dtype_name(x.dtype()));
  EMBER_CHECK(index_in.dim() == x.dim() && src.dim() == x.dim(), ShapeError, "scatter_add: input ",
              shape_str(x.shape()), ", index ", shape_str(index_in.shape()), " and src ", shape_str(src.shape()),
              " must have the same number of dimensions");
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  for (int64_t d = 0; d < x.dim(); ++d) {
    EMBER_CHECK(index_in.size(d) <= src.size(d), ShapeError, "scatter_add: index shape ", shape_str(index_in.shape()),
                " exceeds src shape ", shape_str(src.shape()), " in dimension ", d);
    EMBER_CHECK(d == dim || index_in.size(d) <= x.size(d), ShapeError, "scatter_add: index shape ",
                shape_str(index_in.shape()), " exceeds input shape ", shape_str(x.shape()), " in dimension ", d,
                " (only dimension ", dim, " may be larger)");
  }
  const Tensor index = checked_index(index_in, x, dim, "scatter_add");
  Tensor out = plain_copy(x);
  if (x.is_cuda()) {
    const bool scalar = x.dim() == 0;
    cuda_backend::scatter_add(scalar ? out.reshape({1}) : out, dim, scalar ? index.reshape({1}) : index,
                              scalar ? src.detach().reshape({1}) : src.detach());
  } else {
    cpu::scatter_add(out, dim, index, src);
  }
  const Shape src_shape = src.shape();
  return autograd::record("ScatterAddBackward", {x, src}, out,
                          [si = SavedTensor(index), dim, src_shape](const Grads& g, const Needs& needs) {
                            Grads r(2);
                            if (needs[0]) r[0] = g[0];
                            if (needs[1]) {
                              const Tensor idx = si.get();
                              r[1] = zeros(src_shape, {.dtype = g[0].dtype(), .device = g[0].device()});
                              if (src_shape.empty() && r[1].is_cuda())
                                detail::gather_any(r[1].reshape({1}), g[0].reshape({1}), 0, idx.reshape({1}));
                              else
                                detail::gather_any(leading_region(r[1], idx.shape()), g[0], dim, idx);
                            }
                            return r;
                          });
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  check_operands(weight, indices, "embedding", "indices");
  EMBER_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be 2-d (num_embeddings, embedding_dim), got ",
              shape_str(weight.shape()));
  const int64_t rows = weight.size(0), cols = weight.size(1);
  Tensor flat = indices.detach().reshape({-1});
  if (flat.is_cpu()) {
    auto [lo, hi] = cpu::index_min_max(flat);
    EMBER_CHECK(flat.numel() == 0 || (lo >= 0 && hi < rows), IndexError, "embedding: index ", lo < 0 ? lo : hi,
                " is out of range for a table of ", rows, " rows (weight shape ", shape_str(weight.shape()), ")");
  }
  if (weight.is_cuda()) {
    // The range of a CPU index was checked above; one on the device is checked by the kernel.
    flat = detail::device_index(flat, weight, rows, "embedding", 0);
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(cols);
  Tensor out = empty(out_shape, {.dtype = weight.dtype(), .device = weight.device()});
  if (weight.is_cuda())
    cuda_backend::embedding(out.view({flat.numel(), cols}), weight.detach(), flat);
  else
    cpu::index_select(out.view({flat.numel(), cols}), weight.detach(), 0, flat);
  const Shape w_shape = weight.shape();
  return autograd::record("EmbeddingBackward", {weight}, out,
                          [si = SavedTensor(flat), w_shape](const Grads& g, const Needs&) {
                            // Dense gradient; rows hit by several indices sum their contributions
                            // (in position order on both devices: CUDA sorts the indices).
                            const Tensor idx = si.get();
                            Tensor r = zeros(w_shape, {.dtype = g[0].dtype(), .device = g[0].device()});
                            const Tensor gr = g[0].reshape({idx.numel(), w_shape[1]});
                            if (r.is_cuda())
                              cuda_backend::embedding_backward(r, idx, gr);
                            else
                              cpu::index_add(r, 0, idx, gr);
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
    const Tensor ks = arange(num_classes).to(indices.device());
    return eq(indices.detach().to(kInt64).unsqueeze(-1), ks).to(kInt64);
  }
  Tensor out = zeros(out_shape, {.dtype = kInt64});
  cpu::one_hot(out, indices.detach().contiguous());
  return out;
}

}  // namespace ember
