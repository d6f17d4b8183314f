// Matrix products on the CPU. f32 goes to oneDNN's dnnl_sgemm when Ember is built with it
// (MACHINE.md: at or above OpenBLAS's best here, and it picks AVX-512 by itself whatever
// OPENBLAS_* says); f64, integers and the f32 fallback go to Eigen; f16/bf16 are widened to
// f32, multiplied there and rounded once.
#include <Eigen/Core>
#include <algorithm>
#include <optional>
#include <vector>

#include "ember/backend/cpu.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#if EMBER_HAVE_DNNL
#include <dnnl.h>
#include <dnnl_debug.h>
#endif

namespace ember::cpu {

namespace {

// A logical (rows, cols) matrix stored row-major (trans = false: element (i, j) at i*ld + j) or
// column-major (trans = true: at j*ld + i), as BLAS's row-major 'N' / 'T' operands.
struct MatLayout {
  bool trans = false;
  int64_t ld = 1;
};

std::optional<MatLayout> matrix_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  // A dim of size 1 never steps, so its stride is free: pick the one that makes the layout legal.
  if (cols == 1 || s1 == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : s0;
    if (ld >= std::max<int64_t>(cols, 1)) return MatLayout{false, ld};
  }
  if (rows == 1 || s0 == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : s1;
    if (ld >= std::max<int64_t>(rows, 1)) return MatLayout{true, ld};
  }
  return std::nullopt;
}

std::optional<MatLayout> matrix_layout(const Tensor& t) {
  const int64_t d = t.dim();
  return matrix_layout(t.size(d - 2), t.size(d - 1), t.stride(d - 2), t.stride(d - 1));
}

// A contiguous copy of `t` converted to `dt`, returned as a view with t's shape. Batch dims that
// t broadcasts through stride 0 stay broadcast (size 1 in the copy), so a weight shared by every
// batch entry is copied once.
Tensor compact_copy(const Tensor& t, DType dt) {
  const int64_t d = t.dim();
  Shape compact = t.shape();
  for (int64_t i = 0; i < d - 2; ++i)
    if (t.stride(i) == 0) compact[i] = 1;
  Tensor out = empty(compact, {.dtype = dt});
  copy(out, t.as_strided(compact, t.strides(), t.storage_offset()));
  Shape st = out.strides();
  for (int64_t i = 0; i < d - 2; ++i)
    if (compact[i] != t.size(i)) st[i] = 0;
  return out.as_strided(t.shape(), st, 0);
}

// Element offsets of each batch entry of a, b and c (batch dims: all but the last two).
struct BatchOffsets {
  std::vector<int64_t> a, b, c;
};

BatchOffsets batch_offsets(const Tensor& c, const Tensor& a, const Tensor& b) {
  const int64_t nbd = c.dim() - 2;
  const int64_t nb = numel_of(Shape(c.shape().begin(), c.shape().begin() + nbd));
  BatchOffsets o;
  o.a.resize(nb);
  o.b.resize(nb);
  o.c.resize(nb);
  Shape idx(nbd, 0);
  int64_t oa = 0, ob = 0, oc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    o.a[i] = oa;
    o.b[i] = ob;
    o.c[i] = oc;
    for (int64_t d = nbd - 1; d >= 0; --d) {
      if (++idx[d] < c.size(d)) {
        oa += a.stride(d);
        ob += b.stride(d);
        oc += c.stride(d);
        break;
      }
      oa -= a.stride(d) * (c.size(d) - 1);
      ob -= b.stride(d) * (c.size(d) - 1);
      oc -= c.stride(d) * (c.size(d) - 1);
      idx[d] = 0;
    }
  }
  return o;
}

// OpenMP's thread count is per-thread state: a thread that never called set_num_threads (a data
// loader, a user's std::thread) would otherwise run the GEMM on the runtime's default count.
void use_ember_threads() {
#ifdef _OPENMP
  if (omp_in_parallel()) return;
  const int n = get_num_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

// Below this many multiply-adds per matrix, a batch is split across threads with one
// single-threaded GEMM each rather than threading every small GEMM, whose fork/join and
// partitioning cost more than the work: measured 1.7-1.9x faster on the GPT's attention
// products (128 × 128x128x32) at 2 threads.
constexpr int64_t kSmallGemmMacs = 96 * 96 * 96;

// Whether to split a batch of nb GEMMs of `macs` multiply-adds each across the threads. Large
// GEMMs also gain from it when the batch divides evenly (no synchronisation inside a GEMM;
// measured 2 × 1024³: 202 vs 186 GFLOP/s), but lose when it does not (3 × 512³: 158 vs 201).
bool split_batch(int64_t nb, int64_t macs, int threads) {
  if (nb < 2 || threads < 2) return false;
  return macs <= kSmallGemmMacs || nb % threads == 0 || nb >= 8 * static_cast<int64_t>(threads);
}

// Runs one(i) for every batch entry i.
template <class F>
void for_each_batch(int64_t nb, int64_t macs, F&& one) {
  if (split_batch(nb, macs, get_num_threads())) {
    parallel_for(nb, 1, [&](int64_t begin, int64_t end) {
#ifdef _OPENMP
      // Inside the region: keep the libraries from trying to thread again.
      if (omp_in_parallel()) omp_set_num_threads(1);
#endif
      for (int64_t i = begin; i < end; ++i) one(i);
    });
  } else {
    use_ember_threads();
    for (int64_t i = 0; i < nb; ++i) one(i);
  }
}

struct Geometry {
  int64_t m, n, k;
  MatLayout la, lb;
  int64_t ldc;
};

#if EMBER_HAVE_DNNL
void sgemm_one(const Geometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  const dnnl_status_t st = dnnl_sgemm(g.la.trans ? 'T' : 'N', g.lb.trans ? 'T' : 'N', g.m, g.n, g.k, alpha, a, g.la.ld,
                                      b, g.lb.ld, beta, c, g.ldc);
  EMBER_CHECK(st == dnnl_success, Error, "matmul: dnnl_sgemm failed with status ", dnnl_status2str(st), " (m=", g.m,
              ", n=", g.n, ", k=", g.k, ", lda=", g.la.ld, ", ldb=", g.lb.ld, ", ldc=", g.ldc, ")");
}
#endif

// Eigen over strided maps. Eigen packs both operands into panels anyway, so one instantiation
// with runtime strides serves both transpose flags.
template <class T>
void eigen_gemm_one(const Geometry& g, T alpha, const T* a, const T* b, T beta, T* c) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  auto strides = [](const MatLayout& l) { return l.trans ? Stride(1, l.ld) : Stride(l.ld, 1); };
  Eigen::Map<const Mat, 0, Stride> ea(a, g.m, g.k, strides(g.la));
  Eigen::Map<const Mat, 0, Stride> eb(b, g.k, g.n, strides(g.lb));
  Eigen::Map<Mat, 0, Eigen::OuterStride<>> ec(c, g.m, g.n, Eigen::OuterStride<>(g.ldc));
  if (beta == T(0)) {
    ec.noalias() = alpha * (ea * eb);
  } else {
    if (beta != T(1)) ec *= beta;
    ec.noalias() += alpha * (ea * eb);
  }
}

template <class T>
void gemm_typed(const Tensor& c, const Tensor& a, const Tensor& b, double alpha, double beta, const Geometry& g) {
  const BatchOffsets off = batch_offsets(c, a, b);
  T* cp = c.data<T>();
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  const int64_t nb = static_cast<int64_t>(off.c.size());
  for_each_batch(nb, g.m * g.n * g.k, [&](int64_t i) {
#if EMBER_HAVE_DNNL
    if constexpr (std::is_same_v<T, float>) {
      sgemm_one(g, static_cast<float>(alpha), ap + off.a[i], bp + off.b[i], static_cast<float>(beta), cp + off.c[i]);
      return;
    }
#endif
    eigen_gemm_one<T>(g, static_cast<T>(alpha), ap + off.a[i], bp + off.b[i], static_cast<T>(beta), cp + off.c[i]);
  });
}

// c = beta * c, for k == 0 (an empty sum).
void scale(const Tensor& c, double beta) {
  if (beta == 0.0) {
    fill(c, 0);
    return;
  }
  if (beta == 1.0) return;
  dispatch<kFloatingTypes | kSetI32 | kSetI64>(c.dtype(), "matmul", [&]<class T>() {
    Tensor tmp = empty(c.shape(), {.dtype = c.dtype()});
    copy(tmp, c);
    T* p = tmp.data<T>();
    for (int64_t i = 0, n = tmp.numel(); i < n; ++i)
      p[i] = static_cast<T>(static_cast<compute_t<T>>(beta) * static_cast<compute_t<T>>(p[i]));
    copy(c, tmp);
  });
}

}  // namespace

bool gemm_layout_ok(const Tensor& t) { return t.dim() >= 2 && matrix_layout(t).has_value(); }

void gemm(const Tensor& c, const Tensor& a, const Tensor& b, double alpha, double beta) {
  NoGradGuard no_grad;
  const int64_t d = c.dim();
  const int64_t m = c.size(d - 2), n = c.size(d - 1), k = a.size(d - 1);
  if (c.numel() == 0) return;
  if (k == 0) {
    scale(c, beta);
    return;
  }
  const DType dt = c.dtype();
  if (dt == kFloat16 || dt == kBFloat16) {
    // Widen once, multiply in f32, round once.
    Tensor c32 = empty(c.shape(), {.dtype = kFloat32});
    if (beta != 0.0) copy(c32, c);
    gemm(c32, compact_copy(a, kFloat32), compact_copy(b, kFloat32), alpha, beta);
    copy(c, c32);
    return;
  }
  std::optional<MatLayout> la = matrix_layout(a), lb = matrix_layout(b), lc = matrix_layout(c);
  if (!la || !lb) {
    gemm(c, la ? a : compact_copy(a, dt), lb ? b : compact_copy(b, dt), alpha, beta);
    return;
  }
  if (!lc || lc->trans) {
    Tensor tmp = empty(c.shape(), {.dtype = dt});
    if (beta != 0.0) copy(tmp, c);
    gemm(tmp, a, b, alpha, beta);
    copy(c, tmp);
    return;
  }
  const Geometry g{m, n, k, *la, *lb, lc->ld};
  dispatch<kSetF32 | kSetF64 | kSetI32 | kSetI64>(dt, "matmul",
                                                  [&]<class T>() { gemm_typed<T>(c, a, b, alpha, beta, g); });
}

}  // namespace ember::cpu
