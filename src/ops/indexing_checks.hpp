// Private to the indexing, joining and sorting ops: argument checks they share.
#pragma once

#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/tensor.hpp"

namespace ember::detail {

/// NotImplemented for CUDA tensors: these ops have only a CPU backend so far.
inline void check_cpu(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, op, ": got an undefined tensor");
  EMBER_CHECK(t.is_cpu(), NotImplemented, op, ": CUDA tensors are not supported yet (got a tensor on ",
              t.device().str(), ")");
}

/// DTypeError unless `index` is int32 or int64.
inline void check_index_dtype(const Tensor& index, const char* op, const char* what = "index") {
  EMBER_CHECK(index.dtype() == kInt32 || index.dtype() == kInt64, DTypeError, op, ": ", what,
              " must be an int32 or int64 tensor, got ", dtype_name(index.dtype()));
}

/// IndexError unless every value of `index` lies in [0, size).
inline void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t dim) {
  auto [lo, hi] = cpu::index_min_max(index);
  if (index.numel() == 0) return;
  EMBER_CHECK(lo >= 0, IndexError, op, ": index ", lo, " is out of bounds for dimension ", dim, " with size ", size);
  EMBER_CHECK(hi < size, IndexError, op, ": index ", hi, " is out of bounds for dimension ", dim, " with size ", size);
}

/// The index for a CUDA op on `x`'s device as int64: a CPU index is range-checked on the host
/// (exact, immediate IndexError as on the CPU) and copied over; an index already on x's device
/// is converted to int64 there and its range is checked by the kernel (reported lazily: see
/// cuda_backend::check_index_errors). An index on another CUDA device is a DeviceError.
inline Tensor device_index(const Tensor& index, const Tensor& x, int64_t size, const char* op, int64_t dim) {
  if (index.is_cpu()) {
    check_index_range(index, size, op, dim);
    return index.to(kInt64).contiguous().to(x.device());
  }
  EMBER_CHECK(index.device() == x.device(), DeviceError, op, ": the index is on ", index.device().str(),
              " but the input is on ", x.device().str());
  return index.dtype() == kInt64 ? index : index.to(kInt64);
}

/// Device dispatch of the kernels the indexing ops and their backwards share.
inline void index_add_any(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  if (out.is_cuda())
    cuda_backend::index_add(out, dim, index, src);
  else
    cpu::index_add(out, dim, index, src);
}
inline void gather_any(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  if (x.is_cuda())
    cuda_backend::gather(out, x, dim, index);
  else
    cpu::gather(out, x, dim, index);
}
inline void scatter_add_any(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  if (out.is_cuda())
    cuda_backend::scatter_add(out, dim, index, src);
  else
    cpu::scatter_add(out, dim, index, src);
}

}  // namespace ember::detail
