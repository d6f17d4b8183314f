// CUDA backend entry points used by src/ops (internal). In a build without CUDA these are
// stubs that throw DeviceError, so everything links and CUDA tensors fail with a clear message.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"

namespace ember::cuda_backend {

/// True when the build has CUDA and a device is present.
EMBER_API bool available();
EMBER_API int device_count();
/// Copies between any two devices (at least one of them CUDA), same dtype, both contiguous.
EMBER_API void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking);
/// A copy of CPU tensor `t` in page-locked (pinned) host memory from a caching allocator, so that
/// a non-blocking copy to a device reads it directly (no staging) while the host goes on; `t`
/// itself when it is already pinned, empty, or no CUDA device is available (then a no-op).
/// DeviceError for a tensor that is not on the CPU.
EMBER_API Tensor pin_memory(const Tensor& t);
/// Whether `t` lives in memory from pin_memory.
EMBER_API bool is_pinned(const Tensor& t);
/// dst[i] = convert(src[i]) on one CUDA device, any two dtypes; src broadcasts to dst.
EMBER_API void copy(const Tensor& dst, const Tensor& src);
EMBER_API void fill(const Tensor& dst, const Scalar& value);

// The ops below mirror the CPU backend's entry points (same meaning, same preconditions: the
// op layer has validated and broadcast-checked the operands); all tensors on one CUDA device,
// except that a one-element CPU tensor is accepted as an input (a wrapped scalar). Floating
// dtypes only (f32, f64, f16, bf16); others throw NotImplemented. Kernels run on the current
// stream; nothing synchronises the host.

/// out = op(a, b); a and b broadcast to out's shape (see cpu::BinaryOp). Integer and bool inputs
/// are supported by the arithmetic (not div), comparison and logical ops (logical ops: bool inputs).
EMBER_API void binary(cpu::BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
/// out = op(x); x broadcasts to out's shape (see cpu::UnaryOp). logical_not/isfinite/isnan/isinf
/// take any dtype and write bool; neg, abs, sign, square and relu also take integers.
EMBER_API void unary(cpu::UnaryOp op, const Tensor& out, const Tensor& x);
/// out = cond ? a : b (cond bool; out, a and b one dtype, any; all broadcast to out).
EMBER_API void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
/// out[o, i] = reduce_k in[o, k, i] over a contiguous block, every cpu::ReduceKind (p: the norm
/// order of kNormP). Integer and bool inputs: kSum/kProd into int64, kMax/kMin (as the CPU).
/// Floating sum/mean/max/min accumulate in f32 (f64 for f64); prod and the norms in double.
EMBER_API void reduce(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, cpu::ReduceKind kind,
                      double p = 2.0);
/// Softmax / log-softmax along the middle axis of a contiguous block.
EMBER_API void softmax(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, bool log);
/// The gradient of softmax / log-softmax (see cpu::softmax_backward).
EMBER_API void softmax_backward(const Tensor& gx, const Tensor& gy, const Tensor& y, const cpu::ReduceGeom& g,
                                bool log);
/// c[i] = alpha * a[i] · b[i] + beta * c[i] through cuBLASLt (see cpu::gemm for the layout
/// rules; an operand that is neither row- nor column-major is copied first). f32 uses TF32
/// when cuda::allow_tf32(); f16/bf16 accumulate in f32.
EMBER_API void gemm(const Tensor& c, const Tensor& a, const Tensor& b, double alpha = 1.0, double beta = 0.0);
/// Linear-layer epilogues (one cuBLASLt call each; f32 (TF32 per cuda::allow_tf32()), f16,
/// bf16; 2-d operands, x (m, k), w (n, k) in any row/column-major layout, out (m, n) and
/// bias (n) contiguous, bias 16-byte aligned). Each returns false without writing anything when
/// it cannot apply (dtype, layout, alignment, or cuBLASLt has no algorithm): the caller
/// composes the result from other ops.
/// out = x · wᵀ + bias (BIAS epilogue).
EMBER_API bool linear_bias(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias);
/// out = gelu_tanh(x · wᵀ + bias), the GELU input x · wᵀ + bias stored to `pre` (GELU_AUX_BIAS):
/// pre is (m, >= n) with unit column stride and a row stride that is a multiple of 8 and >= n
/// (cuBLASLt's rule for the aux leading dimension), 16-byte aligned.
EMBER_API bool linear_gelu(const Tensor& out, const Tensor& pre, const Tensor& x, const Tensor& w,
                           const Tensor& bias);
/// grad_pre (m, n) = grad_out ⊙ gelu_tanh'(pre) and grad_bias (n) = its column sums, in one
/// call (DGELU_BGRAD epilogue over grad_out times a cached identity, exact: no TF32); pre as
/// written by linear_gelu. The identity product costs 2·n flops per element, so it is used up
/// to n = 1024 (f32) or 8192 (f16/bf16, tensor cores); wider returns false.
EMBER_API bool gelu_backward_bgrad(const Tensor& grad_pre, const Tensor& grad_bias, const Tensor& grad_out,
                                   const Tensor& pre);

/// Fused cross-entropy terms per row of contiguous f32/f64 (m, c) logits (see
/// cpu::cross_entropy_forward); target is contiguous int64 on the device; weight may be
/// undefined. A target outside [0, c) (other than ignore_index) gives NaN terms: checking it on
/// the host would wait for the device.
EMBER_API void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                     int64_t ignore_index, const Tensor& lse, const Tensor& nll, const Tensor& smooth,
                                     const Tensor& wt);
/// grad (m, c) = row_scale[i] · d(loss_i)/d(x_i) (see cpu::cross_entropy_backward).
EMBER_API void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                      int64_t ignore_index, double label_smoothing, const Tensor& lse,
                                      const Tensor& row_scale, const Tensor& grad);

/// One fused Adam/AdamW update of contiguous f32/f64 p, m, v with gradient g (same dtype and
/// device); bias corrections computed by the caller (see src/optim/adam.cpp).
EMBER_API void adam_step(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, double lr, double beta1,
                         double beta2, double eps, double weight_decay, double bias_correction2_sqrt, double step_size,
                         bool decoupled);
/// Adam/AdamW guarded by a non-finite flag (optim::StepGuard), without host synchronisation:
/// `skip` is a 0-d bool and `step` a 0-d f64 on p's device. The kernels compute the bias
/// corrections from step + 1, leave p, m, v untouched when *skip, and increment step only when
/// !*skip.
EMBER_API void adam_step_guarded(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v,
                                 const Tensor& step, const Tensor& skip, double lr, double beta1, double beta2,
                                 double eps, double weight_decay, bool decoupled);
/// One fused SGD update (buf undefined when momentum is 0; first: buf starts as the gradient).
/// `skip` (optional, 0-d bool on p's device): the kernel leaves p and buf untouched when *skip.
EMBER_API void sgd_step(const Tensor& p, const Tensor& g, const Tensor& buf, double lr, double momentum,
                        double dampening, double weight_decay, bool nesterov, bool first,
                        const Tensor& skip = Tensor());

// ---- Multi-tensor optimizer updates and gradient clipping (kernels/optim.cu; used by
// src/optim/{sgd,adam,clip}.cpp). One kernel launch covers a whole list (up to 48 tensors per
// launch; longer lists take several): the list's pointers, sizes and per-tensor scalars travel
// as a kernel parameter, so there is no metadata copy and no host synchronisation. Per-element
// arithmetic is exactly that of adam_step / sgd_step (bit-identical results). All tensors
// contiguous, on one CUDA device, one dtype (f32 or f64); the lists have one entry per tensor.

/// Adam/AdamW over lists. Unguarded (skip undefined): per-tensor host corrections
/// bias_correction2_sqrt[i] and step_size[i] (steps unused). Guarded (skip a 0-d bool on the
/// device): corrections from the device step counts steps[i] (0-d f64) + 1, nothing changes when
/// *skip, and every count is incremented when !*skip (one more small launch).
EMBER_API void multi_adam_step(const std::vector<Tensor>& p, const std::vector<Tensor>& g,
                               const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                               const std::vector<double>& bias_correction2_sqrt, const std::vector<double>& step_size,
                               const std::vector<Tensor>& steps, const Tensor& skip, double lr, double beta1,
                               double beta2, double eps, double weight_decay, bool decoupled);
/// SGD over lists (bufs[i] undefined when momentum is 0; first[i]: buffer i starts as the
/// gradient); with skip (0-d bool on the device) nothing changes when *skip. started (empty, or
/// one entry per tensor, undefined where the host knows first[i]): flags from
/// sgd_started_flags(p[i]) that decide first on the device (the buffer starts as the gradient
/// while they are false) and are set by every step that is not skipped.
EMBER_API void multi_sgd_step(const std::vector<Tensor>& p, const std::vector<Tensor>& g,
                              const std::vector<Tensor>& bufs, const std::vector<bool>& first, double lr,
                              double momentum, double dampening, double weight_decay, bool nesterov,
                              const Tensor& skip = Tensor(), const std::vector<Tensor>& started = {});
/// Fresh "the momentum buffer holds a value" flags for parameter p, all false: a bool tensor on
/// p's device with one element per multi-tensor chunk of p (all equal whenever no step runs).
EMBER_API Tensor sgd_started_flags(const Tensor& p);
/// The joint norm of the gradients (2-norm, or the largest |g| when inf_norm) as a 0-d tensor
/// of their dtype on their device, from per-chunk partial sums in double reduced in a fixed
/// order (deterministic); `coef` receives clamp(max_norm / (total + 1e-6), max = 1) there too
/// (NaN stays NaN). No host synchronisation.
EMBER_API Tensor multi_grad_norm(const std::vector<Tensor>& grads, bool inf_norm, double max_norm, Tensor& coef);
/// g *= coef for every gradient (coef: 0-d of their dtype on their device, read by the kernel).
EMBER_API void multi_scale_(const std::vector<Tensor>& grads, const Tensor& coef);

// ---- Layers: pooling, batch norm, dropout (src/ops/pooling.cpp, batch_norm.cpp, random.cpp).
// Contiguous NCHW / (n, c, s) tensors on one CUDA device, outputs preallocated there; f32,
// f64, f16, bf16 with f32 accumulation (f64 for f64).

/// Geometry of 2-d pooling over `planes` = N·C planes of (h, w) into (oh, ow) (cpu::PoolGeom's fields).
struct PoolGeom {
  int64_t planes, h, w, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};
/// out = window max, indices (int64) = in-plane flat position of the first maximum (NaN wins).
EMBER_API void max_pool2d(const Tensor& out, const Tensor& indices, const Tensor& x, const PoolGeom& g);
/// gx (overwritten) = gy summed at the positions `indices` name.
EMBER_API void max_pool2d_backward(const Tensor& gx, const Tensor& gy, const Tensor& indices, const PoolGeom& g);
EMBER_API void avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g, bool count_include_pad);
EMBER_API void avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g, bool count_include_pad);
EMBER_API void adaptive_avg_pool2d(const Tensor& out, const Tensor& x, const PoolGeom& g);
EMBER_API void adaptive_avg_pool2d_backward(const Tensor& gx, const Tensor& gy, const PoolGeom& g);

/// A contiguous (n, c, s) tensor seen channel by channel. Per-channel tensors (mean, var,
/// invstd, sums) are contiguous (c) in the accumulation dtype: f64 for f64 data, else f32.
struct ChannelGeom {
  int64_t n, c, s;
};
/// Per-channel batch mean, biased variance (two passes) and invstd = 1 / sqrt(var + eps).
EMBER_API void batch_norm_moments(const Tensor& x, const ChannelGeom& g, double eps, const Tensor& mean,
                                  const Tensor& var, const Tensor& invstd);
/// invstd = 1 / sqrt(var + eps) (per-channel tensors).
EMBER_API void batch_norm_invstd(const Tensor& var, double eps, const Tensor& invstd);
/// out = (x − mean)·invstd·weight + bias (weight, bias: x's dtype, may be undefined).
EMBER_API void batch_norm_apply(const Tensor& out, const Tensor& x, const ChannelGeom& g, const Tensor& mean,
                                const Tensor& invstd, const Tensor& weight, const Tensor& bias);
/// sum_gy = Σ gy, sum_gy_xmu = Σ gy·(x − mean), per channel.
EMBER_API void batch_norm_grad_sums(const Tensor& gy, const Tensor& x, const ChannelGeom& g, const Tensor& mean,
                                    const Tensor& sum_gy, const Tensor& sum_gy_xmu);
/// The input gradient (see cpu batch_norm's backward); with !training mean and the sums may be
/// undefined.
EMBER_API void batch_norm_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& x, const ChannelGeom& g,
                                         const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                                         const Tensor& sum_gy, const Tensor& sum_gy_xmu, bool training);

/// out = x·mask and mask = (kept ? 1/(1−p) : 0) in x's dtype, the mask drawn from (seed,
/// offset) exactly as the CPU dropout draws it (one Philox word per element); 0 <= p < 1.
EMBER_API void dropout(const Tensor& out, const Tensor& mask, const Tensor& x, double p, GeneratorState state);

// ---- More reductions and clamp (kernels/reduce_ext.cu, kernels/elementwise_int.cu); the
// meaning and preconditions of the cpu:: functions of the same names, contiguous blocks.

/// Max/min along the middle axis with the first index of the extreme (NaN wins); values may be
/// undefined; indices int64. Any dtype.
EMBER_API void reduce_arg(const Tensor& values, const Tensor& indices, const Tensor& in, const cpu::ReduceGeom& g,
                          bool is_max);
/// Variance (two passes in double) / standard deviation along the middle axis; floating dtypes.
EMBER_API void var(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, int64_t correction,
                   bool take_sqrt = false);
/// gx[o, indices[o, i], i] = gy[o, i] into a zero-filled contiguous gx (max/min backward).
EMBER_API void scatter_reduced(const Tensor& gx, const Tensor& gy, const Tensor& indices, const cpu::ReduceGeom& g);
/// out = min(max(x, lo), hi), absent bounds not applied; out and x one numeric dtype (not bool).
EMBER_API void clamp(const Tensor& out, const Tensor& x, const std::optional<Scalar>& lo,
                     const std::optional<Scalar>& hi);

// ---- Convolution through cuDNN 9's graph API (src/cuda/conv.cpp; src/ops/conv.cpp).
// Contiguous NCHW tensors on one CUDA device, one dtype (f32, f64, f16, bf16; 16-bit data
// accumulate in f32; f32 uses TF32 only when cuda::allow_tf32()); outputs preallocated there and
// overwritten. An empty batch is left to the caller. Plans are cached per device.

/// Geometry of one 2-d convolution (cpu::ConvGeom's fields): input (n, c, h, w), weight
/// (o, c / groups, kh, kw), output (n, o, oh, ow).
struct ConvGeom {
  int64_t n, c, h, w;
  int64_t o, kh, kw;
  int64_t oh, ow;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t groups;
};
/// out = conv(x, w) (no bias: the op layer adds it).
EMBER_API void conv2d_forward(const Tensor& out, const Tensor& x, const Tensor& w, const ConvGeom& g);
/// gx = the input gradient given the output gradient gy.
EMBER_API void conv2d_backward_input(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeom& g);
/// gw = the weight gradient given gy and the saved input x.
EMBER_API void conv2d_backward_weight(const Tensor& gw, const Tensor& gy, const Tensor& x, const ConvGeom& g);
/// Execution-plan cache counters over all devices since the process started (hits, misses)
/// and the plans held now (entries).
struct ConvPlanCacheStats {
  int64_t hits = 0, misses = 0, entries = 0;
};
EMBER_API ConvPlanCacheStats conv_plan_cache_stats();
/// Drops every cached convolution plan (the counters keep counting).
EMBER_API void clear_conv_plan_cache();
/// True when a CUDA device is present and cuDNN 9 could be loaded; otherwise false with the
/// reason in `why` (when given).
EMBER_API bool cudnn_available(std::string* why = nullptr);

// ---- Indexing, sorting, sampling, LayerNorm (src/cuda/indexing.cpp; kernels/indexing.cu,
// sort.cu, layer_norm.cu). The meaning of the cpu:: functions of the same names; all tensors
// on one CUDA device; index tensors int64 on that device, any strides; data tensors any
// strides unless said otherwise. Out-of-range indices on the device are not checked on the
// host (that would wait for the device): the kernel skips them (reads give 0, adds add
// nothing) and records the first one; the next CUDA indexing op on that device, or
// check_index_errors, throws IndexError for it. src/ops checks CPU index tensors on the host.

/// Throws IndexError for an out-of-range index a kernel on `device` has recorded (and clears
/// the record); with `synchronize`, waits for the device first so every launched kernel counts.
EMBER_API void check_index_errors(int device, bool synchronize = true);
/// out = x with dim replaced by the 1-d index (out.size(dim) == index.numel()).
EMBER_API void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out (n, cols) = weight.index_select(0, indices) for 1-d indices (errors name embedding).
EMBER_API void embedding(const Tensor& out, const Tensor& weight, const Tensor& indices);
/// out.select(dim, index[i]) += src.select(dim, i); duplicates accumulate (atomics: the order
/// of the additions varies; f16/bf16 accumulate in an f32 copy rounded once, u8/bool in int64).
EMBER_API void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
/// out[p] = x[p with p[dim] = index[p]] over index's shape.
EMBER_API void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out[p with p[dim] = index[p]] += src[p] over index's shape (accumulation as index_add).
EMBER_API void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
/// grad_weight (rows, cols; contiguous, floating) += the rows of grad (n, cols) at indices (n):
/// deterministic (indices sorted stably, each row summed in position order, no atomics).
EMBER_API void embedding_backward(const Tensor& grad_weight, const Tensor& indices, const Tensor& grad);
/// Stable sort of each row (last dim) of contiguous x into contiguous values (x's dtype) and
/// int64 indices; NaN above every number, -0 == +0, ties in position order (cpu::sort_rows).
/// Any dtype; fewer than 2^31 elements.
EMBER_API void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, bool descending);
/// Samples (rows, num_samples) int64 from 2-d probabilities with the CPU's draws from `gen`
/// (same generator state: same samples, up to the last-bit rounding of log on the device for
/// sampling without replacement). Invalid rows throw ValueError as on the CPU; checking them
/// copies one status per row back (a synchronisation).
EMBER_API Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen);
/// Fused LayerNorm over contiguous rows of x (rows = mean.numel(), row length x.numel() / rows):
/// y = (x − mean)·rstd·weight + bias; mean and rstd (f32, f64 for f64 data) saved per row;
/// weight and bias (row length, x's dtype, contiguous) may be undefined.
EMBER_API void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                                  const Tensor& weight, const Tensor& bias, double eps);
/// Gradients of layer_norm_forward given grad (contiguous, x's dtype): dx, dw, db (each may be
/// undefined: not computed). The parameter gradients reduce per-chunk partial sums in a fixed
/// order (deterministic).
EMBER_API void layer_norm_backward(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& grad,
                                   const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd);

// ---- cumsum, logsumexp (src/cuda/scan.cpp; kernels/scan.cu, kernels/logsumexp.cu) and random
// fills (src/cuda/random.cpp; kernels/random.cu). Contiguous tensors on one CUDA device.

/// Inclusive prefix sum along the middle axis (suffix sum when reverse), as cpu::cumsum: out has
/// in's dtype for floating inputs (double accumulation), int64 for integers and bool.
EMBER_API void cumsum(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, bool reverse = false);
/// log(sum(exp(x))) along the middle axis, as cpu::logsumexp (floating dtypes; exp in f32, f64
/// for f64, summed in double).
EMBER_API void logsumexp(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g);

/// What random_fill draws: uniform on [a, b), normal with mean a and standard deviation b,
/// integers uniform on [low, high), or 1 with probability a (else 0).
enum class RandomDist { uniform, normal, randint, bernoulli };
struct RandomSpec {
  RandomDist dist = RandomDist::uniform;
  double a = 0, b = 0;
  int64_t low = 0, high = 0;
};
/// Fills contiguous CUDA tensor `out` as src/ops/random.cpp fills a contiguous CPU tensor of the
/// same dtype: the same counters reserved from `gen` (nothing for an empty tensor), the same
/// counter -> element mapping and conversions, so uniform, randint and bernoulli are bit-identical
/// to the CPU's and normal agrees to a few ulps (the device's log and cos). Validated by the
/// caller (src/ops/random.cpp); a dtype the distribution does not support is a DTypeError. No host
/// synchronisation.
EMBER_API void random_fill(const Tensor& out, const RandomSpec& spec, Generator& gen);

}  // namespace ember::cuda_backend
