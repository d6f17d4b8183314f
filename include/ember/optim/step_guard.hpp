// Numerical fault handling for training steps: skip the optimizer step when the loss or any
// gradient is not finite, count the skips, give up after too many in a row, and flag loss
// spikes.
//
//   optim::StepGuard guard(optimizer, {.max_consecutive_skips = 5});
//   for (...) {
//     Tensor loss = ...;
//     optimizer.zero_grad();
//     loss.backward();
//     guard.check(loss);      // computes the flag on the loss's device, arms the optimizer
//     optimizer.step();       // does nothing (bit for bit) when the flag is set
//     if (step % log_every == 0) guard.throw_if_diverged();   // the only host read
//   }
//
// The flag is a 0-d tensor on the parameters' device; the optimizer's step consumes it itself
// (on CUDA the update kernels read it), and the counters are device tensors updated without
// leaving the device, so a GPU step needs no host synchronisation. The host reads the counters
// only when asked (skipped_steps(), consecutive_skips(), throw_if_diverged(), state()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::optim {

/// Thrown by StepGuard::throw_if_diverged.
class EMBER_API NumericalError : public Error {
 public:
  using Error::Error;
};

struct StepGuardOptions {
  /// throw_if_diverged() throws once this many consecutive steps were skipped (0: never).
  int64_t max_consecutive_skips = 10;
  /// Also check every parameter's gradient (not only the loss).
  bool check_gradients = true;
};

class EMBER_API StepGuard {
 public:
  /// The counters start at 0 on the device of the optimizer's parameters (and follow the loss's
  /// device if it differs at the first check). ValueError when max_consecutive_skips < 0.
  StepGuard(Optimizer& optimizer, StepGuardOptions options = {});

  /// Computes, on the loss's device, flag = !isfinite(loss) || any gradient of the optimizer's
  /// parameters is not finite; hands the flag to the optimizer (Optimizer::set_skip_flag) so
  /// that its next step() is skipped when set, and updates the skip counters on the device.
  /// Call it after backward() and before step(). The loss must be a defined 0-d tensor
  /// (ValueError) of a floating dtype (DTypeError) on the parameters' device (DeviceError).
  /// Only parameters that require grad and have a gradient are checked (those step() updates).
  void check(const Tensor& loss);

  /// Host reads of the device counters (a synchronisation on CUDA).
  int64_t skipped_steps() const;
  int64_t consecutive_skips() const;
  /// Throws NumericalError ("... non-finite loss or gradients for K consecutive steps ...")
  /// when consecutive_skips() >= max_consecutive_skips.
  void throw_if_diverged() const;

  /// {"skipped_steps", "consecutive_skips"}, for TrainerState::counters.
  std::map<std::string, int64_t> state() const;
  /// Restores what state() returned (missing keys count as 0, other keys are ignored; negative
  /// counts or consecutive_skips > skipped_steps: ValueError).
  void load_state(const std::map<std::string, int64_t>& counters);

 private:
  Optimizer* optimizer_;
  StepGuardOptions options_;
  Tensor skipped_;      // 0-d i64 on the device
  Tensor consecutive_;  // 0-d i64 on the device
};

/// Flags losses that jump far above the recent ones: z = (loss - mean) / std over the last
/// `window` finite losses (population std, the loss being judged not included); a spike is
/// z > `z_threshold` once at least `min_samples` are known. When the window's std is 0 (all
/// recent losses equal) nothing is reported. Spikes are reported, not excluded from the
/// statistics. Host-side (takes a double). ValueError unless window >= 2, 2 <= min_samples <=
/// window and z_threshold is finite and > 0.
class EMBER_API LossSpikeDetector {
 public:
  explicit LossSpikeDetector(size_t window = 100, double z_threshold = 6.0, size_t min_samples = 20);
  /// The z-score when `loss` is a spike, nullopt otherwise (also for non-finite losses, which
  /// are not added to the window).
  std::optional<double> observe(double loss);

 private:
  size_t window_;
  double z_threshold_;
  size_t min_samples_;
  std::deque<double> recent_;
};

}  // namespace ember::optim
