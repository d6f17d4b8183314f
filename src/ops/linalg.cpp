// Matrix products: matmul (torch.matmul semantics), mm, bmm, linear, dot.
//
// Two differentiable kernels carry everything: a 2-d product (mm_op) and a batched product with
// broadcast batch dims (batched_op). The public functions validate, then reduce their case to
// one of them with views (unsqueeze / squeeze / reshape), whose own backward undoes the
// reshaping. linear has its own node so that its backward is exactly one GEMM per gradient.
#include "ember/ops/linalg.hpp"
#include "ember/amp/autocast.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

/// The GEMM of the operands' device (the CUDA one takes floating dtypes only).
void gemm_on_device(const Tensor& c, const Tensor& a, const Tensor& b, double alpha = 1.0, double beta = 0.0) {
  if (c.is_cuda()) cuda_backend::gemm(c, a, b, alpha, beta);
  else cpu::gemm(c, a, b, alpha, beta);
}

// ------------------------------------------------------------------ validation
void check_operand_dtype(const char* op, const Tensor& t) {
  const DType dt = t.dtype();
  EMBER_CHECK(is_floating(dt) || dt == kInt32 || dt == kInt64, DTypeError, op, ": dtype ", dtype_name(dt),
              " is not supported (expected float32, float64, float16, bfloat16, int32 or int64)");
}

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), ValueError, op, ": expected defined tensors, got an undefined operand");
  EMBER_CHECK(a.device() == b.device(), DeviceError, op, ": expected both operands on the same device, got ",
              a.device().str(), " and ", b.device().str());
  EMBER_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": expected both operands to have the same dtype, got ",
              dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  check_operand_dtype(op, a);
}

void check_align(const char* op, const Tensor& a, const Tensor& b, int64_t ka, int64_t kb) {
  EMBER_CHECK(ka == kb, ShapeError, op, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
              " do not align: ", ka, " != ", kb);
}

/// Autocast (include/ember/amp/autocast.hpp): when it is on for the operands' device, the
/// floating operands cast to the autocast dtype (differentiable casts); false when nothing changes.
bool autocast_operands(Tensor& a, Tensor& b, Tensor* c = nullptr) {
  if (!a.defined() || !amp::is_autocast_enabled(a.device().type)) return false;
  const DType da = a.dtype(), db = b.defined() ? b.dtype() : da, dc = c && c->defined() ? c->dtype() : da;
  a = amp::autocast_low(a);
  b = amp::autocast_low(b);
  if (c) *c = amp::autocast_low(*c);
  return a.dtype() != da || (b.defined() && b.dtype() != db) || (c && c->defined() && c->dtype() != dc);
}

Shape drop_last(const Shape& s, size_t n) { return Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(n)); }

// ------------------------------------------------------------------ kernels (no autograd)
// (m, k) · (k, n) → (m, n).
Tensor mm_forward(const Tensor& a, const Tensor& b) {
  Tensor out = empty({a.size(0), b.size(1)}, {.dtype = a.dtype(), .device = a.device()});
  gemm_on_device(out, a, b);
  return out;
}

// (*, m, k) · (*, k, n) with equal ranks and broadcastable batch dims → (batch, m, n).
Tensor batched_forward(const Tensor& a, const Tensor& b) {
  const int64_t d = a.dim();
  const Shape batch = broadcast_shapes(drop_last(a.shape(), 2), drop_last(b.shape(), 2), "matmul");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {a.size(d - 2), a.size(d - 1)});
  sb.insert(sb.end(), {b.size(d - 2), b.size(d - 1)});
  so.insert(so.end(), {a.size(d - 2), b.size(d - 1)});
  Tensor out = empty(so, {.dtype = a.dtype(), .device = a.device()});
  gemm_on_device(out, a.expand(sa), b.expand(sb));
  return out;
}

// ------------------------------------------------------------------ differentiable kernels
Tensor mm_op(const Tensor& a, const Tensor& b) {
  Tensor out;
  {
    NoGradGuard ng;
    out = mm_forward(a, b);
  }
  if (!autograd::needs_grad({a, b})) return out;
  // Save only what the requested gradients read: grad_a needs b, grad_b needs a.
  autograd::SavedTensor sa = b.requires_grad() ? autograd::SavedTensor(a) : autograd::SavedTensor();
  autograd::SavedTensor sb = a.requires_grad() ? autograd::SavedTensor(b) : autograd::SavedTensor();
  return autograd::record("MmBackward", {a, b}, out, [sa, sb](const Grads& g, const Needs& needs) {
    Grads r(2);
    if (needs[0]) r[0] = mm_forward(g[0], sb.get().t());  // (m, n) · (n, k)
    if (needs[1]) r[1] = mm_forward(sa.get().t(), g[0]);  // (k, m) · (m, n)
    return r;
  });
}

Tensor batched_op(const Tensor& a, const Tensor& b) {
  Tensor out;
  {
    NoGradGuard ng;
    out = batched_forward(a, b);
  }
  if (!autograd::needs_grad({a, b})) return out;
  autograd::SavedTensor sa = b.requires_grad() ? autograd::SavedTensor(a) : autograd::SavedTensor();
  autograd::SavedTensor sb = a.requires_grad() ? autograd::SavedTensor(b) : autograd::SavedTensor();
  const Shape shape_a = a.shape(), shape_b = b.shape();
  return autograd::record("BmmBackward", {a, b}, out, [sa, sb, shape_a, shape_b](const Grads& g, const Needs& needs) {
    Grads r(2);
    // Each gradient has the full batch shape; sum_to folds the batch dims an operand broadcast.
    if (needs[0]) r[0] = autograd::sum_to(batched_forward(g[0], sb.get().transpose(-1, -2)), shape_a);
    if (needs[1]) r[1] = autograd::sum_to(batched_forward(sa.get().transpose(-1, -2), g[0]), shape_b);
    return r;
  });
}

// Sum of products of two 1-d tensors of equal length, as a (1, k) · (k, 1) GEMM (strided
// vectors need no copy).
Tensor dot_op(const Tensor& a, const Tensor& b) {
  Tensor out = empty({}, {.dtype = a.dtype(), .device = a.device()});
  {
    NoGradGuard ng;
    gemm_on_device(out.view({1, 1}), a.unsqueeze(0), b.unsqueeze(1));
  }
  if (!autograd::needs_grad({a, b})) return out;
  autograd::SavedTensor sa = b.requires_grad() ? autograd::SavedTensor(a) : autograd::SavedTensor();
  autograd::SavedTensor sb = a.requires_grad() ? autograd::SavedTensor(b) : autograd::SavedTensor();
  const int64_t k = a.size(0);
  return autograd::record("DotBackward", {a, b}, out, [sa, sb, k](const Grads& g, const Needs& needs) {
    Grads r(2);
    // grad · other, as an outer product with the scalar gradient (no elementwise op needed).
    const Tensor g11 = g[0].reshape({1, 1});
    if (needs[0]) r[0] = mm_forward(g11, sb.get().unsqueeze(0)).view({k});
    if (needs[1]) r[1] = mm_forward(g11, sa.get().unsqueeze(0)).view({k});
    return r;
  });
}

}  // namespace

// ------------------------------------------------------------------ public ops
Tensor matmul(const Tensor& a, const Tensor& b) {
  {
    Tensor ca = a, cb = b;
    if (autocast_operands(ca, cb)) return matmul(ca, cb);
  }
  check_pair("matmul", a, b);
  const int64_t da = a.dim(), db = b.dim();
  EMBER_CHECK(da >= 1 && db >= 1, ShapeError, "matmul: both arguments need at least 1 dimension, got ", da, "-d and ",
              db, "-d");
  const int64_t kb = db == 1 ? b.size(0) : b.size(-2);
  check_align("matmul", a, b, a.size(-1), kb);

  if (da == 1 && db == 1) return dot_op(a, b);
  if (da == 2 && db == 2) return mm_op(a, b);
  if (da == 1 && db == 2) return mm_op(a.unsqueeze(0), b).squeeze(0);
  if (da == 2 && db == 1) return mm_op(a, b.unsqueeze(1)).squeeze(1);
  if (da >= 3 && db <= 2 && a.is_contiguous()) {
    // A shared right operand (a linear layer over (B, T, C)): fold the batch into the rows of
    // one large GEMM instead of B small ones.
    Shape out_shape = drop_last(a.shape(), 1);
    if (db == 2) out_shape.push_back(b.size(1));
    const Tensor b2 = db == 1 ? b.unsqueeze(1) : b;
    return mm_op(a.reshape({numel_of(drop_last(a.shape(), 1)), a.size(-1)}), b2).reshape(out_shape);
  }
  // General batched case: promote 1-d operands, pad the ranks, broadcast the batch dims.
  Tensor a2 = da == 1 ? a.unsqueeze(0) : a;
  Tensor b2 = db == 1 ? b.unsqueeze(1) : b;
  const Shape batch_a = drop_last(a2.shape(), 2), batch_b = drop_last(b2.shape(), 2);
  try {
    broadcast_shapes(batch_a, batch_b, "matmul");
  } catch (const ShapeError&) {
    EMBER_THROW(ShapeError, "matmul: batch dimensions ", shape_str(batch_a), " and ", shape_str(batch_b),
                " do not broadcast (shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  }
  while (a2.dim() < b2.dim()) a2 = a2.unsqueeze(0);
  while (b2.dim() < a2.dim()) b2 = b2.unsqueeze(0);
  Tensor out = batched_op(a2, b2);
  if (da == 1) out = out.squeeze(-2);
  if (db == 1) out = out.squeeze(-1);
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return ember::matmul(*this, other); }

Tensor mm(const Tensor& a, const Tensor& b) {
  {
    Tensor ca = a, cb = b;
    if (autocast_operands(ca, cb)) return mm(ca, cb);
  }
  check_pair("mm", a, b);
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, ShapeError, "mm: expected 2-d tensors, got ", a.dim(), "-d and ", b.dim(),
              "-d (shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  check_align("mm", a, b, a.size(1), b.size(0));
  return mm_op(a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  {
    Tensor ca = a, cb = b;
    if (autocast_operands(ca, cb)) return bmm(ca, cb);
  }
  check_pair("bmm", a, b);
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError, "bmm: expected 3-d tensors, got ", a.dim(), "-d and ", b.dim(),
              "-d (shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  EMBER_CHECK(a.size(0) == b.size(0), ShapeError, "bmm: batch sizes differ: shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()), " (", a.size(0), " != ", b.size(0), ")");
  check_align("bmm", a, b, a.size(2), b.size(1));
  return batched_op(a, b);
}

Tensor dot(const Tensor& a, const Tensor& b) {
  check_pair("dot", a, b);
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, ShapeError, "dot: expected 1-d tensors, got ", a.dim(), "-d and ", b.dim(),
              "-d");
  EMBER_CHECK(a.size(0) == b.size(0), ShapeError,
              "dot: expected both vectors to have the same number of elements, got ", a.size(0), " and ", b.size(0));
  return dot_op(a, b);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  {
    Tensor cx = x, cw = w, cb = bias;
    if (autocast_operands(cx, cw, &cb)) return linear(cx, cw, cb);
  }
  check_pair("linear", x, w);
  EMBER_CHECK(x.dim() >= 1, ShapeError, "linear: input must have at least 1 dimension, got a 0-d tensor");
  EMBER_CHECK(w.dim() == 2, ShapeError, "linear: weight must be 2-d (out_features, in_features), got shape ",
              shape_str(w.shape()));
  const int64_t in = w.size(1), out_features = w.size(0);
  EMBER_CHECK(x.size(-1) == in, ShapeError, "linear: input of shape ", shape_str(x.shape()), " and weight of shape ",
              shape_str(w.shape()), " do not align: ", x.size(-1), " != ", in);
  if (bias.defined()) {
    check_pair("linear", x, bias);
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == out_features, ShapeError, "linear: bias must have shape (",
                out_features, ",) to match weight of shape ", shape_str(w.shape()), ", got ", shape_str(bias.shape()));
  }
  const Shape lead = drop_last(x.shape(), 1);
  const int64_t rows = numel_of(lead);
  Shape out_shape = lead;
  out_shape.push_back(out_features);

  Tensor out;
  {
    NoGradGuard ng;
    // All leading dims become the rows of one GEMM; the bias is written first and the GEMM
    // accumulates onto it (beta = 1), so no separate add pass.
    const Tensor x2 = x.reshape({rows, in});
    Tensor out2 = empty({rows, out_features}, {.dtype = x.dtype(), .device = x.device()});
    // On CUDA one cuBLASLt call with the BIAS epilogue when it applies (f32/f16/bf16).
    const bool fused = bias.defined() && x.is_cuda() && cuda_backend::linear_bias(out2, x2, w, bias);
    if (bias.defined() && !fused) {
      if (x.is_cuda()) cuda_backend::copy(out2, bias);
      else cpu::copy(out2, bias);
    }
    if (!fused) gemm_on_device(out2, x2, w.t(), 1.0, bias.defined() ? 1.0 : 0.0);
    out = out2.view(out_shape);
  }
  if (!autograd::needs_grad({x, w, bias})) return out;
  autograd::SavedTensor sx = w.requires_grad() ? autograd::SavedTensor(x) : autograd::SavedTensor();
  autograd::SavedTensor sw = x.requires_grad() ? autograd::SavedTensor(w) : autograd::SavedTensor();
  const Shape x_shape = x.shape();
  return autograd::record("LinearBackward", {x, w, bias}, out,
                          [sx, sw, x_shape, rows, in, out_features](const Grads& g, const Needs& needs) {
                            Grads r(3);
                            const Tensor g2 = g[0].reshape({rows, out_features});
                            if (needs[0]) r[0] = mm_forward(g2, sw.get()).view(x_shape);  // (rows, in)
                            if (needs[1])
                              r[1] = mm_forward(g2.t(), sx.get().reshape({rows, in}));  // (out, in): one GEMM
                            if (needs.size() > 2 && needs[2]) {
                              // Column sums of g2 as a (1, rows) · (rows, out) GEMV: fast, and accumulates in f32
                              // for 16-bit dtypes like the other products.
                              const Tensor ones_row = ones({1, rows}, {.dtype = g2.dtype(), .device = g2.device()});
                              r[2] = mm_forward(ones_row, g2).view({out_features});
                            }
                            return r;
                          });
}

}  // namespace ember
