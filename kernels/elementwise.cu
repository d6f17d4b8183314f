// Elementwise binary and unary kernels for f32/f64/f16/bf16. One kernel per (dtype, layout),
// with the op chosen by a switch that is uniform across the grid: this keeps the number of
// instantiations (and CI compile time) small, and the kernels are memory-bound anyway.
// Layouts: contiguous (16-byte vector loads/stores when every pointer is aligned; a one-element
// input broadcasts) and strided (an offset calculator over up to kMaxDims dims, any strides,
// stride 0 for broadcast).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class C>
__device__ __forceinline__ C normal_cdf(C x) {
  if constexpr (sizeof(C) == 4)
    return normcdff(x);
  else
    return normcdf(x);
}
template <class C>
__device__ __forceinline__ C rsqrt_of(C x) {
  if constexpr (sizeof(C) == 4)
    return rsqrtf(x);
  else
    return rsqrt(x);
}

template <class C>
__device__ __forceinline__ C sigmoid_of(C x) {
  return C(1) / (C(1) + exp(-x));
}

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kGeluTanhCoeff = 0.044715;

template <class C>
__device__ __forceinline__ C apply_binary(BinOp op, C x, C y, C alpha) {
  switch (op) {
    case BinOp::add: return x + alpha * y;
    case BinOp::sub: return x - alpha * y;
    case BinOp::mul: return x * y;
    case BinOp::div: return x / y;
    case BinOp::maximum: return nan_max(x, y);
    case BinOp::minimum: return nan_min(x, y);
    case BinOp::pow: return pow(x, y);
    case BinOp::threshold_backward: return y > C(0) ? x : C(0);
    case BinOp::tanh_backward: return x * (C(1) - y * y);
    case BinOp::sigmoid_backward: return x * y * (C(1) - y);
    case BinOp::gelu_backward: return x * (normal_cdf(y) + y * C(kInvSqrt2Pi) * exp(C(-0.5) * y * y));
    case BinOp::gelu_tanh_backward: {
      const C y2 = y * y;
      const C t = tanh(C(kSqrt2OverPi) * (y + C(kGeluTanhCoeff) * y2 * y));
      const C du = C(kSqrt2OverPi) * (C(1) + C(3 * kGeluTanhCoeff) * y2);
      return x * (C(0.5) * (C(1) + t) + C(0.5) * y * (C(1) - t * t) * du);
    }
    case BinOp::silu_backward: {
      const C s = sigmoid_of(y);
      return x * s * (C(1) + y * (C(1) - s));
    }
    default: return C(0);
  }
}

template <class C>
__device__ __forceinline__ C apply_unary(UnOp op, C x) {
  switch (op) {
    case UnOp::neg: return -x;
    case UnOp::abs: return fabs(x);
    case UnOp::sign: return x != x ? x : C((x > C(0)) - (x < C(0)));
    case UnOp::exp: return exp(x);
    case UnOp::log: return log(x);
    case UnOp::log1p: return log1p(x);
    case UnOp::sqrt: return sqrt(x);
    case UnOp::rsqrt: return rsqrt_of(x);
    case UnOp::square: return x * x;
    case UnOp::reciprocal: return C(1) / x;
    case UnOp::sin: return sin(x);
    case UnOp::cos: return cos(x);
    case UnOp::erf: return erf(x);
    case UnOp::tanh: return tanh(x);
    case UnOp::sigmoid: return sigmoid_of(x);
    case UnOp::relu: return x > C(0) ? x : (x != x ? x : C(0));  // NaN stays NaN, as on the CPU
    case UnOp::gelu: return x * normal_cdf(x);
    case UnOp::gelu_tanh: return C(0.5) * x * (C(1) + tanh(C(kSqrt2OverPi) * (x + C(kGeluTanhCoeff) * x * x * x)));
    case UnOp::silu: return x * sigmoid_of(x);
  }
  return x;
}

/// Result of op on one element pair, stored as O (T for arithmetic, uint8 0/1 for comparisons).
template <class T, class O>
__device__ __forceinline__ O binary_element(BinOp op, T a, T b, acc_t<T> alpha) {
  if constexpr (sizeof(O) == 1) {
    return static_cast<O>(apply_compare(op, widen(a), widen(b)));
  } else {
    return narrow<T>(apply_binary(op, widen(a), widen(b), alpha));
  }
}

template <class T, class O>
__global__ void binary_contiguous(BinOp op, O* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                                  int64_t n, bool sa, bool sb, bool vectorised, acc_t<T> alpha) {
  constexpr int V = kVec<T>;
  const int64_t nvec = vectorised ? n / V : 0;
  const T a0 = sa ? a[0] : T(), b0 = sb ? b[0] : T();
  for (int64_t i = global_thread(); i < nvec; i += grid_threads()) {
    Vec<T, V> va, vb;
    if (!sa) va = reinterpret_cast<const Vec<T, V>*>(a)[i];
    if (!sb) vb = reinterpret_cast<const Vec<T, V>*>(b)[i];
    Vec<O, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = binary_element<T, O>(op, sa ? a0 : va.v[j], sb ? b0 : vb.v[j], alpha);
    reinterpret_cast<Vec<O, V>*>(out)[i] = r;
  }
  for (int64_t i = nvec * V + global_thread(); i < n; i += grid_threads()) {
    out[i] = binary_element<T, O>(op, sa ? a0 : a[i], sb ? b0 : b[i], alpha);
  }
}

template <class T, class O>
__global__ void binary_strided(BinOp op, O* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                               int64_t n, OffsetCalc calc, acc_t<T> alpha) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[3];
    strided_offsets<3>(i, n, calc, off);
    out[off[0]] = binary_element<T, O>(op, a[off[1]], b[off[2]], alpha);
  }
}

template <class T>
__global__ void unary_contiguous(UnOp op, T* __restrict__ out, const T* __restrict__ x, int64_t n, bool sx,
                                 bool vectorised) {
  constexpr int V = kVec<T>;
  const int64_t nvec = vectorised ? n / V : 0;
  for (int64_t i = global_thread(); i < nvec; i += grid_threads()) {
    Vec<T, V> v = reinterpret_cast<const Vec<T, V>*>(x)[i];
#pragma unroll
    for (int j = 0; j < V; ++j) v.v[j] = narrow<T>(apply_unary(op, widen(v.v[j])));
    reinterpret_cast<Vec<T, V>*>(out)[i] = v;
  }
  for (int64_t i = nvec * V + global_thread(); i < n; i += grid_threads()) {
    out[i] = narrow<T>(apply_unary(op, widen(x[sx ? 0 : i])));
  }
}

template <class T>
__global__ void unary_strided(UnOp op, T* __restrict__ out, const T* __restrict__ x, int64_t n, OffsetCalc calc) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    strided_offsets<2>(i, n, calc, off);
    out[off[0]] = narrow<T>(apply_unary(op, widen(x[off[1]])));
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class T, class O>
cudaError_t launch_binary(BinOp op, const ElementwiseArgs& g, double alpha, cudaStream_t s) {
  auto* out = static_cast<O*>(g.out);
  auto* a = static_cast<const T*>(g.a);
  auto* b = static_cast<const T*>(g.b);
  const auto al = static_cast<acc_t<T>>(alpha);
  if (g.contiguous) {
    // The output vector is kVec<T> elements of O: 16 bytes for arithmetic, kVec<T> bytes for bool.
    const bool vec = reinterpret_cast<uintptr_t>(out) % (sizeof(O) * kVec<T>) == 0 && (g.scalar_a || aligned16(a)) &&
                     (g.scalar_b || aligned16(b));
    const int64_t work = vec ? (g.numel + kVec<T> - 1) / kVec<T> : g.numel;
    return launch(binary_contiguous<T, O>, work, kThreads, 0, s, op, out, a, b, g.numel, g.scalar_a, g.scalar_b, vec,
                  al);
  }
  return launch(binary_strided<T, O>, g.numel, kThreads, 0, s, op, out, a, b, g.numel, g.calc, al);
}

template <class T>
cudaError_t launch_binary_any(BinOp op, const ElementwiseArgs& g, double alpha, cudaStream_t s) {
  if (is_comparison(op)) return launch_binary<T, uint8_t>(op, g, alpha, s);
  return launch_binary<T, T>(op, g, alpha, s);
}

template <class T>
cudaError_t launch_unary(UnOp op, const ElementwiseArgs& g, cudaStream_t s) {
  auto* out = static_cast<T*>(g.out);
  auto* x = static_cast<const T*>(g.a);
  if (g.contiguous) {
    const bool vec = !g.scalar_a && aligned16(out) && aligned16(x);
    const int64_t work = vec ? (g.numel + kVec<T> - 1) / kVec<T> : g.numel;
    return launch(unary_contiguous<T>, work, kThreads, 0, s, op, out, x, g.numel, g.scalar_a, vec);
  }
  return launch(unary_strided<T>, g.numel, kThreads, 0, s, op, out, x, g.numel, g.calc);
}

}  // namespace

cudaError_t binary(BinOp op, FloatType t, const ElementwiseArgs& args, double alpha, cudaStream_t stream) {
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case FloatType::f32: return launch_binary_any<float>(op, args, alpha, stream);
    case FloatType::f64: return launch_binary_any<double>(op, args, alpha, stream);
    case FloatType::f16: return launch_binary_any<__half>(op, args, alpha, stream);
    case FloatType::bf16: return launch_binary_any<__nv_bfloat16>(op, args, alpha, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t unary(UnOp op, FloatType t, const ElementwiseArgs& args, cudaStream_t stream) {
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case FloatType::f32: return launch_unary<float>(op, args, stream);
    case FloatType::f64: return launch_unary<double>(op, args, stream);
    case FloatType::f16: return launch_unary<__half>(op, args, stream);
    case FloatType::bf16: return launch_unary<__nv_bfloat16>(op, args, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
