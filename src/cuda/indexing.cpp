// Host side of the CUDA indexing, sorting, sampling and LayerNorm ops (kernels/indexing.cu,
// sort.cu, layer_norm.cu): geometry, accumulation copies for types without atomics, scratch
// memory, and the lazily reported index errors.
//
// Index errors: a kernel that meets an index outside its range skips it (reads give zero,
// adds add nothing) and records the first one in a per-device record in host-mapped memory.
// Reading that record needs no synchronisation, so no op waits for the device: every CUDA
// indexing op starts by reporting (IndexError) a record that an earlier kernel has completed,
// and check_index_errors(device, true) waits for the device and reports. Index tensors that
// are on the CPU are range-checked on the host before the launch (exact, immediate errors).
#include <cuda_runtime.h>

#include <cmath>
#include <mutex>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"

namespace ember::cuda_backend {
namespace {

using kernels::IndexErrorRecord;
using kernels::IndexGeometry;
using kernels::IndexOpCode;

kernels::FloatType float_of(DType d, const char* op) {
  if (const auto t = kernel_float_type(d)) return *t;
  EMBER_THROW(DTypeError, op, " on CUDA: expected a floating-point tensor (float32, float64, float16, bfloat16), got ",
              dtype_name(d));
}

std::mutex g_records_mutex;
IndexErrorRecord* g_records[kMaxDevices] = {};

/// The device's error record (host pointer; UVA makes it valid on the device too).
IndexErrorRecord* error_record(int dev) {
  std::lock_guard<std::mutex> lock(g_records_mutex);
  if (g_records[dev] == nullptr) {
    DeviceGuard guard(dev);
    void* p = nullptr;
    EMBER_CUDA_CHECK(cudaHostAlloc(&p, sizeof(IndexErrorRecord), cudaHostAllocMapped | cudaHostAllocPortable));
    *static_cast<IndexErrorRecord*>(p) = IndexErrorRecord{};
    g_records[dev] = static_cast<IndexErrorRecord*>(p);
  }
  return g_records[dev];
}

/// The record's device-side address.
IndexErrorRecord* device_record(int dev) {
  IndexErrorRecord* host = error_record(dev);
  void* d = nullptr;
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(cudaHostGetDevicePointer(&d, host, 0));
  return static_cast<IndexErrorRecord*>(d);
}

const char* op_name(int32_t code) {
  switch (static_cast<IndexOpCode>(code)) {
    case IndexOpCode::index_select: return "index_select";
    case IndexOpCode::gather: return "gather";
    case IndexOpCode::scatter_add: return "scatter_add";
    case IndexOpCode::index_add: return "index_add";
    case IndexOpCode::embedding: return "embedding";
  }
  return "indexing op";
}

/// Reports (and clears) a completed record of device `dev`.
void report_record(int dev) {
  IndexErrorRecord* r;
  {
    std::lock_guard<std::mutex> lock(g_records_mutex);
    r = g_records[dev];
  }
  if (r == nullptr) return;
  volatile IndexErrorRecord* v = r;
  if (v->ready == 0) return;
  const int32_t op = v->op, dim = v->dim;
  const int64_t index = v->index, size = v->size;
  v->ready = 0;
  v->claimed = 0;
  EMBER_THROW(IndexError, op_name(op), ": index ", index, " is out of bounds for dimension ", dim, " with size ", size,
              " (found on cuda:", dev, " by a kernel that has run since; the elements it indexed were skipped)");
}

int checked_device(const char* op, const Tensor& t, std::initializer_list<const Tensor*> others) {
  EMBER_CHECK(t.is_cuda(), DeviceError, op, ": expected a CUDA tensor, got one on ", t.device().str());
  const int dev = t.device().index;
  check_device(dev, op);
  for (const Tensor* o : others) {
    if (!o->defined()) continue;
    EMBER_CHECK(o->device() == t.device(), DeviceError, op, ": expected all tensors on ", t.device().str(),
                ", got one on ", o->device().str());
  }
  EMBER_CHECK(t.dim() <= kernels::kMaxDims, NotImplemented, op, " on CUDA: at most ", kernels::kMaxDims,
              " dimensions are supported, got ", t.dim());
  return dev;
}

void check_index(const char* op, const Tensor& index) {
  EMBER_CHECK(index.dtype() == kInt64, DTypeError, op, " on CUDA: the index must be int64 on the device, got ",
              dtype_name(index.dtype()));
}

/// Geometry over `sizes` with a = the indexed operand, b = the other, index strides given.
IndexGeometry geometry(const Shape& sizes, const Tensor& a, const Tensor& b, int64_t dim, int64_t dim_size) {
  IndexGeometry g;
  g.ndim = static_cast<int32_t>(sizes.size());
  g.dim = static_cast<int32_t>(dim);
  g.dim_size = dim_size;
  for (size_t d = 0; d < sizes.size(); ++d) {
    g.sizes[d] = sizes[d];
    g.a_strides[d] = a.stride(static_cast<int64_t>(d));
    g.b_strides[d] = b.stride(static_cast<int64_t>(d));
  }
  return g;
}

/// The dtype additions accumulate in: the tensor's own when the kernels have atomics for it,
/// else f32 (16-bit floats: one rounding at the end) or int64 (u8, bool: converted back with
/// the CPU's wrap-around / non-zero test).
DType accumulation_dtype(DType d) {
  switch (d) {
    case DType::f32:
    case DType::f64:
    case DType::i32:
    case DType::i64: return d;
    case DType::f16:
    case DType::bf16: return kFloat32;
    default: return kInt64;
  }
}

/// a[p with p[dim] = index] += b[p]: in place, or through an accumulation copy.
void indexed_add_any(const Tensor& out, const Tensor& src, const Tensor& index, IndexGeometry g, IndexOpCode op,
                     int dev) {
  const DType acc = accumulation_dtype(out.dtype());
  DeviceGuard guard(dev);
  IndexErrorRecord* err = device_record(dev);
  const auto* idx = static_cast<const int64_t*>(index.data_ptr());
  if (acc == out.dtype()) {
    EMBER_CUDA_CHECK(kernels::indexed_add(kernel_elem_type(acc), out.data_ptr(), src.data_ptr(), idx, g, op, err,
                                          current_stream(dev)));
    return;
  }
  Tensor a = empty(out.shape(), {.dtype = acc, .device = out.device()});
  Tensor b = empty(src.shape(), {.dtype = acc, .device = out.device()});
  copy(a, out);
  copy(b, src);
  for (int64_t d = 0; d < out.dim(); ++d) g.a_strides[d] = a.stride(d);
  for (int64_t d = 0; d < src.dim(); ++d) g.b_strides[d] = b.stride(d);
  EMBER_CUDA_CHECK(
      kernels::indexed_add(kernel_elem_type(acc), a.data_ptr(), b.data_ptr(), idx, g, op, err, current_stream(dev)));
  copy(out, a);
}

/// Scratch allocations for the sort: tensors kept in `ctx` (a std::vector<Tensor>) until the
/// caller returns (the allocator ties them to the current stream).
struct ScratchList {
  int dev;
  std::vector<Tensor> held;
};
void* alloc_scratch(void* ctx, size_t bytes) {
  auto* list = static_cast<ScratchList*>(ctx);
  const int64_t rounded = static_cast<int64_t>((bytes + 255) / 256 * 256);
  list->held.push_back(scratch(list->dev, rounded));
  return list->held.back().data_ptr();
}

}  // namespace

void check_index_errors(int device, bool synchronize) {
  check_device(device, "check_index_errors");
  if (synchronize) {
    DeviceGuard guard(device);
    EMBER_CUDA_HOST_SYNC(cudaDeviceSynchronize());
  }
  report_record(device);
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  const int dev = checked_device(op, x, {&out, &index});
  check_index(op, index);
  report_record(dev);
  IndexGeometry g = geometry(out.shape(), x, out, dim, x.size(dim));
  g.index_strides[dim] = index.dim() == 0 ? 0 : index.stride(0);
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::indexed_read(static_cast<int>(itemsize(x.dtype())), x.data_ptr(), out.data_ptr(),
                                         static_cast<const int64_t*>(index.data_ptr()), g, IndexOpCode::index_select,
                                         device_record(dev), current_stream(dev)));
}

void embedding(const Tensor& out, const Tensor& weight, const Tensor& indices) {
  const char* op = "embedding";
  const int dev = checked_device(op, weight, {&out, &indices});
  check_index(op, indices);
  report_record(dev);
  IndexGeometry g = geometry(out.shape(), weight, out, 0, weight.size(0));
  g.index_strides[0] = indices.stride(0);
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::indexed_read(static_cast<int>(itemsize(weight.dtype())), weight.data_ptr(), out.data_ptr(),
                                         static_cast<const int64_t*>(indices.data_ptr()), g, IndexOpCode::embedding,
                                         device_record(dev), current_stream(dev)));
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  const int dev = checked_device(op, x, {&out, &index});
  check_index(op, index);
  report_record(dev);
  IndexGeometry g = geometry(index.shape(), x, out, dim, x.size(dim));
  for (int64_t d = 0; d < index.dim(); ++d) g.index_strides[d] = index.stride(d);
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::indexed_read(static_cast<int>(itemsize(x.dtype())), x.data_ptr(), out.data_ptr(),
                                         static_cast<const int64_t*>(index.data_ptr()), g, IndexOpCode::gather,
                                         device_record(dev), current_stream(dev)));
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  const int dev = checked_device(op, out, {&src, &index});
  check_index(op, index);
  EMBER_CHECK(src.dtype() == out.dtype(), DTypeError, op, " on CUDA: src dtype ", dtype_name(src.dtype()),
              " must equal the output dtype ", dtype_name(out.dtype()));
  report_record(dev);
  if (index.numel() == 0) return;
  IndexGeometry g = geometry(index.shape(), out, src, dim, out.size(dim));
  for (int64_t d = 0; d < index.dim(); ++d) g.index_strides[d] = index.stride(d);
  indexed_add_any(out, src, index, g, IndexOpCode::scatter_add, dev);
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "index_add";
  const int dev = checked_device(op, out, {&src, &index});
  check_index(op, index);
  EMBER_CHECK(src.dtype() == out.dtype(), DTypeError, op, " on CUDA: src dtype ", dtype_name(src.dtype()),
              " must equal the output dtype ", dtype_name(out.dtype()));
  report_record(dev);
  if (src.numel() == 0) return;
  IndexGeometry g = geometry(src.shape(), out, src, dim, out.size(dim));
  g.index_strides[dim] = index.dim() == 0 ? 0 : index.stride(0);
  indexed_add_any(out, src, index, g, IndexOpCode::index_add, dev);
}

void embedding_backward(const Tensor& grad_weight, const Tensor& indices, const Tensor& grad) {
  const char* op = "embedding backward";
  const int dev = checked_device(op, grad_weight, {&indices, &grad});
  check_index(op, indices);
  const kernels::FloatType ft = float_of(grad_weight.dtype(), op);
  EMBER_CHECK(grad_weight.dim() == 2 && grad_weight.is_contiguous() && grad.dtype() == grad_weight.dtype(), ValueError,
              op, " on CUDA: expected a contiguous 2-d weight gradient and a gradient of its dtype");
  report_record(dev);
  const int64_t n = indices.numel(), rows = grad_weight.size(0), cols = grad_weight.size(1);
  if (n == 0 || cols == 0) return;
  DeviceGuard guard(dev);
  // Sort the indices stably with their positions: each row then sums its gradient rows in
  // position order, deterministic and in the CPU's order.
  Tensor flat = indices.reshape({1, n}).contiguous();
  Tensor sorted = empty({1, n}, {.dtype = kInt64, .device = grad_weight.device()});
  Tensor order = empty({1, n}, {.dtype = kInt64, .device = grad_weight.device()});
  sort_rows(sorted, order, flat, false);
  const bool native = ft == kernels::FloatType::f32 || ft == kernels::FloatType::f64;
  Tensor gw = native ? grad_weight : empty(grad_weight.shape(), {.dtype = kFloat32, .device = grad_weight.device()});
  Tensor g = grad.reshape({n, cols});
  if (native) {
    g = g.contiguous();
  } else {
    Tensor g32 = empty({n, cols}, {.dtype = kFloat32, .device = grad_weight.device()});
    copy(g32, g);
    copy(gw, grad_weight);
    g = g32;
  }
  EMBER_CUDA_CHECK(kernels::embedding_backward_sorted(native ? ft : kernels::FloatType::f32, gw.data_ptr(),
                                                      g.data_ptr(), static_cast<const int64_t*>(sorted.data_ptr()),
                                                      static_cast<const int64_t*>(order.data_ptr()), n, rows, cols,
                                                      device_record(dev), current_stream(dev)));
  if (!native) copy(grad_weight, gw);
}

void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, bool descending) {
  const char* op = "sort";
  const int dev = checked_device(op, x, {&values, &indices});
  EMBER_CHECK(x.is_contiguous() && values.is_contiguous() && indices.is_contiguous() && indices.dtype() == kInt64 &&
                  values.dtype() == x.dtype() && values.numel() == x.numel() && indices.numel() == x.numel(),
              ValueError, op, " on CUDA: expected contiguous rows, values of the input's dtype and int64 indices");
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  if (x.numel() == 0) return;
  const int64_t rows = x.numel() / n;
  EMBER_CHECK(x.numel() < (int64_t{1} << 31), NotImplemented, op, " on CUDA: at most 2^31 - 1 elements, got ",
              x.numel());
  DeviceGuard guard(dev);
  ScratchList list{dev, {}};
  EMBER_CUDA_CHECK(kernels::sort_rows(kernel_elem_type(x.dtype()), x.data_ptr(), values.data_ptr(),
                                      static_cast<int64_t*>(indices.data_ptr()), rows, n, descending, alloc_scratch,
                                      &list, current_stream(dev)));
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen) {
  const char* op = "multinomial";
  const int dev = checked_device(op, probs, {});
  EMBER_CHECK(probs.dim() == 2, ShapeError, op, " on CUDA: expected 2-d (rows, categories) probabilities");
  const int64_t rows = probs.size(0), cats = probs.size(1);
  DeviceGuard guard(dev);
  const Device d = probs.device();
  Tensor w = empty({rows, cats}, {.dtype = kFloat64, .device = d});
  copy(w, probs);
  // Validation as the CPU's: one small copy back (a synchronisation) so that bad rows are
  // reported here, with the CPU's messages.
  Tensor status = empty({rows}, {.dtype = kInt32, .device = d});
  EMBER_CUDA_CHECK(kernels::multinomial_validate(static_cast<const double*>(w.data_ptr()), rows, cats, num_samples,
                                                 replacement, static_cast<int32_t*>(status.data_ptr()),
                                                 current_stream(dev)));
  const std::vector<int32_t> st = status.cpu().to_vector<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    if (st[r] == 0) continue;
    const std::vector<double> row = w.select(0, r).cpu().to_vector<double>();
    int64_t nonzero = 0, bad = 0;
    for (int64_t c = 0; c < cats; ++c) nonzero += row[c] > 0;
    while (bad < cats && std::isfinite(row[bad]) && row[bad] >= 0) ++bad;
    EMBER_CHECK(st[r] != 1, ValueError, "multinomial: probabilities must be finite and non-negative, got ",
                bad < cats ? row[bad] : 0.0, " at row ", r, ", category ", bad);
    EMBER_CHECK(st[r] != 2, ValueError, "multinomial: row ", r, " of probs sums to zero");
    EMBER_THROW(ValueError, "multinomial: cannot draw ", num_samples, " samples without replacement from row ", r,
                ", which has only ", nonzero, " categories of non-zero probability");
  }
  const int64_t draws_per_row = replacement ? num_samples : cats;
  const GeneratorState gs = gen.reserve(static_cast<uint64_t>(2 * rows * draws_per_row));
  if (replacement) {
    Tensor out = empty({rows, num_samples}, {.dtype = kInt64, .device = d});
    Tensor cdf = empty({rows, cats}, {.dtype = kFloat64, .device = d});
    EMBER_CUDA_CHECK(kernels::multinomial_with_replacement(
        static_cast<const double*>(w.data_ptr()), static_cast<double*>(cdf.data_ptr()), rows, cats, num_samples,
        gs.seed, gs.offset, static_cast<int64_t*>(out.data_ptr()), current_stream(dev)));
    return out;
  }
  Tensor keys = empty({rows, cats}, {.dtype = kFloat64, .device = d});
  EMBER_CUDA_CHECK(kernels::multinomial_keys(static_cast<const double*>(w.data_ptr()), rows, cats, gs.seed, gs.offset,
                                             static_cast<double*>(keys.data_ptr()), current_stream(dev)));
  Tensor sorted = empty({rows, cats}, {.dtype = kFloat64, .device = d});
  Tensor order = empty({rows, cats}, {.dtype = kInt64, .device = d});
  sort_rows(sorted, order, keys, true);
  return order.narrow(1, 0, num_samples).contiguous();
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  const int dev = checked_device(op, x, {&y, &mean, &rstd, &weight, &bias});
  const kernels::FloatType t = float_of(x.dtype(), op);
  const int64_t rows = mean.numel(), n = rows == 0 ? 0 : x.numel() / rows;
  const DType acc = x.dtype() == kFloat64 ? kFloat64 : kFloat32;
  EMBER_CHECK(
      x.is_contiguous() && y.is_contiguous() && mean.dtype() == acc && rstd.dtype() == acc && rstd.numel() == rows &&
          (!weight.defined() || (weight.numel() == n && weight.is_contiguous() && weight.dtype() == x.dtype())) &&
          (!bias.defined() || (bias.numel() == n && bias.is_contiguous() && bias.dtype() == x.dtype())),
      ValueError, op, " on CUDA: expected contiguous rows, ", dtype_name(acc),
      " per-row statistics and weight/bias of the input's dtype and row length");
  if (rows == 0 || n == 0) return;
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::layer_norm_forward(t, x.data_ptr(), ptr_or_null(weight), ptr_or_null(bias), y.data_ptr(),
                                               mean.data_ptr(), rstd.data_ptr(), rows, n, eps, current_stream(dev)));
}

void layer_norm_backward(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& grad, const Tensor& x,
                         const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  const char* op = "layer_norm backward";
  const int dev = checked_device(op, x, {&dx, &dw, &db, &grad, &weight, &mean, &rstd});
  const kernels::FloatType t = float_of(x.dtype(), op);
  const int64_t rows = mean.numel(), n = rows == 0 ? 0 : x.numel() / rows;
  EMBER_CHECK(x.is_contiguous() && grad.is_contiguous() && grad.dtype() == x.dtype() &&
                  (!dx.defined() || dx.is_contiguous()) && (!dw.defined() || dw.is_contiguous()) &&
                  (!db.defined() || db.is_contiguous()),
              ValueError, op, " on CUDA: expected contiguous tensors of one dtype");
  DeviceGuard guard(dev);
  if (rows == 0 || n == 0) {
    if (dw.defined()) fill(dw, 0);
    if (db.defined()) fill(db, 0);
    return;
  }
  Tensor partial;
  if (dw.defined() || db.defined()) {
    const DType acc = x.dtype() == kFloat64 ? kFloat64 : kFloat32;
    partial = empty({2 * kernels::layer_norm_chunks(rows) * n}, {.dtype = acc, .device = x.device()});
  }
  EMBER_CUDA_CHECK(kernels::layer_norm_backward(t, grad.data_ptr(), x.data_ptr(), ptr_or_null(weight), mean.data_ptr(),
                                                rstd.data_ptr(), ptr_or_null(dx), ptr_or_null(dw), ptr_or_null(db),
                                                ptr_or_null(partial), rows, n, current_stream(dev)));
}

}  // namespace ember::cuda_backend
