// Private to the indexing, joining and sorting ops: argument checks they share.
#pragma once

#include "ember/backend/cpu.hpp"
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

}  // namespace ember::detail
