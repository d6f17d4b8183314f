// Elementwise kernels for integer and bool tensors (arithmetic, comparisons, logical ops),
// bool-valued predicates of any dtype (logical_not, isfinite, isnan, isinf), clamp of any numeric
// dtype and where on any dtype. Integer arithmetic runs in int64 and is truncated to the storage
// type, which gives the CPU's two's complement wrap-around. One kernel per (type, layout), with
// the op chosen by a grid-uniform switch, to keep nvcc time small.
#include <type_traits>

#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

/// Stores an int64 result as T (bool: != 0; others: truncation, i.e. wrap-around).
template <class T>
__device__ __forceinline__ T store_as(int64_t v) {
  if constexpr (std::is_same_v<T, bool>)
    return v != 0;
  else
    return static_cast<T>(static_cast<uint64_t>(v));
}

template <class T>
__device__ __forceinline__ int64_t int_pow(int64_t base, int64_t e) {
  if constexpr (std::is_signed_v<T>) {
    if (e < 0) {
      if (base == 1) return 1;
      if (base == -1) return (e & 1) ? -1 : 1;
      return 0;
    }
  }
  // Wrap-around at every step, as the CPU's T-typed loop does (the final truncation to T
  // commutes with multiplication modulo 2^bits).
  uint64_t r = 1, b = static_cast<uint64_t>(base);
  uint64_t ue = static_cast<uint64_t>(e);
  while (ue) {
    if (ue & 1) r *= b;
    b *= b;
    ue >>= 1;
  }
  return static_cast<int64_t>(r);
}

template <class T>
__device__ __forceinline__ int64_t int_arith(BinOp op, int64_t x, int64_t y, int64_t alpha) {
  // Unsigned arithmetic: defined wrap-around instead of signed overflow.
  const uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y), ua = static_cast<uint64_t>(alpha);
  switch (op) {
    case BinOp::add: return static_cast<int64_t>(ux + ua * uy);
    case BinOp::sub: return static_cast<int64_t>(ux - ua * uy);
    case BinOp::mul: return static_cast<int64_t>(ux * uy);
    case BinOp::maximum: return x > y ? x : y;
    case BinOp::minimum: return x < y ? x : y;
    case BinOp::pow: return int_pow<T>(x, y);
    default: return 0;
  }
}

__device__ __forceinline__ bool int_compare(BinOp op, int64_t x, int64_t y) {
  if (op == BinOp::logical_and) return x != 0 && y != 0;
  if (op == BinOp::logical_or) return x != 0 || y != 0;
  return apply_compare(op, x, y);
}

template <class T, class O>
__device__ __forceinline__ O int_binary_element(BinOp op, T a, T b, int64_t alpha) {
  const int64_t x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
  if constexpr (std::is_same_v<O, bool> && !std::is_same_v<T, bool>) {
    return int_compare(op, x, y);
  } else if constexpr (std::is_same_v<T, bool>) {
    // bool in, bool out: comparisons/logical ops, or arithmetic stored as != 0.
    return (op >= BinOp::eq && op <= BinOp::ge) || op == BinOp::logical_and || op == BinOp::logical_or
               ? int_compare(op, x, y)
               : store_as<bool>(int_arith<T>(op, x, y, alpha));
  } else {
    return store_as<O>(int_arith<T>(op, x, y, alpha));
  }
}

template <class T, class O>
__global__ void int_binary_contiguous(BinOp op, O* __restrict__ out, const T* __restrict__ a,
                                      const T* __restrict__ b, int64_t n, bool sa, bool sb, int64_t alpha) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    out[i] = int_binary_element<T, O>(op, a[sa ? 0 : i], b[sb ? 0 : i], alpha);
}

template <class T, class O>
__global__ void int_binary_strided(BinOp op, O* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                                   int64_t n, OffsetCalc calc, int64_t alpha) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[3];
    strided_offsets<3>(i, n, calc, off);
    out[off[0]] = int_binary_element<T, O>(op, a[off[1]], b[off[2]], alpha);
  }
}

template <class T, class O>
cudaError_t launch_int_binary(BinOp op, const ElementwiseArgs& g, int64_t alpha, cudaStream_t s) {
  auto* out = static_cast<O*>(g.out);
  auto* a = static_cast<const T*>(g.a);
  auto* b = static_cast<const T*>(g.b);
  if (g.contiguous)
    return launch(int_binary_contiguous<T, O>, g.numel, kThreads, 0, s, op, out, a, b, g.numel, g.scalar_a,
                  g.scalar_b, alpha);
  return launch(int_binary_strided<T, O>, g.numel, kThreads, 0, s, op, out, a, b, g.numel, g.calc, alpha);
}

bool writes_bool(BinOp op) { return is_comparison(op) || op == BinOp::logical_and || op == BinOp::logical_or; }

bool int_op_ok(BinOp op) {
  switch (op) {
    case BinOp::add:
    case BinOp::sub:
    case BinOp::mul:
    case BinOp::maximum:
    case BinOp::minimum:
    case BinOp::pow: return true;
    default: return writes_bool(op);
  }
}

template <class T>
cudaError_t int_binary_any(BinOp op, const ElementwiseArgs& g, int64_t alpha, cudaStream_t s) {
  if constexpr (std::is_same_v<T, bool>) {
    return launch_int_binary<bool, bool>(op, g, alpha, s);
  } else {
    if (writes_bool(op)) return launch_int_binary<T, bool>(op, g, alpha, s);
    return launch_int_binary<T, T>(op, g, alpha, s);
  }
}

// ---- unary integer ops

template <class T>
__device__ __forceinline__ T int_unary_element(UnOp op, T v) {
  const int64_t x = static_cast<int64_t>(v);
  const uint64_t ux = static_cast<uint64_t>(x);
  switch (op) {
    case UnOp::neg: return store_as<T>(static_cast<int64_t>(0 - ux));
    case UnOp::abs: return std::is_unsigned_v<T> ? v : store_as<T>(x < 0 ? static_cast<int64_t>(0 - ux) : x);
    case UnOp::sign: return store_as<T>((x > 0) - (x < 0));
    case UnOp::square: return store_as<T>(static_cast<int64_t>(ux * ux));
    case UnOp::relu: return x < 0 ? T(0) : v;
    default: return v;
  }
}

template <class T>
__global__ void int_unary_contiguous(UnOp op, T* __restrict__ out, const T* __restrict__ x, int64_t n, bool sx) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = int_unary_element<T>(op, x[sx ? 0 : i]);
}

template <class T>
__global__ void int_unary_strided(UnOp op, T* __restrict__ out, const T* __restrict__ x, int64_t n, OffsetCalc calc) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    strided_offsets<2>(i, n, calc, off);
    out[off[0]] = int_unary_element<T>(op, x[off[1]]);
  }
}

template <class T>
cudaError_t launch_int_unary(UnOp op, const ElementwiseArgs& g, cudaStream_t s) {
  auto* out = static_cast<T*>(g.out);
  auto* x = static_cast<const T*>(g.a);
  if (g.contiguous) return launch(int_unary_contiguous<T>, g.numel, kThreads, 0, s, op, out, x, g.numel, g.scalar_a);
  return launch(int_unary_strided<T>, g.numel, kThreads, 0, s, op, out, x, g.numel, g.calc);
}

// ---- predicates (bool out, any input type)

template <class T>
__device__ __forceinline__ bool predicate(PredOp op, T v) {
  if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case PredOp::logical_not: return v == T(0);
      case PredOp::isfinite: return true;
      default: return false;
    }
  } else {
    const auto x = widen(v);
    switch (op) {
      case PredOp::logical_not: return x == decltype(x)(0);
      case PredOp::isfinite: return isfinite(x);
      case PredOp::isnan: return x != x;
      case PredOp::isinf: return isinf(x);
    }
    return false;
  }
}

template <class T>
__global__ void predicate_contiguous(PredOp op, bool* __restrict__ out, const T* __restrict__ x, int64_t n, bool sx) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = predicate<T>(op, x[sx ? 0 : i]);
}

template <class T>
__global__ void predicate_strided(PredOp op, bool* __restrict__ out, const T* __restrict__ x, int64_t n,
                                  OffsetCalc calc) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    strided_offsets<2>(i, n, calc, off);
    out[off[0]] = predicate<T>(op, x[off[1]]);
  }
}

template <class T>
cudaError_t launch_predicate(PredOp op, const ElementwiseArgs& g, cudaStream_t s) {
  auto* out = static_cast<bool*>(g.out);
  auto* x = static_cast<const T*>(g.a);
  if (g.contiguous) return launch(predicate_contiguous<T>, g.numel, kThreads, 0, s, op, out, x, g.numel, g.scalar_a);
  return launch(predicate_strided<T>, g.numel, kThreads, 0, s, op, out, x, g.numel, g.calc);
}

// ---- clamp

template <class T>
__device__ __forceinline__ T clamp_element(T v, const ClampBounds& b) {
  if constexpr (std::is_integral_v<T>) {
    int64_t x = static_cast<int64_t>(v);
    if (b.has_lo && x < b.lo_i) x = b.lo_i;
    if (b.has_hi && x > b.hi_i) x = b.hi_i;
    return static_cast<T>(x);
  } else {
    using C = acc_t<T>;
    C x = widen(v);
    if (b.has_lo && x < static_cast<C>(b.lo_f)) x = static_cast<C>(b.lo_f);  // NaN: both tests false
    if (b.has_hi && x > static_cast<C>(b.hi_f)) x = static_cast<C>(b.hi_f);
    return narrow<T>(x);
  }
}

template <class T>
__global__ void clamp_contiguous(T* __restrict__ out, const T* __restrict__ x, int64_t n, bool sx, ClampBounds b) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = clamp_element<T>(x[sx ? 0 : i], b);
}

template <class T>
__global__ void clamp_strided(T* __restrict__ out, const T* __restrict__ x, int64_t n, OffsetCalc calc,
                              ClampBounds b) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    strided_offsets<2>(i, n, calc, off);
    out[off[0]] = clamp_element<T>(x[off[1]], b);
  }
}

template <class T>
cudaError_t launch_clamp(const ElementwiseArgs& g, const ClampBounds& b, cudaStream_t s) {
  auto* out = static_cast<T*>(g.out);
  auto* x = static_cast<const T*>(g.a);
  if (g.contiguous) return launch(clamp_contiguous<T>, g.numel, kThreads, 0, s, out, x, g.numel, g.scalar_a, b);
  return launch(clamp_strided<T>, g.numel, kThreads, 0, s, out, x, g.numel, g.calc, b);
}

// ---- where on raw element bits

struct WhereCalc {
  OffsetCalc c;
  int64_t cond_strides[kMaxDims];
};

template <class W>
__global__ void where_bits(W* __restrict__ out, const uint8_t* __restrict__ cond, const W* __restrict__ a,
                           const W* __restrict__ b, int64_t n, WhereCalc w) {
  const bool idx32 = fits_index32(n);
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t oo = 0, oa = 0, ob = 0, oc = 0;
    dim_indices(i, idx32, w.c.ndim, w.c.sizes, [&](int d, int64_t r) {
      oo += r * w.c.strides[0][d];
      oa += r * w.c.strides[1][d];
      ob += r * w.c.strides[2][d];
      oc += r * w.cond_strides[d];
    });
    out[oo] = cond[oc] ? a[oa] : b[ob];
  }
}

template <class W>
cudaError_t launch_where_bits(void* out, const uint8_t* cond, const void* a, const void* b, int64_t n,
                              const WhereCalc& w, cudaStream_t s) {
  return launch(where_bits<W>, n, kThreads, 0, s, static_cast<W*>(out), cond, static_cast<const W*>(a),
                static_cast<const W*>(b), n, w);
}

}  // namespace

cudaError_t binary_int(BinOp op, ElemType t, const ElementwiseArgs& args, int64_t alpha, cudaStream_t stream) {
  if (!int_op_ok(op)) return cudaErrorInvalidValue;
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case ElemType::i32: return int_binary_any<int32_t>(op, args, alpha, stream);
    case ElemType::i64: return int_binary_any<int64_t>(op, args, alpha, stream);
    case ElemType::u8: return int_binary_any<uint8_t>(op, args, alpha, stream);
    case ElemType::boolean: return int_binary_any<bool>(op, args, alpha, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t unary_int(UnOp op, ElemType t, const ElementwiseArgs& args, cudaStream_t stream) {
  switch (op) {
    case UnOp::neg:
    case UnOp::abs:
    case UnOp::sign:
    case UnOp::square:
    case UnOp::relu: break;
    default: return cudaErrorInvalidValue;
  }
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case ElemType::i32: return launch_int_unary<int32_t>(op, args, stream);
    case ElemType::i64: return launch_int_unary<int64_t>(op, args, stream);
    case ElemType::u8: return launch_int_unary<uint8_t>(op, args, stream);
    case ElemType::boolean: return launch_int_unary<bool>(op, args, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t unary_predicate(PredOp op, ElemType t, const ElementwiseArgs& args, cudaStream_t stream) {
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case ElemType::f32: return launch_predicate<float>(op, args, stream);
    case ElemType::f64: return launch_predicate<double>(op, args, stream);
    case ElemType::f16: return launch_predicate<__half>(op, args, stream);
    case ElemType::bf16: return launch_predicate<__nv_bfloat16>(op, args, stream);
    case ElemType::i32: return launch_predicate<int32_t>(op, args, stream);
    case ElemType::i64: return launch_predicate<int64_t>(op, args, stream);
    case ElemType::u8: return launch_predicate<uint8_t>(op, args, stream);
    case ElemType::boolean: return launch_predicate<bool>(op, args, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t clamp(ElemType t, const ElementwiseArgs& args, const ClampBounds& b, cudaStream_t stream) {
  if (args.numel == 0) return cudaSuccess;
  switch (t) {
    case ElemType::f32: return launch_clamp<float>(args, b, stream);
    case ElemType::f64: return launch_clamp<double>(args, b, stream);
    case ElemType::f16: return launch_clamp<__half>(args, b, stream);
    case ElemType::bf16: return launch_clamp<__nv_bfloat16>(args, b, stream);
    case ElemType::i32: return launch_clamp<int32_t>(args, b, stream);
    case ElemType::i64: return launch_clamp<int64_t>(args, b, stream);
    case ElemType::u8: return launch_clamp<uint8_t>(args, b, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t where_bytes(int element_size, void* out, const uint8_t* cond, const void* a, const void* b, int64_t numel,
                        const OffsetCalc& calc, const int64_t* cond_strides, cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  WhereCalc w;
  w.c = calc;
  for (int d = 0; d < kMaxDims; ++d) w.cond_strides[d] = d < calc.ndim ? cond_strides[d] : 0;
  switch (element_size) {
    case 1: return launch_where_bits<uint8_t>(out, cond, a, b, numel, w, stream);
    case 2: return launch_where_bits<uint16_t>(out, cond, a, b, numel, w, stream);
    case 4: return launch_where_bits<uint32_t>(out, cond, a, b, numel, w, stream);
    case 8: return launch_where_bits<uint64_t>(out, cond, a, b, numel, w, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace ember::cuda_backend::kernels
