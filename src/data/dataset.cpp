// Dataset defaults, TensorDataset and the row gather/stack helpers the loaders use. Only
// memcpy here: these run on loader worker threads next to the OpenMP pool.
#include "ember/data/dataset.hpp"

#include <cstring>

namespace ember::data {
namespace {

void check_cpu(const Tensor& t, const char* op, const char* what) {
  EMBER_CHECK(t.is_cpu(), NotImplemented, op, ": ", what, " is on ", t.device().str(),
              "; CUDA tensors are not supported yet (keep datasets on the CPU and move batches)");
}

}  // namespace

Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices) {
  EMBER_CHECK(t.defined(), ValueError, "gather_rows: undefined tensor");
  check_cpu(t, "gather_rows", "the tensor");
  EMBER_CHECK(t.dim() >= 1, ShapeError, "gather_rows: expected a tensor with a row dimension, got shape ",
              shape_str(t.shape()));
  const int64_t n = t.size(0);
  Tensor src = t.contiguous();
  Shape out_shape = t.shape();
  out_shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = empty(out_shape, {.dtype = t.dtype()});
  const size_t row_bytes = static_cast<size_t>(n > 0 ? src.nbytes() / n : 0);
  const auto* s = static_cast<const char*>(src.data_ptr());
  auto* d = static_cast<char*>(out.data_ptr());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t r = indices[i];
    EMBER_CHECK(r >= 0 && r < n, IndexError, "gather_rows: index ", r, " is out of range for ", n, " rows");
    if (row_bytes > 0) std::memcpy(d + i * row_bytes, s + r * row_bytes, row_bytes);
  }
  return out;
}

Tensor stack_rows(const std::vector<Tensor>& rows) {
  EMBER_CHECK(!rows.empty(), ValueError, "stack_rows: no tensors to stack");
  const Tensor& first = rows[0];
  EMBER_CHECK(first.defined(), ValueError, "stack_rows: tensor 0 is undefined");
  Shape out_shape = first.shape();
  out_shape.insert(out_shape.begin(), static_cast<int64_t>(rows.size()));
  Tensor out = empty(out_shape, {.dtype = first.dtype()});
  const size_t row_bytes = static_cast<size_t>(first.nbytes());
  auto* d = static_cast<char*>(out.data_ptr());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Tensor& r = rows[i];
    EMBER_CHECK(r.defined(), ValueError, "stack_rows: tensor ", i, " is undefined");
    check_cpu(r, "stack_rows", "a tensor");
    EMBER_CHECK(r.shape() == first.shape(), ShapeError, "stack_rows: tensor ", i, " has shape ", shape_str(r.shape()),
                " but tensor 0 has shape ", shape_str(first.shape()));
    EMBER_CHECK(r.dtype() == first.dtype(), DTypeError, "stack_rows: tensor ", i, " has dtype ", dtype_name(r.dtype()),
                " but tensor 0 has dtype ", dtype_name(first.dtype()));
    Tensor c = r.contiguous();
    if (row_bytes > 0) std::memcpy(d + i * row_bytes, c.data_ptr(), row_bytes);
  }
  return out;
}

Example Dataset::get_batch(const std::vector<int64_t>& indices) const {
  EMBER_CHECK(!indices.empty(), ValueError, "Dataset::get_batch: no indices");
  std::vector<Tensor> xs, ys;
  xs.reserve(indices.size());
  ys.reserve(indices.size());
  for (int64_t i : indices) {
    Example e = get(i);
    xs.push_back(std::move(e.x));
    ys.push_back(std::move(e.y));
  }
  Example batch;
  batch.x = stack_rows(xs);
  if (ys[0].defined()) batch.y = stack_rows(ys);
  return batch;
}

TensorDataset::TensorDataset(Tensor x, Tensor y) : x_(std::move(x)), y_(std::move(y)) {
  EMBER_CHECK(x_.defined(), ValueError, "TensorDataset: x is undefined");
  check_cpu(x_, "TensorDataset", "x");
  EMBER_CHECK(x_.dim() >= 1, ShapeError, "TensorDataset: x needs a first (example) dimension, got shape ",
              shape_str(x_.shape()));
  n_ = x_.size(0);
  x_ = x_.detach().contiguous();
  if (y_.defined()) {
    check_cpu(y_, "TensorDataset", "y");
    EMBER_CHECK(y_.dim() >= 1 && y_.size(0) == n_, ShapeError, "TensorDataset: x has ", n_, " examples (shape ",
                shape_str(x_.shape()), ") but y has shape ", shape_str(y_.shape()));
    y_ = y_.detach().contiguous();
  }
}

Example TensorDataset::get(int64_t index) const {
  EMBER_CHECK(index >= 0 && index < n_, IndexError, "TensorDataset::get: index ", index, " is out of range for ", n_,
              " examples");
  return {x_.select(0, index), y_.defined() ? y_.select(0, index) : Tensor()};
}

Example TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  return {gather_rows(x_, indices), y_.defined() ? gather_rows(y_, indices) : Tensor()};
}

}  // namespace ember::data
