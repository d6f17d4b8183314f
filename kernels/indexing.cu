// Gathering and scattering along one dim of strided tensors: index_select and gather (a read at
// the indexed position, any element type, values copied bit for bit), index_add and
// scatter_add (atomic adds in f32, f64, i32, i64; the host accumulates 16-bit floats in an f32
// copy), and a deterministic embedding backward over sorted indices. Out-of-range indices never
// touch memory: they are recorded in a host-mapped IndexErrorRecord (first one wins) that the
// host reports later without having synchronised here (src/cuda/indexing.cpp).
#include "common.cuh"
#include "cuda/kernels.hpp"

namespace ember::cuda_backend::kernels {
namespace {

__device__ void record_bad_index(IndexErrorRecord* err, IndexOpCode op, int32_t dim, int64_t index, int64_t size) {
  if (err == nullptr) return;
  if (atomicCAS(&err->claimed, 0, 1) != 0) return;  // an earlier error is already recorded
  err->op = static_cast<int32_t>(op);
  err->dim = dim;
  err->index = index;
  err->size = size;
  __threadfence_system();
  *static_cast<volatile int32_t*>(&err->ready) = 1;
}

// Offsets of the element t of the iteration (row-major over g.sizes) in a, b and the index;
// a's offset leaves out dim (the caller adds index · a_strides[dim]). idx32 as in dim_indices.
struct Offsets {
  int64_t a, b, index;
};
__device__ __forceinline__ Offsets offsets_of(int64_t t, bool idx32, const IndexGeometry& g) {
  Offsets o{0, 0, 0};
  dim_indices(t, idx32, g.ndim, g.sizes, [&](int d, int64_t p) {
    if (d != g.dim) o.a += p * g.a_strides[d];
    o.b += p * g.b_strides[d];
    o.index += p * g.index_strides[d];
  });
  return o;
}

template <class E>
__global__ void indexed_read_kernel(const E* __restrict__ a, E* __restrict__ b, const int64_t* __restrict__ index,
                                    IndexGeometry g, int64_t total, IndexOpCode op, IndexErrorRecord* err) {
  const bool idx32 = fits_index32(total);
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const Offsets o = offsets_of(t, idx32, g);
    const int64_t i = index[o.index];
    if (i < 0 || i >= g.dim_size) {
      record_bad_index(err, op, g.dim, i, g.dim_size);
      b[o.b] = E{};
      continue;
    }
    b[o.b] = a[o.a + i * g.a_strides[g.dim]];
  }
}

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int32_t* p, int32_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  // Two's complement: an unsigned add wraps exactly as the CPU's int64 arithmetic.
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

template <class T>
__global__ void indexed_add_kernel(T* __restrict__ a, const T* __restrict__ b, const int64_t* __restrict__ index,
                                   IndexGeometry g, int64_t total, IndexOpCode op, IndexErrorRecord* err) {
  const bool idx32 = fits_index32(total);
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const Offsets o = offsets_of(t, idx32, g);
    const int64_t i = index[o.index];
    if (i < 0 || i >= g.dim_size) {
      record_bad_index(err, op, g.dim, i, g.dim_size);
      continue;
    }
    atomic_add(a + o.a + i * g.a_strides[g.dim], b[o.b]);
  }
}

// Thread (j, c): when j starts a run of equal sorted indices, sums column c of the gradient
// rows of the run in sorted (= position) order and adds the sum to gw[index, c].
template <class T>
__global__ void embedding_backward_kernel(T* __restrict__ gw, const T* __restrict__ g,
                                          const int64_t* __restrict__ sorted_idx, const int64_t* __restrict__ order,
                                          int64_t n, int64_t rows, int64_t cols, IndexErrorRecord* err) {
  const int64_t total = n * cols;
  for (int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int64_t j = t / cols, c = t % cols;
    const int64_t r = sorted_idx[j];
    if (j > 0 && sorted_idx[j - 1] == r) continue;  // not the start of a run
    if (r < 0 || r >= rows) {
      if (c == 0) record_bad_index(err, IndexOpCode::embedding, 0, r, rows);
      continue;
    }
    T acc = gw[r * cols + c];
    for (int64_t k = j; k < n && sorted_idx[k] == r; ++k) acc += g[order[k] * cols + c];
    gw[r * cols + c] = acc;
  }
}

int64_t total_of(const IndexGeometry& g) {
  int64_t n = 1;
  for (int d = 0; d < g.ndim; ++d) n *= g.sizes[d];
  return n;
}

}  // namespace

cudaError_t indexed_read(int element_size, const void* a, void* b, const int64_t* index, const IndexGeometry& g,
                         IndexOpCode op, IndexErrorRecord* err, cudaStream_t stream) {
  const int64_t total = total_of(g);
  switch (element_size) {
    case 1:
      return launch(indexed_read_kernel<uint8_t>, total, kThreads, 0, stream, static_cast<const uint8_t*>(a),
                    static_cast<uint8_t*>(b), index, g, total, op, err);
    case 2:
      return launch(indexed_read_kernel<uint16_t>, total, kThreads, 0, stream, static_cast<const uint16_t*>(a),
                    static_cast<uint16_t*>(b), index, g, total, op, err);
    case 4:
      return launch(indexed_read_kernel<uint32_t>, total, kThreads, 0, stream, static_cast<const uint32_t*>(a),
                    static_cast<uint32_t*>(b), index, g, total, op, err);
    case 8:
      return launch(indexed_read_kernel<uint64_t>, total, kThreads, 0, stream, static_cast<const uint64_t*>(a),
                    static_cast<uint64_t*>(b), index, g, total, op, err);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t indexed_add(ElemType t, void* a, const void* b, const int64_t* index, const IndexGeometry& g,
                        IndexOpCode op, IndexErrorRecord* err, cudaStream_t stream) {
  const int64_t total = total_of(g);
  switch (t) {
    case ElemType::f32:
      return launch(indexed_add_kernel<float>, total, kThreads, 0, stream, static_cast<float*>(a),
                    static_cast<const float*>(b), index, g, total, op, err);
    case ElemType::f64:
      return launch(indexed_add_kernel<double>, total, kThreads, 0, stream, static_cast<double*>(a),
                    static_cast<const double*>(b), index, g, total, op, err);
    case ElemType::i32:
      return launch(indexed_add_kernel<int32_t>, total, kThreads, 0, stream, static_cast<int32_t*>(a),
                    static_cast<const int32_t*>(b), index, g, total, op, err);
    case ElemType::i64:
      return launch(indexed_add_kernel<int64_t>, total, kThreads, 0, stream, static_cast<int64_t*>(a),
                    static_cast<const int64_t*>(b), index, g, total, op, err);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t embedding_backward_sorted(FloatType t, void* gw, const void* g, const int64_t* sorted_idx,
                                      const int64_t* order, int64_t n, int64_t rows, int64_t cols,
                                      IndexErrorRecord* err, cudaStream_t stream) {
  switch (t) {
    case FloatType::f32:
      return launch(embedding_backward_kernel<float>, n * cols, kThreads, 0, stream, static_cast<float*>(gw),
                    static_cast<const float*>(g), sorted_idx, order, n, rows, cols, err);
    case FloatType::f64:
      return launch(embedding_backward_kernel<double>, n * cols, kThreads, 0, stream, static_cast<double*>(gw),
                    static_cast<const double*>(g), sorted_idx, order, n, rows, cols, err);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace ember::cuda_backend::kernels
