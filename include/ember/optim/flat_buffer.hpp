// FlatBuffer: moves a list of parameters, and their gradients, into one contiguous allocation
// per (dtype, device), so a fused optimizer or a DDP bucket can treat them as one tensor.
//
//   nn::Linear fc(784, 256);
//   optim::FlatBuffer flat(fc.parameters());
//   optim::SGD opt(fc.parameters(), {.lr = 0.1});
//   loss.backward();                  // accumulates into flat.buckets()[0].grad
//   opt.step();                       // updates flat.buckets()[0].data through the views
//   flat.zero_grad();                 // zeroes the flat gradient (never frees it)
//
// Each parameter keeps its identity (handles held elsewhere, e.g. by an optimizer, stay
// valid): its data are replaced (Tensor::set_data) by a view of the flat data buffer holding
// the same values, and its .grad becomes a view of the flat gradient buffer, allocated up
// front (the old gradient's values are copied in; missing gradients read as zero).
//
// Caveats. Clearing gradients with set_to_none (Optimizer::zero_grad's default) detaches them
// from the flat buffer; call FlatBuffer::zero_grad (or attach_grads) instead. Moving a module
// (Module::to) after flattening replaces the views with fresh tensors. The parameters of one
// buffer share one version counter, so an in-place update of any of them invalidates every
// graph that saved any of them (as with PyTorch views).
#pragma once

#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::optim {

class EMBER_API FlatBuffer {
 public:
  /// One allocation per (dtype, device) in order of first appearance.
  struct Bucket {
    DType dtype;
    Device device;
    Tensor data;                   // 1-d, every parameter of this dtype/device back to back
    Tensor grad;                   // 1-d, same layout as data
    std::vector<size_t> params;    // indices into FlatBuffer::params()
    std::vector<int64_t> offsets;  // element offset of each of those parameters
  };

  /// Every element offset is a multiple of this many bytes (padding reads as zero).
  static constexpr int64_t kAlignBytes = 64;

  /// Flattens `params` (defined leaf tensors, each at most once; ValueError otherwise).
  explicit FlatBuffer(std::vector<Tensor> params);

  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  /// The bucket of a dtype on a device; ValueError when no parameter has it.
  const Bucket& bucket(DType dtype, Device device = Device::cpu()) const;

  /// Zeroes every flat gradient buffer and re-attaches the gradient views.
  void zero_grad();
  /// Re-attaches each parameter's gradient view (after something set .grad to none or to a
  /// fresh tensor, whose values are copied into the view first).
  void attach_grads();
  /// Whether every parameter's data and gradient still alias the flat buffers.
  bool is_attached() const;

 private:
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // param → (bucket, position in the bucket)
  Tensor grad_view(size_t param) const;
  Tensor data_view(size_t param) const;
};

}  // namespace ember::optim
