// GradScaler: dynamic loss scaling for float16 training (torch.amp.GradScaler's rules).
//
//   amp::GradScaler scaler;                       // init_scale 65536, growth 2, backoff 0.5, 2000
//   for (...) {
//     optimizer.zero_grad();
//     Tensor loss = ...;                          // under an AutocastGuard(kFloat16)
//     scaler.scale(loss).backward();              // grads of the f32 masters carry the scale
//     scaler.unscale_(optimizer);                 // optional: before clipping the true grads
//     scaler.step(optimizer);                     // skipped (bit for bit) when a grad is inf/NaN
//     scaler.update();                            // backoff on inf, growth after clean steps
//   }
//
// Everything per step stays on the device of the scale: the scale (0-d float32), the growth
// tracker (0-d int64) and the found-inf flag (0-d bool) are device tensors, the inf check and the
// unscaling are device ops, and a skipped step is the optimizer's skip flag
// (Optimizer::set_skip_flag), which the update kernels read themselves. The host reads values
// only in get_scale(), growth_tracker() and state_dict().
//
// Per step: unscale_ at most once per optimizer (ValueError the second time), step at most once
// per optimizer, then update() (ValueError when neither unscale_ nor step ran since the last
// update). update(): found_inf → scale *= backoff_factor and tracker = 0; otherwise tracker += 1,
// and when it reaches growth_interval, scale *= growth_factor (kept unchanged if that is not
// finite) and tracker = 0. A disabled scaler passes everything through: scale() returns the
// loss, step() calls optimizer.step(), unscale_() and update() do nothing.
#pragma once

#include <map>
#include <string>

#include "ember/core/device.hpp"
#include "ember/core/macros.hpp"
#include "ember/core/tensor.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::amp {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;
};

class EMBER_API GradScaler {
 public:
  /// ValueError unless init_scale is finite and > 0, growth_factor > 1, 0 < backoff_factor < 1
  /// and growth_interval >= 1. The device tensors are made at the first scale()/unscale_() on the
  /// device of that loss / of the optimizer's parameters.
  explicit GradScaler(GradScalerOptions options = {});

  bool is_enabled() const { return options_.enabled; }

  /// loss * scale, the scale a 0-d float32 device tensor (differentiable; PyTorch's type
  /// promotion: a 0-d float16/bfloat16 loss gives a float32 product). The loss must be a defined
  /// floating-point tensor (ValueError / DTypeError) on the scale's device once the scale lives
  /// on one (DeviceError).
  Tensor scale(const Tensor& loss);

  /// Multiplies every gradient of the optimizer's parameters in place by 1/scale and records, on
  /// the device, whether any of them holds an inf or NaN. Once per optimizer per step
  /// (ValueError when called again before update(), or after step()).
  void unscale_(optim::Optimizer& optimizer);

  /// unscale_(optimizer) unless already done this step, arms the optimizer's skip flag with the
  /// found-inf flag (or-ed with a flag already armed, e.g. by optim::StepGuard) and calls
  /// optimizer.step(). Once per optimizer per step (ValueError when called again before update()).
  void step(optim::Optimizer& optimizer);

  /// Adjusts the scale from the found-inf flags of this step's optimizers (see the header
  /// comment) on the device, and starts the next step. ValueError when no unscale_()/step()
  /// happened since the last update().
  void update();

  /// The current scale (a host read; init_scale before the device tensors exist).
  double get_scale() const;
  /// Clean steps counted toward the next growth (a host read).
  int64_t growth_tracker() const;
  /// The device this scaler's tensors live on (undefined until the first scale()/unscale_()).
  bool has_device() const { return scale_.defined(); }

  const GradScalerOptions& options() const { return options_; }

  /// {"scale", "growth_factor", "backoff_factor", "growth_interval", "growth_tracker"}, for
  /// io::TrainerState::grad_scaler (empty when disabled, as PyTorch).
  std::map<std::string, double> state_dict() const;
  /// Restores what state_dict() returned. An empty map is ValueError for an enabled scaler
  /// (the checkpoint was written without one); missing keys, a non-finite or non-positive scale,
  /// factors out of range, or a negative or non-integral tracker/interval: ValueError naming the
  /// key. Resets the per-step records.
  void load_state_dict(const std::map<std::string, double>& state);

 private:
  struct PerOptimizer {
    bool unscaled = false;
    bool stepped = false;
    Tensor found_inf;  // 0-d bool on the device
  };
  void ensure_device(Device device);
  PerOptimizer& record(optim::Optimizer& optimizer);

  GradScalerOptions options_;
  double host_scale_;         // the scale before the device tensors exist
  int64_t host_tracker_ = 0;  // likewise
  Tensor scale_;              // 0-d f32 on the device
  Tensor growth_tracker_;     // 0-d i64 on the device
  std::map<const optim::Optimizer*, PerOptimizer> per_optimizer_;
};

}  // namespace ember::amp
