// Joining and splitting: cat, stack, split, chunk, and constant padding.
#include <algorithm>

#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/ops/indexing.hpp"
#include "indexing_checks.hpp"

namespace ember {

namespace {
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

/// PyTorch skips 1-d empty tensors in cat whatever their other shapes (legacy behaviour that
/// lets code start from torch.tensor([]) and append).
bool skipped_in_cat(const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; }

/// Where each input of cat went: its offset and length along dim, its dtype.
struct CatPiece {
  int64_t offset = 0;
  int64_t length = 0;
  DType dtype = kFloat32;
  bool skipped = false;
};
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), ValueError, "cat: expected a non-empty list of tensors");
  DType dtype = DType::boolean;
  int64_t ref = -1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    EMBER_CHECK(t.defined(), ValueError, "cat: tensor ", i, " is undefined");
    EMBER_CHECK(t.device() == tensors[0].device(), DeviceError, "cat: expected all tensors on ",
                tensors[0].device().str(), ", got tensor ", i, " on ", t.device().str());
    EMBER_CHECK(t.dim() > 0, ShapeError, "cat: zero-dimensional tensor (at position ", i,
                ") cannot be concatenated; unsqueeze it or use stack");
    dtype = i == 0 ? t.dtype() : promote_types(dtype, t.dtype());
    if (ref < 0 && !skipped_in_cat(t)) ref = static_cast<int64_t>(i);
  }
  if (ref < 0) {
    // Only 1-d empty tensors: the result is one as well.
    Tensor out = empty({0}, {.dtype = dtype, .device = tensors[0].device()});
    return autograd::record("CatBackward", tensors, out,
                            [tensors_n = tensors.size()](const Grads& g, const Needs& needs) {
                              Grads r(tensors_n);
                              for (size_t i = 0; i < tensors_n; ++i)
                                if (needs[i]) r[i] = zeros({0}, {.dtype = g[0].dtype(), .device = g[0].device()});
                              return r;
                            });
  }
  const Tensor& first = tensors[ref];
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  std::vector<CatPiece> pieces(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    pieces[i].dtype = t.dtype();
    if (skipped_in_cat(t)) {
      pieces[i].skipped = true;
      continue;
    }
    EMBER_CHECK(t.dim() == first.dim(), ShapeError, "cat: tensor ", i, " has ", t.dim(), " dimensions (shape ",
                shape_str(t.shape()), ") but tensor ", ref, " has ", first.dim(), " (shape ", shape_str(first.shape()),
                ")");
    for (int64_t d = 0; d < t.dim(); ++d) {
      EMBER_CHECK(d == dim || t.size(d) == first.size(d), ShapeError,
                  "cat: sizes of tensors must match except in dimension ", dim, ": tensor ", ref, " has shape ",
                  shape_str(first.shape()), " but tensor ", i, " has shape ", shape_str(t.shape()),
                  " (mismatch in dimension ", d, ")");
    }
    pieces[i].offset = out_shape[dim];
    pieces[i].length = t.size(dim);
    out_shape[dim] += t.size(dim);
  }

  Tensor out = empty(out_shape, {.dtype = dtype, .device = first.device()});
  {
    NoGradGuard ng;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (pieces[i].skipped || pieces[i].length == 0) continue;
      // CUDA: copy_ into the slice (strided, converting the dtype on the device).
      if (out.is_cuda())
        out.narrow(dim, pieces[i].offset, pieces[i].length).copy_(tensors[i].detach());
      else
        cpu::copy(out.narrow(dim, pieces[i].offset, pieces[i].length), tensors[i]);
    }
  }
  return autograd::record("CatBackward", tensors, out, [pieces, dim](const Grads& g, const Needs& needs) {
    Grads r(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (!needs[i]) continue;
      const CatPiece& p = pieces[i];
      if (p.skipped) {
        r[i] = zeros({0}, {.dtype = p.dtype, .device = g[0].device()});
        continue;
      }
      r[i] = g[0].narrow(dim, p.offset, p.length).to(p.dtype);
    }
    return r;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), ValueError, "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].defined(), ValueError, "stack: tensor ", i, " is undefined");
    EMBER_CHECK(tensors[i].shape() == tensors[0].shape(), ShapeError,
                "stack: expects each tensor to be equal size, but got ", shape_str(tensors[0].shape()),
                " at entry 0 and ", shape_str(tensors[i].shape()), " at entry ", i);
  }
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(dim));
  return cat(parts, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, ShapeError, "split: expects at least a 1-dimensional tensor, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(dim);
  EMBER_CHECK(split_size >= 0, ValueError, "split: split_size must be non-negative, got ", split_size);
  EMBER_CHECK(split_size > 0 || n == 0, ValueError,
              "split: split_size can only be 0 if the dimension size is 0, but dimension ", dim, " has size ", n);
  const int64_t pieces = split_size == 0 ? 1 : std::max<int64_t>((n + split_size - 1) / split_size, 1);
  std::vector<Tensor> out;
  out.reserve(static_cast<size_t>(pieces));
  for (int64_t i = 0; i < pieces; ++i) {
    const int64_t start = i * split_size;
    out.push_back(x.narrow(dim, start, std::min(split_size, n - start)));
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, ShapeError, "split: expects at least a 1-dimensional tensor, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(dim);
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, ValueError, "split: split sizes must be non-negative, got ", shape_str(sizes));
    total += s;
  }
  EMBER_CHECK(total == n, ValueError, "split: split sizes ", shape_str(sizes), " add up to ", total, " but dimension ",
              dim, " of the input ", shape_str(x.shape()), " has size ", n);
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, ShapeError, "chunk: expects at least a 1-dimensional tensor, got a 0-d tensor");
  EMBER_CHECK(chunks > 0, ValueError, "chunk: number of chunks must be positive, got ", chunks);
  dim = wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.size(dim);
  if (n == 0) return split(x, std::vector<int64_t>(static_cast<size_t>(chunks), 0), dim);
  return split(x, (n + chunks - 1) / chunks, dim);
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  EMBER_CHECK(x.defined(), ValueError, "pad: got an undefined tensor");
  const int64_t np = static_cast<int64_t>(pads.size());
  EMBER_CHECK(np % 2 == 0 && np / 2 <= x.dim(), ValueError,
              "pad: padding length must be even and at most 2 * ndim = ", 2 * x.dim(), " for an input of shape ",
              shape_str(x.shape()), ", got ", np, " values ", shape_str(pads));
  // pads[2k], pads[2k+1] pad dim (ndim - 1 - k) on the left and right.
  Shape out_shape = x.shape();
  for (int64_t k = 0; k < np / 2; ++k) {
    const int64_t d = x.dim() - 1 - k;
    const int64_t size = x.size(d) + pads[2 * k] + pads[2 * k + 1];
    EMBER_CHECK(size >= 0, ValueError, "pad: dimension ", d, " of size ", x.size(d), " padded by (", pads[2 * k], ", ",
                pads[2 * k + 1], ") would have negative size ", size);
    out_shape[d] = size;
  }
  Tensor out;
  {
    NoGradGuard ng;
    out = full(out_shape, value, {.dtype = x.dtype(), .device = x.device()});
    Tensor src = x, dst = out;
    bool empty_region = false;
    for (int64_t k = 0; k < np / 2; ++k) {
      const int64_t d = x.dim() - 1 - k;
      const int64_t l = pads[2 * k], r = pads[2 * k + 1];
      const int64_t src_start = std::max<int64_t>(0, -l);
      const int64_t length = x.size(d) - src_start - std::max<int64_t>(0, -r);
      if (length <= 0) {
        empty_region = true;
        break;
      }
      src = src.narrow(d, src_start, length);
      dst = dst.narrow(d, std::max<int64_t>(0, l), length);
    }
    if (!empty_region && src.numel() > 0) dst.copy_(src);  // on either device
  }
  std::vector<int64_t> inverse(pads.size());
  for (size_t i = 0; i < pads.size(); ++i) inverse[i] = -pads[i];
  return autograd::record("ConstantPadNdBackward", {x}, out, [inverse](const Grads& g, const Needs&) {
    // Cropping what was padded (and zero-padding what was cropped) is the adjoint.
    return Grads{pad(g[0], inverse, 0.0)};
  });
}

}  // namespace ember
