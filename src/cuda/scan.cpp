// Host side of cumsum and logsumexp on CUDA (kernels/scan.cu, kernels/logsumexp.cu): device and
// layout checks, the chunk count and its workspace, launches on the current stream. The op layer
// (src/ops/reduction.cpp) has validated the dims and dtypes and laid the input out as a contiguous
// (outer, size, inner) block.
#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"

namespace ember::cuda_backend {
namespace {

/// The device of `in` after checking it, with `out` on it; both contiguous.
int block_device(const char* op, const Tensor& in, const Tensor& out) {
  const int dev = in.device().index;
  check_device(dev, op);
  EMBER_CHECK(out.device() == in.device(), DeviceError, op, ": expected the output on ", in.device().str(),
              ", got one on ", out.device().str());
  EMBER_CHECK(in.is_contiguous() && out.is_contiguous(), ValueError, op,
              " on CUDA: expected a contiguous (outer, size, inner) input and output");
  return dev;
}

}  // namespace

void cumsum(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g, bool reverse) {
  const char* op = "cumsum";
  const int dev = block_device(op, in, out);
  const DType want = is_floating(in.dtype()) ? in.dtype() : kInt64;
  EMBER_CHECK(out.dtype() == want, DTypeError, op, " on CUDA: expected output dtype ", dtype_name(want),
              " for input dtype ", dtype_name(in.dtype()), ", got ", dtype_name(out.dtype()));
  if (g.outer * g.size * g.inner == 0) return;
  const int64_t splits = kernels::chunk_splits(g.outer, g.size, g.inner);
  DeviceGuard guard(dev);
  Tensor ws;  // chunk totals, alive until the kernels are enqueued
  if (splits > 1) ws = scratch(dev, g.outer * splits * g.inner * 8);
  EMBER_CUDA_CHECK(kernels::cumsum(kernel_elem_type(in.dtype()), out.data_ptr(), in.data_ptr(), g.outer, g.size,
                                   g.inner, reverse, splits, ptr_or_null(ws), current_stream(dev)));
}

void logsumexp(const Tensor& out, const Tensor& in, const cpu::ReduceGeom& g) {
  const char* op = "logsumexp";
  const int dev = block_device(op, in, out);
  const auto t = kernel_float_type(in.dtype());
  EMBER_CHECK(t.has_value(), DTypeError, op, " on CUDA: expected a floating-point input, got ",
              dtype_name(in.dtype()));
  EMBER_CHECK(out.dtype() == in.dtype(), DTypeError, op, " on CUDA: expected output dtype ", dtype_name(in.dtype()),
              ", got ", dtype_name(out.dtype()));
  if (g.outer * g.inner == 0) return;
  const int64_t splits = kernels::chunk_splits(g.outer, g.size, g.inner);
  DeviceGuard guard(dev);
  Tensor ws;  // chunk maxima and sums, alive until the kernels are enqueued
  if (splits > 1) ws = scratch(dev, kernels::logsumexp_workspace_bytes(g.outer, g.inner, splits));
  EMBER_CUDA_CHECK(kernels::logsumexp(*t, out.data_ptr(), in.data_ptr(), g.outer, g.size, g.inner, splits,
                                      ptr_or_null(ws), current_stream(dev)));
}

}  // namespace ember::cuda_backend
