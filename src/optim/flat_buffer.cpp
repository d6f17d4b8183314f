// FlatBuffer: parameters and gradients as views of one allocation per (dtype, device).
#include "ember/optim/flat_buffer.hpp"

#include <algorithm>

#include "ember/core/grad_mode.hpp"

namespace ember::optim {

FlatBuffer::FlatBuffer(std::vector<Tensor> params) : params_(std::move(params)) {
  NoGradGuard ng;
  std::vector<int64_t> sizes;  // elements used so far, per bucket
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    EMBER_CHECK(p.defined(), ValueError, "FlatBuffer: parameter ", i, " is undefined");
    EMBER_CHECK(p.is_leaf(), ValueError, "FlatBuffer: parameter ", i, " (\"", p.name(),
                "\") is not a leaf tensor; only leaves can have their data replaced");
    for (size_t j = 0; j < i; ++j)
      EMBER_CHECK(!params_[j].is_same(p), ValueError, "FlatBuffer: parameter ", i, " (\"", p.name(),
                  "\") is the same tensor as parameter ", j);
    size_t b = 0;
    while (b < buckets_.size() && !(buckets_[b].dtype == p.dtype() && buckets_[b].device == p.device())) ++b;
    if (b == buckets_.size()) {
      buckets_.push_back(Bucket{p.dtype(), p.device(), Tensor(), Tensor(), {}, {}});
      sizes.push_back(0);
    }
    const int64_t align = std::max<int64_t>(1, kAlignBytes / static_cast<int64_t>(p.element_size()));
    const int64_t offset = (sizes[b] + align - 1) / align * align;
    buckets_[b].params.push_back(i);
    buckets_[b].offsets.push_back(offset);
    sizes[b] = offset + p.numel();
    where_.emplace_back(b, buckets_[b].params.size() - 1);
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const TensorOptions o{.dtype = buckets_[b].dtype, .device = buckets_[b].device};
    buckets_[b].data = zeros({sizes[b]}, o);
    buckets_[b].grad = zeros({sizes[b]}, o);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor view = data_view(i);
    view.copy_(p.detach());
    // Same shape, dtype and device: set_data keeps .grad, which attach_grads copies in.
    p.set_data(view);
  }
  attach_grads();
}

Tensor FlatBuffer::data_view(size_t i) const {
  const auto [b, k] = where_[i];
  return buckets_[b].data.narrow(0, buckets_[b].offsets[k], params_[i].numel()).view(params_[i].shape());
}

Tensor FlatBuffer::grad_view(size_t i) const {
  const auto [b, k] = where_[i];
  return buckets_[b].grad.narrow(0, buckets_[b].offsets[k], params_[i].numel()).view(params_[i].shape());
}

const FlatBuffer::Bucket& FlatBuffer::bucket(DType dtype, Device device) const {
  for (const Bucket& b : buckets_)
    if (b.dtype == dtype && b.device == device) return b;
  EMBER_THROW(ValueError, "FlatBuffer: no parameter has dtype ", dtype_name(dtype), " on ", device.str());
}

void FlatBuffer::attach_grads() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor view = grad_view(i);
    Tensor g = p.grad();
    const bool aliased = g.defined() && g.storage() == view.storage() && g.data_ptr() == view.data_ptr() &&
                         g.strides() == view.strides();
    if (aliased) continue;
    if (g.defined()) {
      view.copy_(g);
    } else {
      view.zero_();
    }
    p.set_grad(view);
  }
}

void FlatBuffer::zero_grad() {
  NoGradGuard ng;
  for (Bucket& b : buckets_) b.grad.zero_();
  attach_grads();
}

bool FlatBuffer::is_attached() const {
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor d = data_view(i), g = grad_view(i), pg = p.grad();
    if (p.storage() != d.storage() || p.data_ptr() != d.data_ptr() || p.shape() != d.shape()) return false;
    if (!pg.defined() || pg.storage() != g.storage() || pg.data_ptr() != g.data_ptr()) return false;
  }
  return true;
}

}  // namespace ember::optim
