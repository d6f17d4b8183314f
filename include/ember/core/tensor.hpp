// Tensor: a shared handle to (storage, offset, shape, strides, dtype, device) plus autograd
// metadata. Copying a Tensor copies the handle, as in LibTorch; views share storage.
//
// The member functions that compute (add, sum, matmul, views ...) are declared here and
// implemented in src/ops/: they validate, dispatch to one backend and record autograd.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/core/device.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/error.hpp"
#include "ember/core/scalar.hpp"
#include "ember/core/shape.hpp"
#include "ember/core/storage.hpp"

namespace ember {

namespace autograd {
class Node;
}

class Tensor;

/// dtype, device and requires_grad for factories: zeros({2, 3}, {.dtype = kInt64}).
struct TensorOptions {
  DType dtype = kFloat32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

/// A tensor hook receives the gradient and may return a replacement (or an undefined Tensor
/// to keep it).
using TensorHook = std::function<Tensor(const Tensor&)>;
/// Runs after all contributions to a leaf's .grad have been summed in one backward pass.
using PostAccumulateGradHook = std::function<void(Tensor&)>;

/// Everything a tensor handle points at. Users reach it only through Tensor.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = kFloat32;
  Device device = Device::cpu();

  // autograd
  bool requires_grad = false;  // meaningful for leaves; non-leaves require grad via grad_fn
  bool retains_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> grad;                       // .grad (leaves, or retain_grad)
  std::weak_ptr<autograd::Node> grad_accumulator;          // leaves only
  std::vector<TensorHook> hooks;                           // leaves: run before accumulation
  std::vector<PostAccumulateGradHook> post_accumulate_hooks;
  bool is_view = false;  // created by a view op from another tensor
  std::string name;      // optional, for messages
};

class EMBER_API Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---------------------------------------------------------------- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& sizes() const { return impl().shape; }
  /// Size of dim (negative dims count from the end).
  int64_t size(int64_t dim) const;
  const Shape& strides() const { return impl().strides; }
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t ndim() const { return dim(); }
  int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_cpu() const { return device().is_cpu(); }
  int64_t storage_offset() const { return impl().offset; }
  size_t element_size() const { return itemsize(dtype()); }
  int64_t nbytes() const { return numel() * static_cast<int64_t>(element_size()); }
  bool is_contiguous() const;
  TensorOptions options() const { return {dtype(), device(), false}; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  /// True when both tensors view the same storage.
  bool shares_storage(const Tensor& other) const { return storage() == other.storage(); }

  // ---------------------------------------------------------------- data access
  /// Address of the first element (storage + offset).
  void* data_ptr() const;
  /// Typed address of the first element; throws DTypeError when T is not the dtype.
  template <class T>
  T* data() const {
    EMBER_CHECK(dtype_of_v<T> == dtype(), DTypeError, "data<T>(): tensor has dtype ", dtype_name(dtype()),
                " but T is ", dtype_name(dtype_of_v<T>));
    return static_cast<T*>(data_ptr());
  }
  /// The value of a one-element tensor converted to T (copies from the device if needed).
  template <class T>
  T item() const {
    return item_scalar().to<T>();
  }
  Scalar item_scalar() const;
  /// The elements, in row-major order, converted to T (copies from the device if needed).
  template <class T>
  std::vector<T> to_vector() const;

  // ---------------------------------------------------------------- autograd
  bool requires_grad() const;
  /// Marks a leaf as requiring grad; throws on a non-leaf asked to stop requiring grad.
  Tensor& requires_grad_(bool on = true);
  /// A leaf is a tensor with no grad_fn (created by the user, or not requiring grad).
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  /// .grad: undefined until a backward pass reaches this tensor.
  Tensor grad() const;
  void set_grad(const Tensor& g);
  /// Keeps .grad on a non-leaf after backward.
  void retain_grad();
  /// Backpropagates from this tensor. `gradient` may be omitted for one-element tensors.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  /// A tensor sharing storage with this one, cut from the graph.
  Tensor detach() const;
  Tensor& detach_();
  /// Registers a hook on the gradient of this tensor. Returns its handle.
  size_t register_hook(TensorHook hook);
  /// Registers a hook that runs once per backward after .grad of this leaf is complete.
  size_t register_post_accumulate_grad_hook(PostAccumulateGradHook hook);

  // ---------------------------------------------------------------- views (share storage)
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  /// Transpose of a ≤2-d tensor.
  Tensor t() const;
  Tensor permute(const Shape& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  /// Elements start, start+step, ... < end along dim (negative start/end count from the end).
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  /// Removes dim, keeping index.
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;
  /// A view with explicit sizes, strides and offset (no autograd; for internal use).
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // ---------------------------------------------------------------- conversion
  Tensor to(DType dtype) const;
  Tensor to(Device device, bool non_blocking = false) const;
  Tensor to(Device device, DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }
  Tensor clone() const;
  /// Copies src into this tensor (broadcasting src, converting dtype and device).
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(const Scalar& value);
  Tensor& zero_();

  // ---------------------------------------------------------------- arithmetic
  Tensor add(const Tensor& other, const Scalar& alpha = 1) const;
  Tensor sub(const Tensor& other, const Scalar& alpha = 1) const;
  Tensor mul(const Tensor& other) const;
  Tensor div(const Tensor& other) const;
  Tensor add(const Scalar& other) const;
  Tensor sub(const Scalar& other) const;
  Tensor mul(const Scalar& other) const;
  Tensor div(const Scalar& other) const;
  Tensor& add_(const Tensor& other, const Scalar& alpha = 1);
  Tensor& sub_(const Tensor& other, const Scalar& alpha = 1);
  Tensor& mul_(const Tensor& other);
  Tensor& div_(const Tensor& other);
  Tensor& add_(const Scalar& other);
  Tensor& sub_(const Scalar& other);
  Tensor& mul_(const Scalar& other);
  Tensor& div_(const Scalar& other);
  Tensor neg() const;
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor pow(const Scalar& exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max) const;

  // ---------------------------------------------------------------- reductions
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  Tensor argmax(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;

  // ---------------------------------------------------------------- linear algebra
  Tensor matmul(const Tensor& other) const;

  // ---------------------------------------------------------------- printing
  /// PyTorch-style text: "tensor([[1., 2.],\n        [3., 4.]])".
  std::string str() const;

  // ---------------------------------------------------------------- internals
  TensorImpl& impl() const {
    EMBER_CHECK(impl_ != nullptr, ValueError, "operation on an undefined Tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// Replaces this tensor's data (storage, geometry, dtype, device) with `src`'s, keeping its
  /// identity and autograd metadata: every handle to this tensor sees the new data
  /// (nn::Module::to uses it). Only for leaves; clears .grad when the shape/dtype/device change.
  void set_data(const Tensor& src);
  /// Optional name (parameters carry their dotted module path).
  const std::string& name() const { return impl().name; }
  void set_name(std::string n) { impl().name = std::move(n); }
  /// Identity comparison (same handle target), not elementwise equality.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

EMBER_API std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Operators (elementwise, broadcasting).
EMBER_API Tensor operator+(const Tensor& a, const Tensor& b);
EMBER_API Tensor operator-(const Tensor& a, const Tensor& b);
EMBER_API Tensor operator*(const Tensor& a, const Tensor& b);
EMBER_API Tensor operator/(const Tensor& a, const Tensor& b);
EMBER_API Tensor operator+(const Tensor& a, const Scalar& b);
EMBER_API Tensor operator-(const Tensor& a, const Scalar& b);
EMBER_API Tensor operator*(const Tensor& a, const Scalar& b);
EMBER_API Tensor operator/(const Tensor& a, const Scalar& b);
EMBER_API Tensor operator+(const Scalar& a, const Tensor& b);
EMBER_API Tensor operator-(const Scalar& a, const Tensor& b);
EMBER_API Tensor operator*(const Scalar& a, const Tensor& b);
EMBER_API Tensor operator/(const Scalar& a, const Tensor& b);
EMBER_API Tensor operator-(const Tensor& a);
inline Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
inline Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
inline Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
inline Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
inline Tensor& operator+=(Tensor& a, const Scalar& b) { return a.add_(b); }
inline Tensor& operator-=(Tensor& a, const Scalar& b) { return a.sub_(b); }
inline Tensor& operator*=(Tensor& a, const Scalar& b) { return a.mul_(b); }
inline Tensor& operator/=(Tensor& a, const Scalar& b) { return a.div_(b); }

// ---------------------------------------------------------------- factories
/// Uninitialised memory of the given shape.
EMBER_API Tensor empty(const Shape& shape, const TensorOptions& opts = {});
EMBER_API Tensor zeros(const Shape& shape, const TensorOptions& opts = {});
EMBER_API Tensor ones(const Shape& shape, const TensorOptions& opts = {});
EMBER_API Tensor full(const Shape& shape, const Scalar& value, const TensorOptions& opts = {});
EMBER_API Tensor empty_like(const Tensor& t);
EMBER_API Tensor zeros_like(const Tensor& t);
EMBER_API Tensor ones_like(const Tensor& t);
EMBER_API Tensor full_like(const Tensor& t, const Scalar& value);
/// A 0-d tensor holding value (dtype from opts).
EMBER_API Tensor scalar_tensor(const Scalar& value, const TensorOptions& opts = {});
/// Copies `values` into a new tensor of the given shape (1-d of values.size() when omitted).
/// The dtype is T's (int64_t → int64, float → float32, ...).
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape = {});
/// As above, converted to opts.dtype on opts.device.
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, const TensorOptions& opts);
/// Wraps user memory without copying. `deleter` (may be empty) is called when the last view dies.
EMBER_API Tensor from_blob(void* data, const Shape& shape, const TensorOptions& opts = {},
                           std::function<void(void*)> deleter = {});
EMBER_API Tensor from_blob(void* data, const Shape& shape, const Shape& strides, const TensorOptions& opts = {},
                           std::function<void(void*)> deleter = {});

/// Internal: a tensor over `storage` with the given geometry (no autograd).
EMBER_API Tensor make_tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                             int64_t offset, DType dtype);

// ---------------------------------------------------------------- template definitions
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape) {
  Shape s = shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape;
  EMBER_CHECK(numel_of(s) == static_cast<int64_t>(values.size()), ShapeError, "tensor: shape ", shape_str(s),
              " holds ", numel_of(s), " elements but ", values.size(), " values were given");
  Tensor t = empty(s, {.dtype = dtype_of_v<T>});
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, const TensorOptions& opts) {
  Tensor t = tensor(values, shape).to(opts.device, opts.dtype);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  std::vector<T> out(static_cast<size_t>(c.numel()));
  const void* src = c.data_ptr();
  auto convert = [&]<class S>() {
    const S* p = static_cast<const S*>(src);
    for (size_t i = 0; i < out.size(); ++i) {
      if constexpr (std::is_same_v<T, bool>) out[i] = static_cast<compute_t<S>>(p[i]) != compute_t<S>(0);
      else out[i] = static_cast<T>(static_cast<compute_t<S>>(p[i]));
    }
  };
  switch (c.dtype()) {
    case DType::f32: convert.template operator()<float>(); break;
    case DType::f64: convert.template operator()<double>(); break;
    case DType::f16: convert.template operator()<Half>(); break;
    case DType::bf16: convert.template operator()<BFloat16>(); break;
    case DType::i32: convert.template operator()<int32_t>(); break;
    case DType::i64: convert.template operator()<int64_t>(); break;
    case DType::u8: convert.template operator()<uint8_t>(); break;
    case DType::boolean: convert.template operator()<bool>(); break;
  }
  return out;
}

}  // namespace ember
