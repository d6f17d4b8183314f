// Autocast: a thread-local switch that runs matrix products and convolutions in a 16-bit
// floating dtype while the parameters (the "master weights") stay float32.
//
//   {
//     amp::AutocastGuard autocast(kBFloat16, DeviceType::cuda);
//     Tensor logits = model->forward(x);          // linear/matmul/conv2d run in bf16
//     Tensor loss = cross_entropy(logits, y);     // upcast to f32 (f32 result)
//   }
//   loss.backward();                              // grads of the f32 parameters are f32
//
// Which ops change (as PyTorch's autocast lists):
//   low precision: matmul, mm, bmm, linear, conv2d: every float32/float16/bfloat16 floating operand
//     is cast to the autocast dtype at the op's entry (float64 operands are left alone). The cast
//     is the ordinary differentiable Tensor::to(dtype), whose backward casts the gradient back,
//     so a float32 parameter receives a float32 gradient.
//   float32: cross_entropy (and batch_norm's input): a 16-bit input is cast to float32 first.
//   everything else runs in the dtype of its inputs (as without autocast).
// Autocast applies to tensors of the guard's device type only. Backward formulas do not go through
// the public ops, so the backward pass is unaffected by an active guard (gradients come out in the
// dtype of the forward inputs).
#pragma once

#include "ember/core/device.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/macros.hpp"
#include "ember/core/tensor.hpp"

namespace ember::amp {

/// Whether autocast is on in the calling thread for tensors of `device_type`.
EMBER_API bool is_autocast_enabled(DeviceType device_type = DeviceType::cuda);
/// The dtype autocast casts to for `device_type` (bf16 when never set).
EMBER_API DType autocast_dtype(DeviceType device_type = DeviceType::cuda);
/// Sets the calling thread's state for `device_type` (prefer AutocastGuard). DTypeError unless
/// `dtype` is float16 or bfloat16.
EMBER_API void set_autocast_state(DeviceType device_type, bool enabled, DType dtype);

/// Turns autocast on (or off, with enabled = false) for `device_type` in the calling thread for
/// a scope and restores the previous state (enabled flag and dtype) on exit; guards nest. Other
/// threads are unaffected. DTypeError unless `dtype` is float16 or bfloat16.
class EMBER_API AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype = kBFloat16, DeviceType device_type = DeviceType::cuda, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DeviceType device_type_;
  bool prev_enabled_;
  DType prev_dtype_;
};

/// For op implementations: `t` as the op should see it under a low-precision autocast list op —
/// cast to autocast_dtype(t's device type) when autocast is on for it and t is a float32, float16
/// or bfloat16 tensor; `t` itself otherwise (also when undefined).
EMBER_API Tensor autocast_low(const Tensor& t);
/// For float32-list ops: `t` cast to float32 when autocast is on for its device type and t is
/// float16 or bfloat16; `t` itself otherwise.
EMBER_API Tensor autocast_f32(const Tensor& t);

}  // namespace ember::amp
