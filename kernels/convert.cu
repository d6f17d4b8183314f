// Conversion between any two element types on one device (Tensor::to(dtype) and mixed-dtype
// copies on CUDA tensors). Per (source, destination) pair: a strided kernel and a contiguous
// one (the Tensor::to(dtype) case, vectorised by four elements).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

// Bool is stored as one byte holding 0 or 1; a tag type keeps it apart from u8.
struct Bool8 {
  uint8_t v;
};

template <class T>
struct Wide {  // what a value is read as before conversion
  using type = T;
};
template <>
struct Wide<__half> {
  using type = float;
};
template <>
struct Wide<__nv_bfloat16> {
  using type = float;
};

template <class S>
__device__ __forceinline__ auto load_wide(const S* p) {
  if constexpr (sizeof(S) == 2 && !std::is_integral_v<S>)
    return widen(*p);
  else if constexpr (std::is_same_v<S, Bool8>)
    return static_cast<int32_t>(p->v);
  else
    return *p;
}

template <class D, class V>
__device__ __forceinline__ void store_from(D* p, V v) {
  if constexpr (std::is_same_v<D, Bool8>)
    p->v = static_cast<uint8_t>(v != V(0));
  else if constexpr (std::is_same_v<D, __half>)
    *p = __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<D, __nv_bfloat16>)
    *p = __float2bfloat16_rn(static_cast<float>(v));
  else
    *p = static_cast<D>(v);
}

template <class D, class S>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n, StridedGeometry g) {
  const bool idx32 = fits_index32(n);
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t od, os;
    copy_offsets(i, idx32, g, od, os);
    store_from(dst + od, load_wide(src + os));
  }
}

/// Both sides contiguous: no offset arithmetic (a 64-bit division per element and dimension in
/// convert_kernel), and four elements per vector access when both pointers allow it.
template <class D, class S>
__global__ void convert_contiguous(D* __restrict__ dst, const S* __restrict__ src, int64_t n, bool vectorised) {
  const int64_t nvec = vectorised ? n / 4 : 0;
  for (int64_t i = global_thread(); i < nvec; i += grid_threads()) {
    const Vec<S, 4> sv = reinterpret_cast<const Vec<S, 4>*>(src)[i];
    Vec<D, 4> dv;
#pragma unroll
    for (int k = 0; k < 4; ++k) store_from(&dv.v[k], load_wide(&sv.v[k]));
    reinterpret_cast<Vec<D, 4>*>(dst)[i] = dv;
  }
  for (int64_t i = nvec * 4 + global_thread(); i < n; i += grid_threads()) store_from(dst + i, load_wide(src + i));
}

template <class D, class S>
cudaError_t launch_convert(void* dst, const void* src, int64_t n, const StridedGeometry& g, cudaStream_t s) {
  if (g.ndim == 1 && g.dst_strides[0] == 1 && g.src_strides[0] == 1) {
    const bool vec = reinterpret_cast<uintptr_t>(dst) % (4 * sizeof(D)) == 0 &&
                     reinterpret_cast<uintptr_t>(src) % (4 * sizeof(S)) == 0;
    return launch(convert_contiguous<D, S>, vec ? (n + 3) / 4 : n, kThreads, 0, s, static_cast<D*>(dst),
                  static_cast<const S*>(src), n, vec);
  }
  return launch(convert_kernel<D, S>, n, kThreads, 0, s, static_cast<D*>(dst), static_cast<const S*>(src), n, g);
}

template <class D>
cudaError_t convert_from(ElemType st, void* dst, const void* src, int64_t n, const StridedGeometry& g, cudaStream_t s) {
  switch (st) {
    case ElemType::f32: return launch_convert<D, float>(dst, src, n, g, s);
    case ElemType::f64: return launch_convert<D, double>(dst, src, n, g, s);
    case ElemType::f16: return launch_convert<D, __half>(dst, src, n, g, s);
    case ElemType::bf16: return launch_convert<D, __nv_bfloat16>(dst, src, n, g, s);
    case ElemType::i32: return launch_convert<D, int32_t>(dst, src, n, g, s);
    case ElemType::i64: return launch_convert<D, int64_t>(dst, src, n, g, s);
    case ElemType::u8: return launch_convert<D, uint8_t>(dst, src, n, g, s);
    case ElemType::boolean: return launch_convert<D, Bool8>(dst, src, n, g, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t convert(void* dst, ElemType dt, const void* src, ElemType st, int64_t n, const StridedGeometry& g,
                    cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  switch (dt) {
    case ElemType::f32: return convert_from<float>(st, dst, src, n, g, s);
    case ElemType::f64: return convert_from<double>(st, dst, src, n, g, s);
    case ElemType::f16: return convert_from<__half>(st, dst, src, n, g, s);
    case ElemType::bf16: return convert_from<__nv_bfloat16>(st, dst, src, n, g, s);
    case ElemType::i32: return convert_from<int32_t>(st, dst, src, n, g, s);
    case ElemType::i64: return convert_from<int64_t>(st, dst, src, n, g, s);
    case ElemType::u8: return convert_from<uint8_t>(st, dst, src, n, g, s);
    case ElemType::boolean: return convert_from<Bool8>(st, dst, src, n, g, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ember::cuda_backend::kernels
