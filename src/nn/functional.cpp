// nn::functional: thin wrappers over ops, losses with PyTorch's reduction rules, layer_norm.
#include "ember/nn/functional.hpp"

#include "ember/amp/autocast.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cuda.hpp"

#include "ember/ops/indexing.hpp"
#include "ember/ops/ops.hpp"
#include "ember/ops/loss.hpp"

namespace ember::nn::functional {

Tensor relu(const Tensor& x) { return ember::relu(x); }
Tensor gelu(const Tensor& x, const std::string& approximate) { return ember::gelu(x, approximate); }
Tensor silu(const Tensor& x) { return ember::silu(x); }
Tensor tanh(const Tensor& x) { return ember::tanh(x); }
Tensor sigmoid(const Tensor& x) { return ember::sigmoid(x); }
Tensor softmax(const Tensor& x, int64_t dim) { return ember::softmax(x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return ember::log_softmax(x, dim); }
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) { return ember::linear(x, w, b); }
namespace {
/// d gelu_tanh(p) / dp with ember ops (the fallback of the fused backward), in f32 for 16-bit p.
Tensor gelu_tanh_grad(const Tensor& pre) {
  const Tensor p = pre.dtype() == kFloat64 ? pre : pre.to(kFloat32);
  const double c = 0.7978845608028654, a = 0.044715;  // sqrt(2 / pi)
  const Tensor p2 = p * p;
  const Tensor t = ember::tanh((p + p * p2 * a) * c);
  return (t + 1) * 0.5 + p * (1 - t * t) * ((p2 * (3 * a) + 1) * (0.5 * c));
}

/// The fused CUDA linear + tanh GELU (see functional.hpp); an undefined tensor when it does not
/// apply (the caller composes).
Tensor fused_linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  const DType dt = x.dtype();
  if (!x.is_cuda() || !(dt == kFloat32 || dt == kFloat16 || dt == kBFloat16)) return Tensor();
  if (!w.defined() || !b.defined() || w.dtype() != dt || b.dtype() != dt || w.device() != x.device() ||
      b.device() != x.device())
    return Tensor();
  if (x.dim() < 1 || w.dim() != 2 || b.dim() != 1 || x.size(-1) != w.size(1) || b.size(0) != w.size(0))
    return Tensor();
  const int64_t in = w.size(1), n = w.size(0);
  const int64_t rows = in == 0 ? 0 : x.numel() / in;
  if (rows == 0 || in == 0 || n == 0) return Tensor();
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(n);
  const TensorOptions o{.dtype = dt, .device = x.device()};
  Tensor x2, y, pre;
  {
    NoGradGuard ng;
    x2 = x.detach().reshape({rows, in});
    y = empty({rows, n}, o);
    // The GELU input with its row stride padded to a multiple of 8 (cuBLASLt's aux rule).
    const int64_t ld = (n + 7) / 8 * 8;
    pre = empty({rows, ld}, o).narrow(1, 0, n);
    if (!cuda_backend::linear_gelu(y, pre, x2, w.detach(), b.detach().contiguous())) return Tensor();
  }
  Tensor out = y.view(out_shape);
  if (!autograd::needs_grad({x, w, b})) return out;
  autograd::SavedTensor sx = w.requires_grad() ? autograd::SavedTensor(x2) : autograd::SavedTensor();
  autograd::SavedTensor sw = x.requires_grad() ? autograd::SavedTensor(w) : autograd::SavedTensor();
  const Shape x_shape = x.shape();
  return autograd::record(
      "LinearGeluBackward", {x, w, b}, out,
      [sx, sw, pre, x_shape, rows, n, in](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
        std::vector<Tensor> r(3);
        Tensor g2 = g[0].reshape({rows, n});
        if (g2.dtype() != pre.dtype()) g2 = g2.to(pre.dtype());
        const TensorOptions o{.dtype = pre.dtype(), .device = pre.device()};
        Tensor gpre = empty({rows, n}, o), gb = empty({n}, o);
        if (!cuda_backend::gelu_backward_bgrad(gpre, gb, g2, pre)) {
          const Tensor d = gelu_tanh_grad(pre);
          gpre = (g2.to(d.dtype()) * d).to(pre.dtype());
          gb = gpre.sum({0});
        }
        if (needs[0]) r[0] = ember::mm(gpre, sw.get()).view(x_shape);  // (rows, in)
        if (needs[1]) r[1] = ember::mm(gpre.t(), sx.get());           // (n, in)
        if (needs.size() > 2 && needs[2]) r[2] = gb;
        (void)in;
        return r;
      });
}
}  // namespace

Tensor linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (x.defined() && x.is_cuda()) {
    // Autocast casts the operands as ember::linear would, before the fused path looks at them.
    const bool ac = amp::is_autocast_enabled(x.device().type);
    const Tensor cx = ac ? amp::autocast_low(x) : x, cw = ac ? amp::autocast_low(w) : w,
                 cb = ac ? amp::autocast_low(b) : b;
    Tensor y = fused_linear_gelu(cx, cw, cb);
    if (y.defined()) return y;
  }
  return ember::gelu(ember::linear(x, w, b), "tanh");
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) { return ember::dropout(x, p, training, gen); }
Tensor embedding(const Tensor& indices, const Tensor& weight) { return ember::embedding(weight, indices); }

namespace {
/// The fused CUDA LayerNorm (kernels/layer_norm.cu) with an autograd node that keeps the
/// per-row mean and rstd. Used for a floating CUDA x whose weight and bias (when given) have
/// its dtype and device; the CPU keeps the composed ops below.
bool fused_layer_norm_applies(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.is_cuda() || !is_floating(x.dtype())) return false;
  for (const Tensor* p : {&weight, &bias})
    if (p->defined() && (p->dtype() != x.dtype() || p->device() != x.device())) return false;
  return true;
}

Tensor fused_layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                        double eps) {
  int64_t n = 1;
  for (int64_t s : normalized_shape) n *= s;
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  const DType acc = x.dtype() == kFloat64 ? kFloat64 : kFloat32;
  const TensorOptions opts{.dtype = x.dtype(), .device = x.device()};
  Tensor xc = x.detach().contiguous();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty(x.shape(), opts);
  Tensor mean = empty({rows}, {.dtype = acc, .device = x.device()});
  Tensor rstd = empty({rows}, {.dtype = acc, .device = x.device()});
  cuda_backend::layer_norm_forward(y, mean, rstd, xc, w, b, eps);
  const Shape x_shape = x.shape(), w_shape = normalized_shape;
  return autograd::record(
      "LayerNormBackward", {x, weight, bias}, y,
      [sx = autograd::SavedTensor(xc), sw = autograd::SavedTensor(w), mean, rstd, x_shape, w_shape,
       has_w = w.defined()](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
        const Tensor xs = sx.get();
        const Tensor ws = has_w ? sw.get() : Tensor();
        const TensorOptions o{.dtype = xs.dtype(), .device = xs.device()};
        Tensor dx = needs[0] ? empty(x_shape, o) : Tensor();
        Tensor dw = needs.size() > 1 && needs[1] ? empty(w_shape, o) : Tensor();
        Tensor db = needs.size() > 2 && needs[2] ? empty(w_shape, o) : Tensor();
        Tensor gy = g[0].contiguous();
        if (gy.dtype() != xs.dtype()) gy = gy.to(xs.dtype());
        cuda_backend::layer_norm_backward(dx, dw, db, gy, xs, ws, mean, rstd);
        return std::vector<Tensor>{dx, dw, db};
      });
}
}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool ok = k >= 1 && x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == normalized_shape[i];
  EMBER_CHECK(ok, ShapeError, "layer_norm: input of shape ", shape_str(x.shape()),
              " does not end with normalized_shape ", shape_str(normalized_shape));
  if (weight.defined())
    EMBER_CHECK(weight.shape() == normalized_shape, ShapeError, "layer_norm: weight has shape ",
                shape_str(weight.shape()), ", expected ", shape_str(normalized_shape));
  if (bias.defined())
    EMBER_CHECK(bias.shape() == normalized_shape, ShapeError, "layer_norm: bias has shape ", shape_str(bias.shape()),
                ", expected ", shape_str(normalized_shape));
  if (fused_layer_norm_applies(x, weight, bias)) return fused_layer_norm(x, normalized_shape, weight, bias, eps);
  Shape dims;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  Tensor mu = x.mean(dims, true);
  Tensor xc = x - mu;
  Tensor var = (xc * xc).mean(dims, true);
  Tensor y = xc * ember::rsqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

namespace {
LossReduction to_reduction(Reduction r) {
  return r == Reduction::none ? LossReduction::none : r == Reduction::sum ? LossReduction::sum : LossReduction::mean;
}
Tensor reduce(const Tensor& loss, Reduction r) {
  if (r == Reduction::none) return loss;
  return r == Reduction::sum ? loss.sum() : loss.mean();
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& o) {
  EMBER_CHECK(logits.dim() >= 1, ShapeError, "cross_entropy: logits must have a class dimension, got shape ",
              shape_str(logits.shape()));
  if (logits.dim() == 1) {
    EMBER_CHECK(target.dim() == 0, ShapeError, "cross_entropy: 1-d logits need a 0-d target, got ",
                shape_str(target.shape()));
    return cross_entropy(logits.unsqueeze(0), target.unsqueeze(0), o).squeeze(0);
  }
  if (logits.dim() == 2) {
    return cross_entropy_2d(logits, target, o.weight, o.ignore_index, o.label_smoothing, to_reduction(o.reduction));
  }
  // (N, C, d1, ...) → (N·d1·..., C) with the class dim last.
  const int64_t c = logits.size(1);
  Shape perm{0};
  for (int64_t i = 2; i < logits.dim(); ++i) perm.push_back(i);
  perm.push_back(1);
  Shape expect_t{logits.size(0)};
  for (int64_t i = 2; i < logits.dim(); ++i) expect_t.push_back(logits.size(i));
  EMBER_CHECK(target.shape() == expect_t, ShapeError, "cross_entropy: expected target of shape ", shape_str(expect_t),
              " for logits ", shape_str(logits.shape()), ", got ", shape_str(target.shape()));
  Tensor flat = logits.permute(perm).reshape({-1, c});
  Tensor loss = cross_entropy_2d(flat, target.reshape({-1}), o.weight, o.ignore_index, o.label_smoothing,
                                 to_reduction(o.reduction));
  return o.reduction == Reduction::none ? loss.reshape(expect_t) : loss;
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& o) {
  EMBER_CHECK(log_probs.dim() == 2, ShapeError, "nll_loss: expected log-probabilities of shape (N, C), got ",
              shape_str(log_probs.shape()));
  EMBER_CHECK(target.dim() == 1 && target.size(0) == log_probs.size(0), ShapeError, "nll_loss: expected target of shape (",
              log_probs.size(0), ",), got ", shape_str(target.shape()));
  EMBER_CHECK(target.dtype() == kInt64 || target.dtype() == kInt32, DTypeError,
              "nll_loss: target must hold class indices (int64 or int32), got ", dtype_name(target.dtype()));
  const int64_t c = log_probs.size(1);
  Tensor t = target.to(kInt64);
  Tensor valid = ne(t, o.ignore_index);
  for (int64_t v : masked_fill(t, logical_not(valid), 0).to_vector<int64_t>())
    EMBER_CHECK(v >= 0 && v < c, IndexError, "nll_loss: target ", v, " is out of bounds for ", c, " classes");
  Tensor safe = masked_fill(t, logical_not(valid), 0);
  Tensor picked = gather(log_probs, 1, safe.unsqueeze(1)).squeeze(1);
  Tensor w = valid.to(log_probs.dtype());
  if (o.weight.defined()) w = w * index_select(o.weight, 0, safe);
  Tensor loss = -(picked * w);
  if (o.reduction == Reduction::none) return loss;
  if (o.reduction == Reduction::sum) return loss.sum();
  return loss.sum() / w.sum();
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  Tensor d = input - target;
  return reduce(d * d, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& y, Reduction reduction, const Tensor& pos_weight) {
  EMBER_CHECK(x.shape() == y.shape(), ShapeError, "binary_cross_entropy_with_logits: target shape ",
              shape_str(y.shape()), " must equal input shape ", shape_str(x.shape()));
  // log(1 + exp(-|x|)) + max(-x, 0) is log(1 + exp(-x)) without overflow.
  Tensor softplus_neg = ember::log1p(ember::exp(ember::abs(x).neg())) + ember::relu(x.neg());
  Tensor loss;
  if (pos_weight.defined()) {
    Tensor log_weight = (pos_weight - 1) * y + 1;
    loss = (1 - y) * x + log_weight * softplus_neg;
  } else {
    loss = (1 - y) * x + softplus_neg;
  }
  return reduce(loss, reduction);
}

}  // namespace ember::nn::functional
