// Datasets: indexable collections of (x, y) examples, with a batched fast path.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::data {

/// One example, or a batch of them (first dimension = batch). An aggregate, so
/// `auto& [x, y] = example;` works.
struct Example {
  Tensor x;
  Tensor y;
};

/// An indexable collection of examples. get() and get_batch() must be safe to call from
/// several threads at once (the DataLoader's workers do), and should do plain memory work
/// rather than parallel tensor ops: they run beside the training step's thread pool.
class EMBER_API Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// Example `index` in [0, size()).
  virtual Example get(int64_t index) const = 0;
  /// The examples at `indices` stacked along a new first dimension. The default calls get()
  /// once per index and copies the results into one contiguous CPU tensor each for x and y
  /// (every example must have the same shapes and dtypes); datasets that hold their data in
  /// tensors override it with a gather of rows.
  virtual Example get_batch(const std::vector<int64_t>& indices) const;
};

/// Examples are rows of tensors: example i is (x[i], y[i]). y may be undefined (x only).
class EMBER_API TensorDataset : public Dataset {
 public:
  /// x and y must be CPU tensors with at least one dimension and the same first size.
  /// Throws ShapeError, ValueError or NotImplemented (CUDA tensors).
  explicit TensorDataset(Tensor x, Tensor y = Tensor());
  int64_t size() const override { return n_; }
  /// Views of row `index` (sharing memory with the dataset's tensors).
  Example get(int64_t index) const override;
  /// Contiguous copies of the rows at `indices`.
  Example get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& x() const { return x_; }
  const Tensor& y() const { return y_; }

 private:
  Tensor x_, y_;
  int64_t n_ = 0;
};

/// Copies rows `indices` of a CPU tensor (any dtype, first dim = rows) into a new contiguous
/// tensor of shape (indices.size(), rest...). Plain memcpy, no thread pool: safe in loader
/// workers. Throws IndexError for an index out of range.
EMBER_API Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices);

/// Stacks same-shape, same-dtype CPU tensors along a new first dimension with plain copies.
/// Throws ShapeError/DTypeError when they differ, ValueError when the list is empty.
EMBER_API Tensor stack_rows(const std::vector<Tensor>& rows);

}  // namespace ember::data
