// Host launchers for the kernels in kernels/*.cu. They take raw pointers and geometry, never
// validate user input (src/ops and src/cuda/runtime.cpp do), launch on the given stream and
// return the launch status for the caller to check with EMBER_CUDA_CHECK. Kept free of Ember
// headers so that nvcc compiles the .cu files quickly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda_backend::kernels {

/// Most dimensions a strided kernel accepts (tensors with more are rejected by the caller).
inline constexpr int kMaxDims = 12;

/// Sizes and element strides of an N-d iteration; src strides may be 0 (broadcast).
struct StridedGeometry {
  int32_t ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t dst_strides[kMaxDims] = {};
  int64_t src_strides[kMaxDims] = {};
};

/// Writes `pattern` (the bit pattern of one element, element_size 1, 2, 4 or 8 bytes) to every
/// element of dst (geometry: sizes and dst_strides).
cudaError_t fill(void* dst, int element_size, uint64_t pattern, int64_t numel, const StridedGeometry& g,
                 cudaStream_t stream);

/// dst[i] = src[i] for elements of element_size bytes (same dtype), any strides.
cudaError_t strided_copy(void* dst, const void* src, int element_size, int64_t numel, const StridedGeometry& g,
                         cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ elementwise (kernels/elementwise.cu)
namespace ember::cuda_backend::kernels {

/// Element types the arithmetic kernels accept (same order as ember::DType's floating types;
/// the host maps). 16-bit floats are computed in f32, f64 in f64.
enum class FloatType : int32_t { f32, f64, f16, bf16 };

/// Binary op codes (the host maps cpu::BinaryOp onto these).
enum class BinOp : int32_t {
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  pow,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,  // write bool (uint8 0/1)
  threshold_backward,
  tanh_backward,
  sigmoid_backward,
  gelu_backward,
  gelu_tanh_backward,
  silu_backward,
  logical_and,  // integer/bool kernels only (kernels/elementwise_int.cu); write bool
  logical_or,
};
inline bool is_comparison(BinOp op) { return op >= BinOp::eq && op <= BinOp::ge; }

/// Unary op codes.
enum class UnOp : int32_t {
  neg,
  abs,
  sign,
  exp,
  log,
  log1p,
  sqrt,
  rsqrt,
  square,
  reciprocal,
  sin,
  cos,
  erf,
  tanh,
  sigmoid,
  relu,
  gelu,
  gelu_tanh,
  silu
};

/// Up to three operands (out, a, b) iterated over one shape: element strides per operand, 0 where
/// an input broadcasts. The host coalesces dimensions first, so typical views need 1-3 dims.
struct OffsetCalc {
  int32_t ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
};

/// How the operands are laid out: kContiguous means every operand is contiguous over numel
/// elements, except that an input with `scalar_a`/`scalar_b` is one element broadcast to all.
struct ElementwiseArgs {
  void* out = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  int64_t numel = 0;
  bool contiguous = false;
  bool scalar_a = false;
  bool scalar_b = false;
  OffsetCalc calc;  // used when !contiguous
};

/// out = op(a, b) (alpha scales b for add/sub). Comparisons write uint8 0/1.
cudaError_t binary(BinOp op, FloatType t, const ElementwiseArgs& args, double alpha, cudaStream_t stream);
/// out = op(a) (args.b unused).
cudaError_t unary(UnOp op, FloatType t, const ElementwiseArgs& args, cudaStream_t stream);

// ------------------------------------------------------------------ reductions, softmax (kernels/reduce.cu)
enum class RedOp : int32_t { sum, mean, max, min };

/// Chunks (1 to 1024) a long reduction or scan over the middle axis of an (outer, size, inner)
/// block (outer * inner > 0) is cut into (`splits` of reduce, reduce_ext, reduce_arg, variance,
/// cumsum, logsumexp), so that enough blocks (rows, inner == 1: ~1024) or threads (columns:
/// ~128K) run; chunks of at least 4096 (rows) or 64 (columns) elements. Rows of at most 64
/// elements are one chunk in either layout, so the kernels' own row/column thresholds need not
/// match the one here.
inline int64_t chunk_splits(int64_t outer, int64_t size, int64_t inner) {
  const bool rows = inner == 1 && size > 64;
  const int64_t want = rows ? (1024 + outer - 1) / outer : (131072 + outer * inner - 1) / (outer * inner);
  const int64_t most = rows ? (size + 4095) / 4096 : (size + 63) / 64;
  const int64_t s = want < most ? want : most;
  return s < 1 ? 1 : (s > 1024 ? 1024 : s);
}

/// Reduces the contiguous (outer, size, inner) block `in` over its middle axis into the contiguous
/// (outer, inner) `out`, accumulating in f32 (f64 for f64). `splits` > 1 cuts the middle axis into
/// that many chunks whose partial results go to `workspace` (outer * splits * inner accumulators
/// of workspace_elem_size bytes) and are combined by a second kernel.
cudaError_t reduce(RedOp op, FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                   int64_t splits, void* workspace, cudaStream_t stream);
/// Bytes of one accumulator for dtype t (the workspace holds outer * splits * inner of them).
int accumulator_size(FloatType t);

/// Softmax or log-softmax over the middle axis of a contiguous (outer, size, inner) block.
cudaError_t softmax(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner, bool log,
                    cudaStream_t stream);
/// softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy); all contiguous.
cudaError_t softmax_backward(FloatType t, void* gx, const void* gy, const void* y, int64_t outer, int64_t size,
                             int64_t inner, bool log, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ dtype conversion (kernels/convert.cu)
namespace ember::cuda_backend::kernels {

/// Element type codes in ember::DType's order: f32, f64, f16, bf16, i32, i64, u8, bool.
enum class ElemType : int32_t { f32, f64, f16, bf16, i32, i64, u8, boolean };

/// dst[i] = convert(src[i]) between any two element types (bool: x != 0, and 0/1 back;
/// float to integer truncates as C++ does), any strides (geometry as for strided_copy).
cudaError_t convert(void* dst, ElemType dst_type, const void* src, ElemType src_type, int64_t numel,
                    const StridedGeometry& g, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ cross entropy (kernels/loss.cu)
namespace ember::cuda_backend::kernels {

/// Per row i of contiguous (m, c) logits x (f32 or f64: `is_f64`): lse[i] = logsumexp(x_i),
/// nll[i] = w_t (lse − x_t), smooth[i] = Σ_j w_j (lse − x_j), wt[i] = w_t (all 0 for rows with
/// target == ignore_index; all NaN for a target outside [0, c), which the host cannot check
/// without waiting for the device). weight may be null (all ones).
cudaError_t cross_entropy_forward(bool is_f64, const void* x, const int64_t* target, const void* weight,
                                  int64_t ignore_index, int64_t m, int64_t c, void* lse, void* nll, void* smooth,
                                  void* wt, cudaStream_t stream);
/// grad (m, c) = scale[i] · d(loss_i)/d(x_i) with loss_i = (1 − e)·nll_i + (e / c)·smooth_i.
cudaError_t cross_entropy_backward(bool is_f64, const void* x, const int64_t* target, const void* weight,
                                   int64_t ignore_index, double label_smoothing, int64_t m, int64_t c, const void* lse,
                                   const void* scale, void* grad, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ optimizer updates (kernels/optim.cu)
namespace ember::cuda_backend::kernels {

/// Hyper-parameters of one Adam/AdamW step (host-computed bias corrections).
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay, bias_correction2_sqrt, step_size;
  bool decoupled;
};
/// One fused Adam/AdamW update over n contiguous elements (f32 or f64), PyTorch's order.
cudaError_t adam_step(bool is_f64, void* p, const void* g, void* m, void* v, int64_t n, const AdamParams& hp,
                      cudaStream_t stream);

/// Adam/AdamW guarded by a device flag: bias corrections computed on the device from *step + 1
/// (hp.bias_correction2_sqrt and hp.step_size are ignored); p, m, v untouched when *skip; a
/// second launch increments *step when !*skip (after the update, same stream).
cudaError_t adam_step_guarded(bool is_f64, void* p, const void* g, void* m, void* v, int64_t n, double* step,
                              const bool* skip, const AdamParams& hp, cudaStream_t stream);

struct SgdParams {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first;  // first: the momentum buffer is initialised with the gradient
};
/// One fused SGD update (buf may be null when momentum is 0; skip may be null, else the kernel
/// does nothing when *skip).
cudaError_t sgd_step(bool is_f64, void* p, const void* g, void* buf, int64_t n, const bool* skip,
                     const SgdParams& hp, cudaStream_t stream);

// ---- Multi-tensor updates (kernels/multi_tensor.cu): one launch covers a list of contiguous
// tensors (the usual multi_tensor_apply pattern). The list travels as a kernel parameter (no
// copy, no host sync); each block handles one chunk of kMultiTensorChunk elements of one
// tensor, found through the prefix sums chunk_start. Longer lists are cut into several
// launches by the caller.
inline constexpr int kMultiTensorMax = 48;
inline constexpr int64_t kMultiTensorChunk = 16384;

struct MultiTensorList {
  int32_t count = 0;                             // tensors in this launch
  int32_t chunk_start[kMultiTensorMax + 1] = {}; // chunk_start[count] = chunks in all
  int64_t numel[kMultiTensorMax] = {};
  void* ptr[4][kMultiTensorMax] = {};            // Adam: p, g, m, v; SGD: p, g, buf, started (null or
                                                 // not: see multi_sgd_step); clip: g
  double scalar[2][kMultiTensorMax] = {};        // Adam (host-corrected): bc2_sqrt, step_size
  double* step[kMultiTensorMax] = {};            // Adam (guarded): the device step counts
  bool flag[kMultiTensorMax] = {};               // SGD: first (the buffer starts as the gradient)
};
static_assert(sizeof(MultiTensorList) < 4000, "kernel parameters are limited to 4 KiB");

/// Adam/AdamW over every tensor of `list` (f32 or f64) with the per-tensor arithmetic of
/// adam_step: host-corrected (scalar[0] = bc2_sqrt, scalar[1] = step_size per tensor) or, with
/// `skip`, guarded (bias corrections from *step[t] + 1 on the device; then one more launch
/// increments every *step[t] when !*skip). hp's correction fields are ignored.
cudaError_t multi_adam_step(bool is_f64, const MultiTensorList& list, const bool* skip, const AdamParams& hp,
                            cudaStream_t stream);
/// SGD over every tensor of `list` with the arithmetic of sgd_step (flag[t]: first; ptr[2][t]
/// may be null when momentum is 0; hp.first is ignored); nothing happens when skip && *skip.
/// ptr[3][t], when not null, is a bool per chunk of tensor t, "the buffer holds a value": it
/// decides first on the device (first = !started[c] for chunk c, flag[t] ignored) and the block
/// of chunk c sets it once it has read it, unless the step is skipped. One flag per chunk is
/// what makes this race-free within one launch (each chunk has exactly one block).
inline int64_t multi_tensor_chunks(int64_t numel) { return (numel + kMultiTensorChunk - 1) / kMultiTensorChunk; }
cudaError_t multi_sgd_step(bool is_f64, const MultiTensorList& list, const bool* skip, const SgdParams& hp,
                           cudaStream_t stream);
/// One partial per chunk of the gradients ptr[0][t]: the sum of squares (inf_norm false) or
/// the NaN-propagating max of |g| (inf_norm true), in double, written to
/// partials[first_partial + chunk].
cudaError_t multi_norm_partials(bool is_f64, const MultiTensorList& list, bool inf_norm, double* partials,
                                int64_t first_partial, cudaStream_t stream);
/// Reduces n partials in a fixed order (deterministic) into the total norm (written to *total
/// in the gradients' dtype) and coef = clamp(max_norm / (total + 1e-6), max = 1) in that dtype
/// (NaN stays NaN), both on the device.
cudaError_t clip_finalize(bool is_f64, const double* partials, int64_t n, bool inf_norm, double max_norm,
                          void* total, void* coef, cudaStream_t stream);
/// g *= *coef for every gradient ptr[0][t] of `list` (coef: one element of the gradients' dtype).
cudaError_t multi_scale(bool is_f64, const MultiTensorList& list, const void* coef, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ pooling (kernels/pool.cu)
namespace ember::cuda_backend::kernels {

/// 2-d pooling over `planes` = N·C contiguous planes of (h, w) into (oh, ow) (see cpu::PoolGeom).
struct PoolGeometry {
  int64_t planes, h, w, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

/// out = window max, indices = in-plane position h·W + w of the first maximum (NaN wins).
cudaError_t max_pool2d(FloatType t, void* out, int64_t* indices, const void* x, const PoolGeometry& g,
                       cudaStream_t stream);
/// gx (every element written) = the sum of gy over the outputs whose index points at it.
cudaError_t max_pool2d_backward(FloatType t, void* gx, const void* gy, const int64_t* indices, const PoolGeometry& g,
                                cudaStream_t stream);
/// out = window mean (PyTorch's divisor rules; dilation unused).
cudaError_t avg_pool2d(FloatType t, void* out, const void* x, const PoolGeometry& g, bool count_include_pad,
                       cudaStream_t stream);
cudaError_t avg_pool2d_backward(FloatType t, void* gx, const void* gy, const PoolGeometry& g, bool count_include_pad,
                                cudaStream_t stream);
/// Adaptive average pooling (uses planes, h, w, oh, ow).
cudaError_t adaptive_avg_pool2d(FloatType t, void* out, const void* x, const PoolGeometry& g, cudaStream_t stream);
cudaError_t adaptive_avg_pool2d_backward(FloatType t, void* gx, const void* gy, const PoolGeometry& g,
                                         cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ batch norm (kernels/batch_norm.cu)
namespace ember::cuda_backend::kernels {

// Data is a contiguous (n, c, s) block of t; per-channel arrays (mean, var, invstd, sums) are
// c accumulators: float for f32/f16/bf16, double for f64. weight and bias are c elements of t
// and may be null (1 and 0).

/// Bytes of the workspace batch_norm_moments and batch_norm_grad_sums need for (n, c, s): the
/// per-chunk partial sums (each channel's reduction is split over several blocks).
int64_t batch_norm_workspace_bytes(int64_t n, int64_t c, int64_t s);
/// Per channel: mean, biased variance (two passes) and invstd = 1 / sqrt(var + eps).
cudaError_t batch_norm_moments(FloatType t, const void* x, int64_t n, int64_t c, int64_t s, double eps, void* mean,
                               void* var, void* invstd, void* workspace, cudaStream_t stream);
/// invstd[i] = 1 / sqrt(var[i] + eps) for c accumulators (double when is_f64, else float).
cudaError_t batch_norm_invstd(bool is_f64, const void* var, double eps, int64_t c, void* invstd, cudaStream_t stream);
/// out = (x − mean)·invstd·weight + bias, per channel.
cudaError_t batch_norm_apply(FloatType t, void* out, const void* x, int64_t n, int64_t c, int64_t s, const void* mean,
                             const void* invstd, const void* weight, const void* bias, cudaStream_t stream);
/// Per channel: sum_gy = Σ gy, sum_gy_xmu = Σ gy·(x − mean).
cudaError_t batch_norm_grad_sums(FloatType t, const void* gy, const void* x, int64_t n, int64_t c, int64_t s,
                                 const void* mean, void* sum_gy, void* sum_gy_xmu, void* workspace,
                                 cudaStream_t stream);
/// The input gradient: training uses the batch statistics' terms (mean, sums), evaluation
/// only weight·invstd·gy (mean and the sums may then be null).
cudaError_t batch_norm_backward_input(FloatType t, void* gx, const void* gy, const void* x, int64_t n, int64_t c,
                                      int64_t s, const void* mean, const void* invstd, const void* weight,
                                      const void* sum_gy, const void* sum_gy_xmu, bool training, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ dropout (kernels/dropout.cu)
namespace ember::cuda_backend::kernels {

/// out = x·mask, mask = 1/(1−p) where Philox::uniform(word i) >= p else 0, word i being word
/// i % 4 of Philox(seed, offset + i / 4) (the CPU's one-word-per-element layout); 0 <= p < 1.
cudaError_t dropout(FloatType t, void* out, void* mask, const void* x, int64_t n, uint64_t seed, uint64_t offset,
                    double p, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ integer and bool elementwise, predicates, clamp,
// where on any dtype (kernels/elementwise_int.cu)
namespace ember::cuda_backend::kernels {

/// out = op(a, b) for a and b of one integer or bool type t (i32, i64, u8, boolean), computed in
/// int64 and truncated to t (two's complement wrap, as the CPU's arithmetic); a bool result is
/// (value != 0), so add is "or" and mul is "and" on bool. Arithmetic ops (add, sub, mul, maximum,
/// minimum, pow) write t; comparisons and logical_and/or write bool. pow follows the CPU's
/// integer power (negative exponents give 1, -1 or 0). Other ops return cudaErrorInvalidValue.
cudaError_t binary_int(BinOp op, ElemType t, const ElementwiseArgs& args, int64_t alpha, cudaStream_t stream);
/// out = op(x) for integer or bool x of type t: neg, abs, sign, square, relu (result type t).
cudaError_t unary_int(UnOp op, ElemType t, const ElementwiseArgs& args, cudaStream_t stream);

/// Bool-valued tests of any element type t, writing bool out.
enum class PredOp : int32_t {
  logical_not,  // x == 0 (NaN is true, so its logical_not is false)
  isfinite,     // integers and bool: true
  isnan,        // integers and bool: false
  isinf,        // integers and bool: false
};
cudaError_t unary_predicate(PredOp op, ElemType t, const ElementwiseArgs& args, cudaStream_t stream);

/// out = min(max(x, lo), hi) for any numeric t (not bool); an absent bound is not applied.
/// Floating types compare in f32 (f64 for f64) with the bounds rounded to that type and keep
/// NaN; integers compare in int64 with lo_i / hi_i.
struct ClampBounds {
  bool has_lo = false, has_hi = false;
  double lo_f = 0, hi_f = 0;
  int64_t lo_i = 0, hi_i = 0;
};
cudaError_t clamp(ElemType t, const ElementwiseArgs& args, const ClampBounds& b, cudaStream_t stream);

/// out = cond ? a : b for elements of element_size bytes (1, 2, 4 or 8: any dtype; the values are
/// only copied). strides[0..2] of calc are out, a, b; cond_strides the condition's.
cudaError_t where_bytes(int element_size, void* out, const uint8_t* cond, const void* a, const void* b, int64_t numel,
                        const OffsetCalc& calc, const int64_t* cond_strides, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ more reductions (kernels/reduce_ext.cu)
namespace ember::cuda_backend::kernels {

/// Reductions of a contiguous (outer, size, inner) block `in` of element type t over its middle
/// axis into a contiguous (outer, inner) `out`. One block per output row when inner == 1, else
/// one thread per output; `splits` > 1 cuts the middle axis into that many chunks whose
/// accumulators go to `workspace` (outer * splits * inner of 8 bytes: int64 or double) and are
/// combined in order by a second kernel, as reduce(). Floating inputs accumulate in double (as
/// the CPU), integers in int64.
enum class ExtRedOp : int32_t {
  sum,       // integer/bool: int64 out
  prod,      // integer/bool: int64 out; floating: t out
  max,       // any t: t out (NaN propagates)
  min,
  norm_p,    // floating: (sum |x|^p)^(1/p)
  norm0,     // count of non-zeros
  norm1,     // sum |x|
  norm2,     // sqrt(sum x^2)
  norm_inf,  // max |x| (NaN propagates)
  norm_neg_inf,  // min |x|
};
cudaError_t reduce_ext(ExtRedOp op, ElemType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                       double p, int64_t splits, void* workspace, cudaStream_t stream);

/// Max (is_max) or min with the first index of the extreme (NaN counts as the extreme, first NaN
/// wins), any t; `values` (type t) may be null; indices int64. size > 0. `splits` > 1: chunks
/// as reduce_ext, candidates in `workspace` (arg_workspace_bytes).
cudaError_t reduce_arg(ElemType t, void* values, int64_t* indices, const void* in, int64_t outer, int64_t size,
                       int64_t inner, bool is_max, int64_t splits, void* workspace, cudaStream_t stream);
int64_t arg_workspace_bytes(int64_t outer, int64_t inner, int64_t splits);

/// Variance (two passes in double) divided by max(0, size - correction), or its square root.
/// `splits` > 1: each pass in chunks as reduce_ext, partials and means in `workspace`
/// (variance_workspace_bytes).
cudaError_t variance(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                     int64_t correction, bool take_sqrt, int64_t splits, void* workspace, cudaStream_t stream);
int64_t variance_workspace_bytes(int64_t outer, int64_t inner, int64_t splits);

/// gx[o, idx[o, i], i] = gy[o, i] for a zero-filled contiguous gx (outer, size, inner); each
/// output position receives at most one value, so no atomics are needed.
cudaError_t scatter_reduced(FloatType t, void* gx, const void* gy, const int64_t* idx, int64_t outer, int64_t size,
                            int64_t inner, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ indexing (kernels/indexing.cu)
namespace ember::cuda_backend::kernels {

/// Where kernels record the first out-of-range index they meet. It lives in host-mapped
/// (zero-copy) memory, so the host reads it without synchronising: a thread that finds a bad
/// index claims the record (atomicCAS on `claimed`), writes the fields, fences (system scope)
/// and sets `ready`. The host reads `ready` (volatile) and clears the record after reporting.
struct IndexErrorRecord {
  int32_t claimed;
  int32_t ready;
  int32_t op;   // IndexOpCode
  int32_t dim;
  int64_t index;
  int64_t size;
};
enum class IndexOpCode : int32_t { index_select, gather, scatter_add, index_add, embedding };

/// An indexed iteration over `sizes` (gather, scatter_add: the index's shape; index_select:
/// the output's; index_add: the source's). Element strides of the indexed operand `a` (read
/// by gather/index_select, added into by scatter_add/index_add: position p with p[dim]
/// replaced by the index), of the other operand `b` (written by gather, read by scatter: at
/// p) and of the index (index_select/index_add: 0 except in dim). dim_size: a's size in dim.
struct IndexGeometry {
  int32_t ndim = 0;
  int32_t dim = 0;
  int64_t dim_size = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};
  int64_t b_strides[kMaxDims] = {};
  int64_t index_strides[kMaxDims] = {};
};

/// b[p] = a[p with p[dim] = index[p]] for elements of element_size bytes (1, 2, 4, 8; any
/// dtype: values are copied). An index outside [0, dim_size) writes zero bytes and is recorded
/// in *err (op names the caller).
cudaError_t indexed_read(int element_size, const void* a, void* b, const int64_t* index, const IndexGeometry& g,
                         IndexOpCode op, IndexErrorRecord* err, cudaStream_t stream);
/// a[p with p[dim] = index[p]] += b[p] with atomics, for t in f32, f64, i32, i64 (others give
/// cudaErrorInvalidValue: the host accumulates 16-bit floats in an f32 copy). An index out of
/// range adds nothing and is recorded in *err.
cudaError_t indexed_add(ElemType t, void* a, const void* b, const int64_t* index, const IndexGeometry& g,
                        IndexOpCode op, IndexErrorRecord* err, cudaStream_t stream);

/// Deterministic embedding backward: gw (rows, cols) += Σ_j g[order[j], :] for the runs of
/// equal sorted_idx; sorted_idx/order: the n indices sorted stably with their positions (so
/// each row sums its contributions in position order, as the CPU's index_add). One block
/// column-strip per run; no atomics. gw and g: contiguous, t in f32/f64 (16-bit through f32
/// by the host). Out-of-range indices add nothing and are recorded in *err.
cudaError_t embedding_backward_sorted(FloatType t, void* gw, const void* g, const int64_t* sorted_idx,
                                      const int64_t* order, int64_t n, int64_t rows, int64_t cols,
                                      IndexErrorRecord* err, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ sorting, multinomial (kernels/sort.cu)
namespace ember::cuda_backend::kernels {

/// Sorts the `rows` contiguous rows of n elements of x (type t, any) stably: values get the
/// sorted elements (copied bit for bit through the permutation), indices (int64) their
/// positions. NaN sorts above every number (all NaNs alike) and -0 equals +0, as the CPU's
/// sort_rows; ties keep position order in both directions. rows·n < 2^31. Temporary memory
/// comes from `alloc` (bytes → device pointer kept alive by the caller until the stream has
/// run the sort).
using ScratchAlloc = void* (*)(void* ctx, size_t bytes);
cudaError_t sort_rows(ElemType t, const void* x, void* values, int64_t* indices, int64_t rows, int64_t n,
                      bool descending, ScratchAlloc alloc, void* alloc_ctx, cudaStream_t stream);

/// Multinomial sampling with the CPU's draws (src/ops/sort.cpp): w (rows, cats) f64 weights,
/// already validated (status[r] = 0) or not: the kernel validates each row first and writes
/// status[r] = 1 (non-finite or negative weight), 2 (zero total), 3 (fewer non-zero
/// categories than samples without replacement), else 0. With replacement: out (rows,
/// samples) by inverse CDF (sequential double prefix sum per row, as the CPU). Without:
/// keys (rows, cats) = log(u)/w (−inf for w = 0) for the caller to sort descending.
cudaError_t multinomial_validate(const double* w, int64_t rows, int64_t cats, int64_t samples, bool replacement,
                                 int32_t* status, cudaStream_t stream);
cudaError_t multinomial_with_replacement(const double* w, double* cdf, int64_t rows, int64_t cats, int64_t samples,
                                         uint64_t seed, uint64_t offset, int64_t* out, cudaStream_t stream);
cudaError_t multinomial_keys(const double* w, int64_t rows, int64_t cats, uint64_t seed, uint64_t offset,
                             double* keys, cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ layer norm (kernels/layer_norm.cu)
namespace ember::cuda_backend::kernels {

/// Fused LayerNorm over the last n elements of `rows` contiguous rows: mean and rstd
/// (accumulator type: float, double for f64; biased variance, two passes) saved per row,
/// y = (x − mean)·rstd·w + b (w, b: n elements of t, may be null). One block per row.
cudaError_t layer_norm_forward(FloatType t, const void* x, const void* w, const void* b, void* y, void* mean,
                               void* rstd, int64_t rows, int64_t n, double eps, cudaStream_t stream);
/// dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)), x̂ = (x − mean)·rstd, one block per row;
/// dw = Σ_rows g·x̂ and db = Σ_rows g (either may be null) from per-chunk partial sums in
/// `partial` (2·chunks·n accumulators, chunks = layer_norm_chunks(rows)) reduced in a second
/// kernel, deterministic.
int64_t layer_norm_chunks(int64_t rows);
cudaError_t layer_norm_backward(FloatType t, const void* g, const void* x, const void* w, const void* mean,
                                const void* rstd, void* dx, void* dw, void* db, void* partial, int64_t rows, int64_t n,
                                cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ cumsum, logsumexp (kernels/scan.cu,
// kernels/logsumexp.cu)
namespace ember::cuda_backend::kernels {

/// Whether cumsum / logsumexp run one block per row (inner == 1, rows longer than 32) rather
/// than one thread per column.
inline bool scan_by_rows(int64_t size, int64_t inner) { return inner == 1 && size > 32; }

/// Inclusive prefix sums (suffix sums when reverse) along the middle axis of a contiguous
/// (outer, size, inner) block `in` of element type t into `out` of the same geometry, as
/// cpu::cumsum: out has type t for floating inputs (accumulated in double, each element the
/// running sum rounded to t, 16-bit types through float), int64 for integers and bool (int64
/// accumulation, wrapping). splits (chunk_splits) > 1: `workspace` holds outer * splits * inner
/// 8-byte chunk totals; a first kernel writes them, each chunk's scan starts from the sum of
/// the totals before it.
cudaError_t cumsum(ElemType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner, bool reverse,
                   int64_t splits, void* workspace, cudaStream_t stream);

/// log(sum(exp(x))) over the middle axis of a contiguous (outer, size, inner) block into the
/// contiguous (outer, inner) `out`, as cpu::logsumexp: shifted by the NaN-propagating max when
/// it is finite (else by 0: NaN, +inf and -inf rows give themselves, an empty row -inf), exp in
/// f32 (f64 for f64), summed in double. splits (chunk_splits) > 1: `workspace` of
/// logsumexp_workspace_bytes for the chunk maxima and sums, combined in order by a last kernel.
cudaError_t logsumexp(FloatType t, void* out, const void* in, int64_t outer, int64_t size, int64_t inner,
                      int64_t splits, void* workspace, cudaStream_t stream);
int64_t logsumexp_workspace_bytes(int64_t outer, int64_t inner, int64_t splits);

}  // namespace ember::cuda_backend::kernels

// ------------------------------------------------------------------ random fills (kernels/random.cu)
namespace ember::cuda_backend::kernels {

/// The fills of src/ops/random.cpp, with its Philox stream layout and its conversions (see the
/// comment at the top of that file and of kernels/random.cu).
enum class RandomOp : int32_t {
  uniform,    // floating t: [a, b) (rand: [0, 1))
  normal,     // floating t: mean a, standard deviation b
  randint,    // numeric t (not bool): [low, low + range)
  bernoulli,  // any t: 1 with probability a, else 0
};
struct RandomParams {
  RandomOp op = RandomOp::uniform;
  double a = 0, b = 0;
  int64_t low = 0;
  uint64_t range = 0;  // randint: high - low as uint64 (>= 1)
};
/// Philox words each element of t uses under p (1 or 2): reserve n times as many.
int random_words_per_element(ElemType t, const RandomParams& p);
/// Fills n contiguous elements of type t at `out` from the counters reserved as (seed, offset):
/// element i of a one-word fill uses word i % 4 of counter offset + i / 4, of a two-word fill
/// words 2(i % 2) and 2(i % 2) + 1 of counter offset + i / 2. cudaErrorInvalidValue for an op
/// the type does not support (uniform/normal of an integer type, randint of bool).
cudaError_t random_fill(ElemType t, void* out, int64_t n, const RandomParams& p, uint64_t seed, uint64_t offset,
                        cudaStream_t stream);

}  // namespace ember::cuda_backend::kernels
