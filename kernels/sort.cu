// Row sorting (sort, argsort, topk) and multinomial sampling.
//
// Sorting: every element becomes an unsigned key whose integer order is the CPU's order
// (src/cpu/sort.cpp): floats have their sign bit flipped (negative numbers: all bits), after
// -0 is made +0 and every NaN the one canonical quiet NaN, which then sorts above +inf;
// signed integers have their sign bit flipped; descending order complements the keys. The
// (key, position) pairs of each row are sorted by cub::DeviceSegmentedSort::StableSortPairs,
// so equal keys keep position order in both directions, as the CPU's comparator does. The
// values are then copied from the input through the permutation (bit for bit).
//
// Multinomial: the CPU's draws exactly: draw d of the stream uses words (d % 2)·2 and +1 of
// Philox(seed, offset + d / 2); with replacement one thread per row builds the double prefix
// sum sequentially (the CPU's std::partial_sum) and samples by upper bound; without
// replacement the Efraimidis–Spirakis keys are computed here and sorted by the caller.
#include <cub/device/device_segmented_sort.cuh>

#include "common.cuh"
#include "cuda/kernels.hpp"
#include "ember/core/generator.hpp"

namespace ember::cuda_backend::kernels {
namespace {

template <class K>
struct KeyBits;
template <>
struct KeyBits<uint16_t> {
  static constexpr uint16_t sign = 0x8000u;
};
template <>
struct KeyBits<uint32_t> {
  static constexpr uint32_t sign = 0x80000000u;
};
template <>
struct KeyBits<uint64_t> {
  static constexpr uint64_t sign = 0x8000000000000000ull;
};

// Order-preserving key of a float's bits: (exp_mask, mantissa_mask) identify NaN and the
// canonical NaN is exp_mask | quiet bit.
template <class K>
__device__ __forceinline__ K float_key(K bits, K exp_mask, K mant_mask, K quiet) {
  const K sign = KeyBits<K>::sign;
  if ((bits & exp_mask) == exp_mask && (bits & mant_mask) != 0) bits = exp_mask | quiet;  // any NaN
  if ((bits & static_cast<K>(~sign)) == 0) bits = 0;                                      // -0 → +0
  return (bits & sign) ? static_cast<K>(~bits) : static_cast<K>(bits | sign);
}

template <class E, class K>
__device__ __forceinline__ K key_of(E v);
template <>
__device__ __forceinline__ uint32_t key_of<float, uint32_t>(float v) {
  return float_key<uint32_t>(__float_as_uint(v), 0x7f800000u, 0x007fffffu, 0x00400000u);
}
template <>
__device__ __forceinline__ uint64_t key_of<double, uint64_t>(double v) {
  return float_key<uint64_t>(static_cast<uint64_t>(__double_as_longlong(v)), 0x7ff0000000000000ull,
                             0x000fffffffffffffull, 0x0008000000000000ull);
}
// f16 and bf16 arrive as their raw bits (uint16 tags below).
struct HalfBits {
  uint16_t b;
};
struct BFloatBits {
  uint16_t b;
};
template <>
__device__ __forceinline__ uint16_t key_of<HalfBits, uint16_t>(HalfBits v) {
  return float_key<uint16_t>(v.b, 0x7c00u, 0x03ffu, 0x0200u);
}
template <>
__device__ __forceinline__ uint16_t key_of<BFloatBits, uint16_t>(BFloatBits v) {
  return float_key<uint16_t>(v.b, 0x7f80u, 0x007fu, 0x0040u);
}
template <>
__device__ __forceinline__ uint32_t key_of<int32_t, uint32_t>(int32_t v) {
  return static_cast<uint32_t>(v) ^ 0x80000000u;
}
template <>
__device__ __forceinline__ uint64_t key_of<int64_t, uint64_t>(int64_t v) {
  return static_cast<uint64_t>(v) ^ 0x8000000000000000ull;
}
template <>
__device__ __forceinline__ uint16_t key_of<uint8_t, uint16_t>(uint8_t v) {
  return v;  // u8 and bool (0/1)
}

template <class E, class K>
__global__ void make_keys(const E* __restrict__ x, K* __restrict__ keys, int64_t* __restrict__ pos, int64_t total,
                          int64_t n, bool descending) {
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const K k = key_of<E, K>(x[t]);
    keys[t] = descending ? static_cast<K>(~k) : k;
    pos[t] = t % n;
  }
}

__global__ void row_offsets(int64_t* __restrict__ offsets, int64_t rows, int64_t n) {
  for (int64_t r = global_thread(); r <= rows; r += grid_threads()) offsets[r] = r * n;
}

// values[r, j] = x[r, indices[r, j]] for elements of E's size.
template <class E>
__global__ void permute_rows(const E* __restrict__ x, E* __restrict__ values, const int64_t* __restrict__ indices,
                             int64_t total, int64_t n) {
  for (int64_t t = global_thread(); t < total; t += grid_threads()) values[t] = x[t - t % n + indices[t]];
}

void* aligned_scratch(ScratchAlloc alloc, void* ctx, size_t bytes) { return alloc(ctx, bytes == 0 ? 16 : bytes); }

template <class E, class K, class Raw>
cudaError_t sort_typed(const void* x_raw, void* values, int64_t* indices, int64_t rows, int64_t n, bool descending,
                       ScratchAlloc alloc, void* ctx, cudaStream_t stream) {
  const int64_t total = rows * n;
  const E* x = static_cast<const E*>(x_raw);
  K* keys_in = static_cast<K*>(aligned_scratch(alloc, ctx, sizeof(K) * total));
  K* keys_out = static_cast<K*>(aligned_scratch(alloc, ctx, sizeof(K) * total));
  int64_t* pos = static_cast<int64_t*>(aligned_scratch(alloc, ctx, sizeof(int64_t) * total));
  int64_t* offsets = static_cast<int64_t*>(aligned_scratch(alloc, ctx, sizeof(int64_t) * (rows + 1)));
  if (!keys_in || !keys_out || !pos || !offsets) return cudaErrorMemoryAllocation;
  cudaError_t st = launch(make_keys<E, K>, total, kThreads, 0, stream, x, keys_in, pos, total, n, descending);
  if (st != cudaSuccess) return st;
  st = launch(row_offsets, rows + 1, kThreads, 0, stream, offsets, rows, n);
  if (st != cudaSuccess) return st;
  size_t temp_bytes = 0;
  st = cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, keys_in, keys_out, pos, indices, total, rows,
                                                 offsets, offsets + 1, stream);
  if (st != cudaSuccess) return st;
  void* temp = aligned_scratch(alloc, ctx, temp_bytes);
  if (!temp) return cudaErrorMemoryAllocation;
  st = cub::DeviceSegmentedSort::StableSortPairs(temp, temp_bytes, keys_in, keys_out, pos, indices, total, rows,
                                                 offsets, offsets + 1, stream);
  if (st != cudaSuccess) return st;
  return launch(permute_rows<Raw>, total, kThreads, 0, stream, static_cast<const Raw*>(x_raw),
                static_cast<Raw*>(values), indices, total, n);
}

// ------------------------------------------------------------------ multinomial

__device__ __forceinline__ double draw_uniform(uint64_t seed, uint64_t offset, int64_t draw) {
  uint32_t w[4];
  Philox::generate(seed, offset + static_cast<uint64_t>(draw / 2), 0, w);
  const int lane = static_cast<int>(draw % 2) * 2;
  return Philox::uniform_double(w[lane], w[lane + 1]);
}

__global__ void validate_kernel(const double* __restrict__ w, int64_t rows, int64_t cats, int64_t samples,
                                bool replacement, int32_t* __restrict__ status) {
  for (int64_t r = global_thread(); r < rows; r += grid_threads()) {
    const double* row = w + r * cats;
    double total = 0;
    int64_t nonzero = 0;
    int32_t s = 0;
    for (int64_t c = 0; c < cats; ++c) {
      const double p = row[c];
      if (!(isfinite(p) && p >= 0)) {
        s = 1;
        break;
      }
      total += p;
      nonzero += p > 0;
    }
    if (s == 0 && !(total > 0)) s = 2;
    if (s == 0 && !replacement && samples > nonzero) s = 3;
    status[r] = s;
  }
}

__global__ void with_replacement_kernel(const double* __restrict__ w, double* __restrict__ cdf, int64_t rows,
                                        int64_t cats, int64_t samples, uint64_t seed, uint64_t offset,
                                        int64_t* __restrict__ out) {
  for (int64_t r = global_thread(); r < rows; r += grid_threads()) {
    const double* row = w + r * cats;
    double* c = cdf + r * cats;
    double acc = 0;
    int64_t last = 0;
    for (int64_t k = 0; k < cats; ++k) {
      acc += row[k];
      c[k] = acc;
      if (row[k] != 0) last = k;
    }
    const double total = acc;
    for (int64_t s = 0; s < samples; ++s) {
      const double target = draw_uniform(seed, offset, r * samples + s) * total;
      // upper bound: the first k with c[k] > target
      int64_t lo = 0, hi = cats;
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (c[mid] > target)
          hi = mid;
        else
          lo = mid + 1;
      }
      out[r * samples + s] = lo < last ? lo : last;
    }
  }
}

__global__ void keys_kernel(const double* __restrict__ w, int64_t total, int64_t cats, uint64_t seed, uint64_t offset,
                            double* __restrict__ keys) {
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const double u = 1.0 - draw_uniform(seed, offset, t);  // draw r·cats + c, in (0, 1]
    keys[t] = w[t] > 0 ? log(u) / w[t] : -plus_inf<double>();
  }
  (void)cats;
}

}  // namespace

cudaError_t sort_rows(ElemType t, const void* x, void* values, int64_t* indices, int64_t rows, int64_t n,
                      bool descending, ScratchAlloc alloc, void* alloc_ctx, cudaStream_t stream) {
  if (rows * n == 0) return cudaSuccess;
  switch (t) {
    case ElemType::f32:
      return sort_typed<float, uint32_t, uint32_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx, stream);
    case ElemType::f64:
      return sort_typed<double, uint64_t, uint64_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx, stream);
    case ElemType::f16:
      return sort_typed<HalfBits, uint16_t, uint16_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx,
                                                      stream);
    case ElemType::bf16:
      return sort_typed<BFloatBits, uint16_t, uint16_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx,
                                                        stream);
    case ElemType::i32:
      return sort_typed<int32_t, uint32_t, uint32_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx, stream);
    case ElemType::i64:
      return sort_typed<int64_t, uint64_t, uint64_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx, stream);
    case ElemType::u8:
    case ElemType::boolean:
      return sort_typed<uint8_t, uint16_t, uint8_t>(x, values, indices, rows, n, descending, alloc, alloc_ctx, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t multinomial_validate(const double* w, int64_t rows, int64_t cats, int64_t samples, bool replacement,
                                 int32_t* status, cudaStream_t stream) {
  return launch(validate_kernel, rows, kThreads, 0, stream, w, rows, cats, samples, replacement, status);
}

cudaError_t multinomial_with_replacement(const double* w, double* cdf, int64_t rows, int64_t cats, int64_t samples,
                                         uint64_t seed, uint64_t offset, int64_t* out, cudaStream_t stream) {
  return launch(with_replacement_kernel, rows, 128, 0, stream, w, cdf, rows, cats, samples, seed, offset, out);
}

cudaError_t multinomial_keys(const double* w, int64_t rows, int64_t cats, uint64_t seed, uint64_t offset, double* keys,
                             cudaStream_t stream) {
  return launch(keys_kernel, rows * cats, kThreads, 0, stream, w, rows * cats, cats, seed, offset, keys);
}

}  // namespace ember::cuda_backend::kernels
