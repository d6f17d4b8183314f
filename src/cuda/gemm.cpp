// Matrix products through cuBLASLt. Ember's matrices are row-major; cuBLASLt's are
// column-major, so c = a · b is computed as cᵀ = bᵀ · aᵀ: a row-major operand is passed as is
// (its transpose in column-major terms) and a column-major one (a transposed view) with the
// transpose flag, so neither is copied. Batches go as strided batches when every operand's batch
// dims collapse to one stride (stride 0 for broadcast operands); otherwise one call per matrix.
#include <cublasLt.h>

#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/cuda.hpp"

namespace ember::cuda_backend {
namespace {

// Workspace offered to cuBLASLt per call (Hopper kernels want up to 32 MiB); it comes from the
// caching allocator, so after the first call it costs no cudaMalloc.
constexpr int64_t kWorkspaceBytes = int64_t{32} << 20;

cublasLtHandle_t lt_handle(int device) {
  static std::mutex mu;
  static std::vector<cublasLtHandle_t>* handles = new std::vector<cublasLtHandle_t>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(mu);
  if (handles->size() <= static_cast<size_t>(device)) handles->resize(static_cast<size_t>(device) + 1, nullptr);
  cublasLtHandle_t& h = (*handles)[static_cast<size_t>(device)];
  if (h == nullptr) EMBER_CUBLAS_CHECK(cublasLtCreate(&h));
  return h;
}

// RAII for the descriptors of one call (destroyed without throwing).
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// One operand as cuBLASLt sees it: the stored column-major matrix (rows x cols, leading
// dimension ld) and whether it must be transposed.
struct Operand {
  bool transpose = false;
  int64_t rows = 0, cols = 0, ld = 0;
};

// x is (r, c) row-major or column-major; returns the column-major operand equal to xᵀ.
Operand as_transposed_operand(const Tensor& x) {
  const int64_t d = x.dim();
  const int64_t r = x.size(d - 2), c = x.size(d - 1);
  const int64_t s0 = x.stride(d - 2), s1 = x.stride(d - 1);
  Operand o;
  if (s1 == 1 || c == 1) {
    // Row-major (r, c) is column-major (c, r) = xᵀ: no transpose.
    o.rows = c;
    o.cols = r;
    o.ld = std::max<int64_t>({r == 1 ? c : s0, c, 1});
  } else {
    // Column-major (r, c) with ld s1: xᵀ needs the transpose flag.
    o.transpose = true;
    o.rows = r;
    o.cols = c;
    o.ld = std::max<int64_t>({s1, r, 1});
  }
  return o;
}

// True when the last two dims are row- or column-major with a usable leading dimension.
bool matrix_ok(const Tensor& x) {
  const int64_t d = x.dim();
  const int64_t r = x.size(d - 2), c = x.size(d - 1), s0 = x.stride(d - 2), s1 = x.stride(d - 1);
  // A broadcast (stride 0) dim cannot be described by a leading dimension: copy it.
  if ((r > 1 && s0 == 0) || (c > 1 && s1 == 0)) return false;
  if (r <= 1 || c <= 1) return true;
  return (s1 == 1 && s0 >= c) || (s0 == 1 && s1 >= r);
}

// One stride that walks every batch matrix of x in order (batch dims collapsed), if there is one.
bool batch_stride(const Tensor& x, int64_t nbatch_dims, int64_t& stride) {
  stride = 0;
  bool found = false;
  int64_t expected = 0;
  for (int64_t d = nbatch_dims - 1; d >= 0; --d) {
    const int64_t size = x.size(d), st = x.stride(d);
    if (size == 1) continue;
    if (!found) {
      stride = st;
      expected = st * size;
      found = true;
    } else if (st != expected) {
      return false;
    } else {
      expected = st * size;
    }
  }
  // Broadcast batch dims (stride 0) collapse only if all of them are broadcast.
  if (found && stride == 0) {
    for (int64_t d = 0; d < nbatch_dims; ++d)
      if (x.size(d) != 1 && x.stride(d) != 0) return false;
  }
  return true;
}

// The largest power of two (at most 256) dividing the address and the batch stride in bytes.
uint32_t alignment(const void* p, int64_t stride_bytes) {
  uint64_t v = reinterpret_cast<uintptr_t>(p) | uint64_t{256} | static_cast<uint64_t>(stride_bytes);
  return static_cast<uint32_t>(v & (~v + 1));
}

// The matrix of x (its last two dims) that starts `offset` elements after x's first element.
Tensor matrix_view(const Tensor& x, int64_t offset) {
  const int64_t d = x.dim();
  return x.as_strided({x.size(d - 2), x.size(d - 1)}, {x.stride(d - 2), x.stride(d - 1)}, x.storage_offset() + offset);
}

struct Types {
  cudaDataType_t data;
  cudaDataType_t scale;
  cublasComputeType_t compute;
};

Types types_for(DType dt) {
  switch (dt) {
    case DType::f32:
      return {CUDA_R_32F, CUDA_R_32F, cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
    case DType::f64: return {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case DType::f16: return {CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::bf16: return {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    default:
      EMBER_THROW(NotImplemented, "matmul on CUDA: dtype ", dtype_name(dt),
                  " is not supported yet (float32, float64, float16 and bfloat16 are)");
  }
}

void set_layout(cublasLtMatrixLayout_t* l, cudaDataType_t t, const Operand& o, int64_t batch, int64_t bstride) {
  EMBER_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(l, t, static_cast<uint64_t>(o.rows), static_cast<uint64_t>(o.cols), o.ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    EMBER_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    EMBER_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &bstride, sizeof(bstride)));
  }
}

// A cuBLASLt epilogue for one (non-batched) call: BIAS (bias read), GELU_AUX_BIAS (bias read,
// the GELU input stored to aux with leading dimension aux_ld), DGELU_BGRAD (aux read, the bias
// gradient written to `bias`). exact_f32: no TF32 even when cuda::allow_tf32() (a product that
// must reproduce one operand exactly).
struct Epilogue {
  cublasLtEpilogue_t kind = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  void* aux = nullptr;
  int64_t aux_ld = 0;
  bool exact_f32 = false;
};

// c (m, n) = alpha a (m, k) b (k, n) + beta c for `batch` matrices at the given element strides.
// Returns false (without computing) when cuBLASLt finds no algorithm: for a strided batch (e.g.
// one it will not run with a zero batch stride) the caller then loops over the matrices; for one
// matrix (a view whose offset or leading dimension no kernel takes) it copies the operands.
bool matmul_call(const Tensor& c, const Tensor& a, const Tensor& b, void* pc, const void* pa, const void* pb,
                 int64_t batch, int64_t sc, int64_t sa, int64_t sb, double alpha, double beta,
                 const Epilogue* ep = nullptr) {
  const int dev = c.device().index;
  Types ty = types_for(c.dtype());
  if (ep && ep->exact_f32 && c.dtype() == DType::f32) ty.compute = CUBLAS_COMPUTE_32F;
  // Column-major problem: C' (n, m) = B' (n, k) · A' (k, m) with B' = bᵀ, A' = aᵀ.
  const Operand ob = as_transposed_operand(b);  // bᵀ: (n, k) after its op
  const Operand oa = as_transposed_operand(a);  // aᵀ: (k, m) after its op
  const int64_t d = c.dim();
  Operand oc;
  oc.rows = c.size(d - 1);
  oc.cols = c.size(d - 2);
  oc.ld = std::max<int64_t>({c.size(d - 2) == 1 ? oc.rows : c.stride(d - 2), oc.rows, 1});

  Descriptors ds;
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescCreate(&ds.op, ty.compute, ty.scale));
  const cublasOperation_t ta = ob.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A is our b
  const cublasOperation_t tb = oa.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (ep) {
    EMBER_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep->kind, sizeof(ep->kind)));
    if (ep->bias)
      EMBER_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &ep->bias, sizeof(ep->bias)));
    if (ep->aux) {
      EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &ep->aux,
                                                        sizeof(ep->aux)));
      EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ep->aux_ld,
                                                        sizeof(ep->aux_ld)));
    }
  }
  set_layout(&ds.a, ty.data, ob, batch, sb);
  set_layout(&ds.b, ty.data, oa, batch, sa);
  set_layout(&ds.c, ty.data, oc, batch, sc);

  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  Tensor ws = scratch(dev, kWorkspaceBytes);
  uint64_t ws_bytes = static_cast<uint64_t>(kWorkspaceBytes);
  EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&ds.pref));
  EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                          sizeof(ws_bytes)));
  // The heuristic assumes 256-byte aligned matrices unless told otherwise (views may be offset).
  const uint32_t al_a = alignment(pb, batch > 1 ? sb * c.element_size() : 0);
  const uint32_t al_b = alignment(pa, batch > 1 ? sa * c.element_size() : 0);
  const uint32_t al_c = alignment(pc, batch > 1 ? sc * c.element_size() : 0);
  EMBER_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)));
  EMBER_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)));
  EMBER_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)));
  EMBER_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof(al_c)));
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  cublasLtHandle_t h = lt_handle(dev);
  const cublasStatus_t hst =
      cublasLtMatmulAlgoGetHeuristic(h, ds.op, ds.a, ds.b, ds.c, ds.c, ds.pref, 1, &heur, &found);
  if ((batch > 1 || ep) && (hst == CUBLAS_STATUS_NOT_SUPPORTED || hst == CUBLAS_STATUS_INVALID_VALUE || found == 0))
    return false;  // an epilogue cuBLASLt cannot run here: the caller composes
  if (hst == CUBLAS_STATUS_NOT_SUPPORTED || (hst == CUBLAS_STATUS_SUCCESS && found == 0)) return false;
  EMBER_CUBLAS_CHECK(hst);
  const float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
  const void* pal = ty.scale == CUDA_R_64F ? static_cast<const void*>(&alpha) : static_cast<const void*>(&af);
  const void* pbe = ty.scale == CUDA_R_64F ? static_cast<const void*>(&beta) : static_cast<const void*>(&bf);
  // cuBLASLt: D = alpha op(A) op(B) + beta C with A = our b, B = our a, C = D = our c.
  const cublasStatus_t st = cublasLtMatmul(h, ds.op, pal, pb, ds.a, pa, ds.b, pbe, pc, ds.c, pc, ds.c, &heur.algo,
                                           ws.data_ptr(), ws_bytes, stream);
  // An epilogue rejected at launch (nothing was computed): the caller composes instead.
  if (ep && (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE)) return false;
  EMBER_CUBLAS_CHECK(st);
  return true;
}

}  // namespace

void gemm(const Tensor& c, const Tensor& a_in, const Tensor& b_in, double alpha, double beta) {
  const int64_t d = c.dim();
  const int64_t m = c.size(d - 2), n = c.size(d - 1), k = a_in.size(d - 1);
  (void)types_for(c.dtype());  // dtype check first
  EMBER_CHECK(a_in.device() == c.device() && b_in.device() == c.device(), DeviceError, "matmul on CUDA: operands on ",
              a_in.device().str(), ", ", b_in.device().str(), " and output on ", c.device().str());
  if (c.numel() == 0) return;
  if (k == 0) {  // an empty sum: c = beta * c
    if (beta == 0.0)
      fill(c, 0);
    else
      cuda_backend::binary(cpu::BinaryOp::mul, c, c, scalar_tensor(beta, {.dtype = c.dtype()}));
    return;
  }
  const Tensor a = matrix_ok(a_in) ? a_in : a_in.contiguous();
  const Tensor b = matrix_ok(b_in) ? b_in : b_in.contiguous();
  const int64_t nb = d - 2;
  int64_t batch = 1;
  for (int64_t i = 0; i < nb; ++i) batch *= c.size(i);
  int64_t sa = 0, sb = 0, sc = 0;
  const bool strided = batch_stride(a, nb, sa) && batch_stride(b, nb, sb) && batch_stride(c, nb, sc);
  const int64_t es = static_cast<int64_t>(c.element_size());
  auto* pc = static_cast<char*>(c.data_ptr());
  auto* pa = static_cast<const char*>(a.data_ptr());
  auto* pb = static_cast<const char*>(b.data_ptr());
  if (strided && batch <= INT32_MAX) {
    if (matmul_call(c, a, b, pc, pa, pb, batch, sc, sa, sb, alpha, beta)) return;
  }
  // One call per matrix: walk the batch index.
  for (int64_t i = 0; i < batch; ++i) {
    int64_t oa = 0, ob = 0, oc = 0, rem = i;
    for (int64_t dd = nb - 1; dd >= 0; --dd) {
      const int64_t idx = rem % c.size(dd);
      rem /= c.size(dd);
      oa += idx * a.stride(dd);
      ob += idx * b.stride(dd);
      oc += idx * c.stride(dd);
    }
    if (matmul_call(c, a, b, pc + oc * es, pa + oa * es, pb + ob * es, 1, 0, 0, 0, alpha, beta)) continue;
    // No kernel for these views (an element offset below the vector width, an odd leading
    // dimension): this matrix's operands copied (fresh, aligned, packed), nothing computed yet.
    const Tensor am = matrix_view(a, oa).contiguous(), bm = matrix_view(b, ob).contiguous();
    EMBER_CHECK(matmul_call(c, am, bm, pc + oc * es, am.data_ptr(), bm.data_ptr(), 1, 0, 0, 0, alpha, beta),
                NotImplemented, "matmul on CUDA: cuBLASLt has no algorithm for ", dtype_name(c.dtype()), " ",
                shape_str(a.shape()), " x ", shape_str(b.shape()));
  }
  (void)m;
  (void)n;
}

// ------------------------------------------------------------------ linear-layer epilogues
namespace {

// Widest GELU input (n) for which gelu_backward_bgrad runs its identity product.
constexpr int64_t kDgeluMaxWidthF32 = 1024;
constexpr int64_t kDgeluMaxWidth16 = 8192;

bool epilogue_dtype(DType dt) { return dt == DType::f32 || dt == DType::f16 || dt == DType::bf16; }
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The (n, n) identity on a device, built there once per (device, dtype, n) (one host
// synchronisation then) and kept (it is only read).
Tensor identity(const Device& device, DType dt, int64_t n) {
  static std::mutex mu;
  static auto* cache = new std::vector<std::pair<std::tuple<int, DType, int64_t>, Tensor>>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(device.index, dt, n);
  for (const auto& [k, t] : *cache)
    if (k == key) return t;
  Tensor eye = zeros({n, n}, {.dtype = dt, .device = device});
  fill(eye.as_strided({n}, {n + 1}, 0), 1);
  // Later calls may run on other streams: wait once for the fill so every stream sees it.
  DeviceGuard guard(device.index);
  EMBER_CUDA_HOST_SYNC(cudaStreamSynchronize(current_stream(device.index)));
  cache->emplace_back(key, eye);
  return eye;
}

// Common checks of the epilogue entry points: false when the fused call cannot apply.
bool linear_operands_ok(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const DType dt = out.dtype();
  if (!epilogue_dtype(dt) || x.dtype() != dt || w.dtype() != dt || bias.dtype() != dt) return false;
  if (x.device() != out.device() || w.device() != out.device() || bias.device() != out.device()) return false;
  if (x.dim() != 2 || w.dim() != 2 || out.dim() != 2 || bias.dim() != 1) return false;
  if (x.size(0) == 0 || x.size(1) == 0 || w.size(0) == 0) return false;
  if (!out.is_contiguous() || !bias.is_contiguous() || !aligned16(bias.data_ptr())) return false;
  return true;
}

// Whether `pre` can be the aux (GELU input) buffer of an (m, n) epilogue: (m, >= n) with unit
// column stride, i.e. column-major (ld, m), ld a multiple of 8 and at least n (cuBLASLt's rule),
// 16-byte aligned.
bool aux_ok(const Tensor& pre, int64_t m, int64_t n) {
  return pre.dim() == 2 && pre.size(0) == m && pre.size(1) >= n && pre.stride(1) == 1 && pre.stride(0) % 8 == 0 &&
         pre.stride(0) >= n && aligned16(pre.data_ptr());
}

// out = x · wᵀ through the epilogue `ep` in one call (operands made row/column-major first).
bool linear_call(const Tensor& out, const Tensor& x_in, const Tensor& w_in, const Epilogue& ep) {
  const Tensor x = matrix_ok(x_in) ? x_in : x_in.contiguous();
  const Tensor wt = matrix_ok(w_in) ? w_in.t() : w_in.contiguous().t();
  return matmul_call(out, x, wt, out.data_ptr(), x.data_ptr(), wt.data_ptr(), 1, 0, 0, 0, 1.0, 0.0, &ep);
}

}  // namespace

bool linear_bias(const Tensor& out, const Tensor& x_in, const Tensor& w_in, const Tensor& bias) {
  if (!linear_operands_ok(out, x_in, w_in, bias)) return false;
  Epilogue ep;
  ep.kind = CUBLASLT_EPILOGUE_BIAS;
  ep.bias = bias.data_ptr();
  return linear_call(out, x_in, w_in, ep);
}

bool linear_gelu(const Tensor& out, const Tensor& pre, const Tensor& x_in, const Tensor& w_in, const Tensor& bias) {
  if (!linear_operands_ok(out, x_in, w_in, bias)) return false;
  if (pre.dtype() != out.dtype() || pre.device() != out.device() || !aux_ok(pre, out.size(0), out.size(1)))
    return false;
  Epilogue ep;
  ep.kind = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  ep.bias = bias.data_ptr();
  ep.aux = pre.data_ptr();
  ep.aux_ld = pre.stride(0);
  return linear_call(out, x_in, w_in, ep);
}

bool gelu_backward_bgrad(const Tensor& grad_pre, const Tensor& grad_bias, const Tensor& grad_out_in,
                         const Tensor& pre) {
  const DType dt = grad_pre.dtype();
  if (!epilogue_dtype(dt) || grad_out_in.dtype() != dt || grad_bias.dtype() != dt || pre.dtype() != dt) return false;
  const Device dev = grad_pre.device();
  if (grad_out_in.device() != dev || grad_bias.device() != dev || pre.device() != dev) return false;
  if (grad_pre.dim() != 2 || grad_out_in.dim() != 2 || grad_out_in.sizes() != grad_pre.sizes()) return false;
  const int64_t m = grad_pre.size(0), n = grad_pre.size(1);
  // The identity product costs 2·n flops per element: worth one call up to a width where it
  // still beats the composed elementwise ops (tensor cores for 16-bit, plain f32 otherwise).
  if (n > (dt == DType::f32 ? kDgeluMaxWidthF32 : kDgeluMaxWidth16)) return false;
  if (m == 0 || n == 0 || !grad_pre.is_contiguous() || !grad_bias.is_contiguous() || grad_bias.numel() != n ||
      !aligned16(grad_bias.data_ptr()))
    return false;
  if (!aux_ok(pre, m, n)) return false;
  const Tensor go = matrix_ok(grad_out_in) ? grad_out_in : grad_out_in.contiguous();
  // grad_pre = (grad_out · I) ⊙ gelu'(pre) and grad_bias = Σ_rows grad_pre in one call: the
  // product with the identity reproduces grad_out exactly (one nonzero term per sum, no TF32).
  const Tensor eye = identity(dev, dt, n);
  Epilogue ep;
  ep.kind = CUBLASLT_EPILOGUE_DGELU_BGRAD;
  ep.bias = grad_bias.data_ptr();
  ep.aux = pre.data_ptr();
  ep.aux_ld = pre.stride(0);
  ep.exact_f32 = true;
  return matmul_call(grad_pre, go, eye, grad_pre.data_ptr(), go.data_ptr(), eye.data_ptr(), 1, 0, 0, 0, 1.0, 0.0,
                     &ep);
}

}  // namespace ember::cuda_backend
