// Non-finite step skipping (StepGuard) and loss-spike detection (LossSpikeDetector); see
// include/ember/optim/step_guard.hpp.
#include "ember/optim/step_guard.hpp"

#include <cmath>

#include "ember/core/grad_mode.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/reduction.hpp"

namespace ember::optim {

namespace {

/// The device of the optimizer's parameters (the first one; set_skip_flag checks them all).
Device params_device(const Optimizer& opt) {
  for (const auto& g : opt.param_groups())
    if (!g.params.empty()) return g.params.front().device();
  return Device::cpu();
}

Tensor counter(int64_t value, Device device) { return full({}, value, {.dtype = kInt64, .device = device}); }

}  // namespace

StepGuard::StepGuard(Optimizer& optimizer, StepGuardOptions options) : optimizer_(&optimizer), options_(options) {
  EMBER_CHECK(options_.max_consecutive_skips >= 0, ValueError,
              "StepGuard: max_consecutive_skips must be >= 0 (0: never give up), got ",
              options_.max_consecutive_skips);
  const Device dev = params_device(optimizer);
  skipped_ = counter(0, dev);
  consecutive_ = counter(0, dev);
}

void StepGuard::check(const Tensor& loss) {
  EMBER_CHECK(loss.defined(), ValueError, "StepGuard::check: got an undefined loss tensor");
  EMBER_CHECK(loss.dim() == 0, ValueError, "StepGuard::check: the loss must be a 0-d tensor, got shape ",
              shape_str(loss.shape()), " (reduce it, e.g. with mean(), first)");
  EMBER_CHECK(is_floating(loss.dtype()), DTypeError, "StepGuard::check: the loss must be floating point, got ",
              dtype_name(loss.dtype()));
  const Device dev = loss.device();
  const auto& groups = optimizer_->param_groups();
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i)
      EMBER_CHECK(groups[gi].params[i].device() == dev, DeviceError, "StepGuard::check: the loss is on ", dev.str(),
                  " but parameter \"", optimizer_->param_key(gi, i), "\" is on ",
                  groups[gi].params[i].device().str(), " (the flag is computed on the parameters' device)");

  NoGradGuard ng;
  // Everything below is a device op: no value comes back to the host.
  Tensor bad = logical_not(isfinite(loss.detach()));
  if (options_.check_gradients) {
    // One isfinite pass per gradient plus a sum over its bool result: a gradient is bad when
    // fewer than all of its elements are finite. (A fused multi-tensor kernel over every
    // gradient at once would save the launches; a later optimisation.)
    for (const auto& group : groups)
      for (const Tensor& p : group.params) {
        if (!p.requires_grad()) continue;
        const Tensor& g = p.grad();
        if (!g.defined() || !is_floating(g.dtype()) || g.numel() == 0) continue;
        bad = logical_or(bad, ne(sum(isfinite(g)), Scalar(g.numel())));
      }
  }
  if (skipped_.device() != dev) {
    skipped_ = skipped_.to(dev);
    consecutive_ = consecutive_.to(dev);
  }
  skipped_ = skipped_ + bad.to(kInt64);
  consecutive_ = where(bad, consecutive_ + Scalar(int64_t{1}), Scalar(int64_t{0}));
  optimizer_->set_skip_flag(bad);
}

int64_t StepGuard::skipped_steps() const { return skipped_.item<int64_t>(); }

int64_t StepGuard::consecutive_skips() const { return consecutive_.item<int64_t>(); }

void StepGuard::throw_if_diverged() const {
  if (options_.max_consecutive_skips <= 0) return;
  const int64_t run = consecutive_skips();
  if (run < options_.max_consecutive_skips) return;
  EMBER_THROW(NumericalError, "StepGuard: the loss or gradients were not finite for ", run,
              " consecutive steps (limit max_consecutive_skips = ", options_.max_consecutive_skips, "; ",
              skipped_steps(), " steps skipped in all); training has diverged: lower the learning rate, check the "
              "data and the loss, or raise max_consecutive_skips");
}

std::map<std::string, int64_t> StepGuard::state() const {
  return {{"skipped_steps", skipped_steps()}, {"consecutive_skips", consecutive_skips()}};
}

void StepGuard::load_state(const std::map<std::string, int64_t>& counters) {
  auto get = [&](const char* key) -> int64_t {
    auto it = counters.find(key);
    if (it == counters.end()) return 0;
    EMBER_CHECK(it->second >= 0, ValueError, "StepGuard::load_state: counter \"", key, "\" must be >= 0, got ",
                it->second);
    return it->second;
  };
  const int64_t skipped = get("skipped_steps"), consecutive = get("consecutive_skips");
  EMBER_CHECK(consecutive <= skipped, ValueError, "StepGuard::load_state: consecutive_skips (", consecutive,
              ") cannot exceed skipped_steps (", skipped, ")");
  // Other keys belong to other counters of the same trainer state and are ignored.
  skipped_ = counter(skipped, skipped_.device());
  consecutive_ = counter(consecutive, consecutive_.device());
}

// ------------------------------------------------------------------ LossSpikeDetector

LossSpikeDetector::LossSpikeDetector(size_t window, double z_threshold, size_t min_samples)
    : window_(window), z_threshold_(z_threshold), min_samples_(min_samples) {
  EMBER_CHECK(window >= 2, ValueError, "LossSpikeDetector: window must be >= 2, got ", window);
  EMBER_CHECK(std::isfinite(z_threshold) && z_threshold > 0, ValueError,
              "LossSpikeDetector: z_threshold must be finite and > 0, got ", z_threshold);
  EMBER_CHECK(min_samples >= 2 && min_samples <= window, ValueError,
              "LossSpikeDetector: min_samples must be in [2, window = ", window, "], got ", min_samples);
}

std::optional<double> LossSpikeDetector::observe(double loss) {
  if (!std::isfinite(loss)) return std::nullopt;
  std::optional<double> spike;
  if (recent_.size() >= min_samples_) {
    double mean = 0;
    for (double x : recent_) mean += x;
    mean /= static_cast<double>(recent_.size());
    double var = 0;
    for (double x : recent_) var += (x - mean) * (x - mean);
    const double sd = std::sqrt(var / static_cast<double>(recent_.size()));  // population std
    if (sd > 0) {
      const double z = (loss - mean) / sd;
      if (z > z_threshold_) spike = z;
    }
  }
  recent_.push_back(loss);
  if (recent_.size() > window_) recent_.pop_front();
  return spike;
}

}  // namespace ember::optim
