// Tensor metadata, factories, autograd accessors, and conversion (to, clone, copy_).
#include <cstring>

#include "ember/autograd/engine.hpp"
#include "ember/autograd/node.hpp"
#include "ember/backend/cpu.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/dispatch.hpp"

namespace ember {

// ------------------------------------------------------------------ metadata
int64_t Tensor::size(int64_t d) const { return impl().shape[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl().strides[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  const TensorImpl& t = impl();
  // A tensor without elements is contiguous whatever its strides (as in PyTorch).
  for (int64_t s : t.shape)
    if (s == 0) return true;
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] == 1) continue;
    if (t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const TensorImpl& t = impl();
  if (!t.storage) return nullptr;
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(itemsize(t.dtype));
}

Scalar Tensor::item_scalar() const {
  EMBER_CHECK(numel() == 1, ValueError, "item(): expected a tensor with one element, got shape ",
              shape_str(shape()), " (", numel(), " elements)");
  Tensor c = is_cpu() ? *this : to(Device::cpu());
  return dispatch(c.dtype(), "item", [&]<class T>() -> Scalar { return Scalar(*static_cast<const T*>(c.data_ptr())); });
}

// ------------------------------------------------------------------ factories
Tensor make_tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides, int64_t offset,
                   DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->device = storage ? storage->device() : Device::cpu();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (int64_t d : shape)
    EMBER_CHECK(d >= 0, ValueError, op, ": negative dimension ", d, " in shape ", shape_str(shape));
}
}  // namespace

Tensor empty(const Shape& shape, const TensorOptions& opts) {
  check_shape(shape, "empty");
  const size_t nbytes = static_cast<size_t>(numel_of(shape)) * itemsize(opts.dtype);
  Tensor t = make_tensor(Storage::allocate(nbytes, opts.device), shape, contiguous_strides(shape), 0, opts.dtype);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor full(const Shape& shape, const Scalar& value, const TensorOptions& opts) {
  Tensor t = empty(shape, {.dtype = opts.dtype, .device = opts.device});
  t.fill_(value);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}
Tensor zeros(const Shape& shape, const TensorOptions& opts) { return full(shape, 0, opts); }
Tensor ones(const Shape& shape, const TensorOptions& opts) { return full(shape, 1, opts); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.options()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }
Tensor full_like(const Tensor& t, const Scalar& value) { return full(t.shape(), value, t.options()); }
Tensor scalar_tensor(const Scalar& value, const TensorOptions& opts) { return full({}, value, opts); }

Tensor from_blob(void* data, const Shape& shape, const Shape& strides, const TensorOptions& opts,
                 std::function<void(void*)> deleter) {
  check_shape(shape, "from_blob");
  EMBER_CHECK(strides.size() == shape.size(), ShapeError, "from_blob: shape ", shape_str(shape), " has ",
              shape.size(), " dimensions but strides ", shape_str(strides), " has ", strides.size());
  int64_t extent = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    EMBER_CHECK(strides[i] >= 0, ValueError, "from_blob: negative stride ", strides[i]);
    if (shape[i] == 0) extent = 0;
  }
  if (extent != 0) {
    extent = 1;
    for (size_t i = 0; i < shape.size(); ++i) extent += (shape[i] - 1) * strides[i];
  }
  DataPtr p{data, std::move(deleter), opts.device};
  auto storage = std::make_shared<Storage>(std::move(p), static_cast<size_t>(extent) * itemsize(opts.dtype));
  Tensor t = make_tensor(std::move(storage), shape, strides, 0, opts.dtype);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor from_blob(void* data, const Shape& shape, const TensorOptions& opts, std::function<void(void*)> deleter) {
  return from_blob(data, shape, contiguous_strides(shape), opts, std::move(deleter));
}

// ------------------------------------------------------------------ autograd accessors
bool Tensor::requires_grad() const {
  const TensorImpl& t = impl();
  return t.requires_grad || t.grad_fn != nullptr;
}

Tensor& Tensor::requires_grad_(bool on) {
  TensorImpl& t = impl();
  if (!on) {
    EMBER_CHECK(t.grad_fn == nullptr, AutogradError,
                "requires_grad_(false): only leaf tensors can stop requiring grad; use detach() for a non-leaf");
  } else {
    EMBER_CHECK(is_floating(t.dtype), DTypeError, "requires_grad_: only floating-point tensors can require "
                "gradients, but this tensor has dtype ", dtype_name(t.dtype));
  }
  t.requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = impl().grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  if (!g.defined()) {
    impl().grad.reset();
    return;
  }
  EMBER_CHECK(g.shape() == shape(), ShapeError, "set_grad: gradient shape ", shape_str(g.shape()),
              " does not match tensor shape ", shape_str(shape()));
  EMBER_CHECK(g.device() == device(), DeviceError, "set_grad: gradient is on ", g.device().str(),
              " but the tensor is on ", device().str());
  impl().grad = g.detach().impl_ptr();
}

void Tensor::retain_grad() {
  TensorImpl& t = impl();
  if (t.grad_fn == nullptr) return;  // leaves keep .grad anyway
  if (t.retains_grad) return;
  t.retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  t.grad_fn->pre_hooks.emplace_back(t.output_nr, [weak](const Tensor& g) -> Tensor {
    if (auto self = weak.lock()) {
      if (!self->grad) {
        self->grad = g.clone().impl_ptr();
      } else {
        Tensor(self->grad).add_(g);
      }
    }
    return Tensor();
  });
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::backward({*this}, gradient.defined() ? std::vector<Tensor>{gradient} : std::vector<Tensor>{},
                     retain_graph);
}

Tensor Tensor::detach() const {
  const TensorImpl& t = impl();
  Tensor out = make_tensor(t.storage, t.shape, t.strides, t.offset, t.dtype);
  out.impl().device = t.device;
  return out;
}

Tensor& Tensor::detach_() {
  TensorImpl& t = impl();
  t.grad_fn.reset();
  t.requires_grad = false;
  return *this;
}

size_t Tensor::register_hook(TensorHook hook) {
  EMBER_CHECK(requires_grad(), AutogradError,
              "register_hook: cannot register a hook on a tensor that does not require grad");
  TensorImpl& t = impl();
  if (t.grad_fn) {
    auto& hooks = t.grad_fn->pre_hooks;
    if (t.retains_grad) {
      // retain_grad's hook stays the last one for this output, so .grad holds what the other
      // hooks made of the gradient whatever the registration order (as PyTorch).
      for (size_t k = hooks.size(); k-- > 0;) {
        if (hooks[k].first == t.output_nr) {
          hooks.insert(hooks.begin() + static_cast<std::ptrdiff_t>(k), {t.output_nr, std::move(hook)});
          return k;
        }
      }
    }
    hooks.emplace_back(t.output_nr, std::move(hook));
    return hooks.size() - 1;
  }
  t.hooks.push_back(std::move(hook));
  return t.hooks.size() - 1;
}

size_t Tensor::register_post_accumulate_grad_hook(PostAccumulateGradHook hook) {
  EMBER_CHECK(is_leaf() && requires_grad(), AutogradError,
              "register_post_accumulate_grad_hook: only leaf tensors that require grad accept this hook");
  impl().post_accumulate_hooks.push_back(std::move(hook));
  return impl().post_accumulate_hooks.size() - 1;
}

void Tensor::set_data(const Tensor& src) {
  EMBER_CHECK(src.defined(), ValueError, "set_data: source is an undefined tensor");
  TensorImpl& t = impl();
  EMBER_CHECK(t.grad_fn == nullptr, AutogradError, "set_data: only leaf tensors can have their data replaced");
  const TensorImpl& s = src.impl();
  const bool same_meta = t.shape == s.shape && t.dtype == s.dtype && t.device == s.device;
  t.storage = s.storage;
  t.offset = s.offset;
  t.shape = s.shape;
  t.strides = s.strides;
  t.dtype = s.dtype;
  t.device = s.device;
  t.is_view = false;
  if (!same_meta) {
    t.grad.reset();
    t.grad_accumulator.reset();
  }
}

// ------------------------------------------------------------------ copy and conversion
Tensor& Tensor::copy_(const Tensor& src) {
  EMBER_CHECK(src.defined(), ValueError, "copy_: source is an undefined tensor");
  Shape b = broadcast_shapes(shape(), src.shape(), "copy_");
  EMBER_CHECK(b == shape(), ShapeError, "copy_: source of shape ", shape_str(src.shape()),
              " cannot be broadcast to destination shape ", shape_str(shape()));
  autograd::check_inplace(*this, "copy_");
  {
    NoGradGuard ng;
    if (device() == src.device()) {
      if (is_cpu()) cpu::copy(*this, src);
      else cuda_backend::copy(*this, src);
    } else {
      // Across devices: make the source contiguous with the destination's dtype and shape on
      // its own device, move the bytes, then scatter into dst's layout if needed.
      Tensor s = src.expand(shape()).to(dtype()).contiguous();
      if (is_contiguous()) {
        cuda_backend::copy_across(*this, s, false);
      } else {
        Tensor tmp = empty(shape(), {.dtype = dtype(), .device = device()});
        cuda_backend::copy_across(tmp, s, false);
        copy_(tmp);
      }
    }
  }
  storage()->bump_version();
  Shape src_shape = src.shape();
  DType src_dtype = src.dtype();
  Device src_device = src.device();
  autograd::record("CopyBackwards", {*this, src}, *this,
                   [src_shape, src_dtype, src_device](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
                     std::vector<Tensor> r(2);
                     if (needs[0]) r[0] = zeros_like(g[0]);
                     if (needs[1]) r[1] = autograd::sum_to(g[0], src_shape).to(src_device, src_dtype);
                     return r;
                   });
  return *this;
}

Tensor& Tensor::fill_(const Scalar& value) {
  autograd::check_inplace(*this, "fill_");
  if (is_cpu()) cpu::fill(*this, value);
  else cuda_backend::fill(*this, value);
  storage()->bump_version();
  if (requires_grad() && GradMode::is_enabled()) {
    autograd::record("FillBackward", {*this}, *this,
                     [](const std::vector<Tensor>& g, const std::vector<bool>&) { return std::vector<Tensor>{zeros_like(g[0])}; });
  }
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0); }

Tensor Tensor::clone() const {
  Tensor out;
  {
    NoGradGuard ng;
    out = empty(shape(), {.dtype = dtype(), .device = device()});
    out.copy_(*this);
  }
  return autograd::record("CloneBackward", {*this}, out,
                          [](const std::vector<Tensor>& g, const std::vector<bool>&) { return std::vector<Tensor>{g[0]}; });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dt) const { return to(device(), dt); }

namespace {
// to(dev, dt); non_blocking: a host-to-device copy of one dtype is staged through pinned memory
// and queued on the current stream without waiting for it.
Tensor to_impl(const Tensor& self, Device dev, DType dt, bool non_blocking) {
  if (dev == self.device() && dt == self.dtype()) return self;
  if (dev.is_cuda()) {
    EMBER_CHECK(cuda_backend::available(), DeviceError, "to(", dev.str(),
                "): no CUDA device is available (this build has ",
                cuda_backend::device_count() == 0 ? "no usable device" : "devices", ")");
  }
  Tensor out;
  {
    NoGradGuard ng;
    out = empty(self.shape(), {.dtype = dt, .device = dev});
    if (non_blocking && dev.is_cuda() && self.is_cpu() && dt == self.dtype()) {
      cuda_backend::copy_across(out, self.contiguous(), true);
    } else {
      out.copy_(self);
    }
  }
  DType src_dt = self.dtype();
  Device src_dev = self.device();
  if (!is_floating(dt)) return out;
  return autograd::record("ToCopyBackward", {self}, out,
                          [src_dt, src_dev](const std::vector<Tensor>& g, const std::vector<bool>&) {
                            return std::vector<Tensor>{g[0].to(src_dev, src_dt)};
                          });
}
}  // namespace

Tensor Tensor::to(Device dev, bool non_blocking) const { return to_impl(*this, dev, dtype(), non_blocking); }

Tensor Tensor::to(Device dev, DType dt) const { return to_impl(*this, dev, dt, false); }

}  // namespace ember
