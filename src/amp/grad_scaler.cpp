// Dynamic loss scaling; see include/ember/amp/grad_scaler.hpp.
#include "ember/amp/grad_scaler.hpp"

#include <cmath>

#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/reduction.hpp"

namespace ember::amp {

namespace {

void check_options(const GradScalerOptions& o, const char* where) {
  EMBER_CHECK(std::isfinite(o.init_scale) && o.init_scale > 0, ValueError, where,
              ": the scale must be finite and > 0, got ", o.init_scale);
  EMBER_CHECK(std::isfinite(o.growth_factor) && o.growth_factor > 1.0, ValueError, where,
              ": growth_factor must be finite and > 1, got ", o.growth_factor);
  EMBER_CHECK(o.backoff_factor > 0.0 && o.backoff_factor < 1.0, ValueError, where,
              ": backoff_factor must be in (0, 1), got ", o.backoff_factor);
  EMBER_CHECK(o.growth_interval >= 1, ValueError, where, ": growth_interval must be >= 1, got ", o.growth_interval);
}

/// The device of the optimizer's parameters that have gradients (cpu when there are none).
Device grads_device(const optim::Optimizer& opt) {
  for (const auto& g : opt.param_groups())
    for (const Tensor& p : g.params)
      if (p.requires_grad() && p.grad().defined()) return p.device();
  for (const auto& g : opt.param_groups())
    if (!g.params.empty()) return g.params.front().device();
  return Device::cpu();
}

}  // namespace

GradScaler::GradScaler(GradScalerOptions options) : options_(options), host_scale_(options.init_scale) {
  check_options(options_, "GradScaler");
}

void GradScaler::ensure_device(Device device) {
  if (scale_.defined()) {
    EMBER_CHECK(scale_.device() == device, DeviceError, "GradScaler: the scale lives on ", scale_.device().str(),
                " but this loss/these gradients are on ", device.str(), " (one scaler serves one device)");
    return;
  }
  scale_ = full({}, host_scale_, {.dtype = kFloat32, .device = device});
  growth_tracker_ = full({}, host_tracker_, {.dtype = kInt64, .device = device});
}

GradScaler::PerOptimizer& GradScaler::record(optim::Optimizer& optimizer) { return per_optimizer_[&optimizer]; }

Tensor GradScaler::scale(const Tensor& loss) {
  if (!options_.enabled) return loss;
  EMBER_CHECK(loss.defined(), ValueError, "GradScaler::scale: got an undefined loss tensor");
  EMBER_CHECK(is_floating(loss.dtype()), DTypeError, "GradScaler::scale: the loss must be floating point, got ",
              dtype_name(loss.dtype()));
  ensure_device(loss.device());
  // The scale is a device tensor, so no host value is read; the product's backward multiplies
  // the incoming gradient by the scale as well.
  return loss * scale_;
}

void GradScaler::unscale_(optim::Optimizer& optimizer) {
  if (!options_.enabled) return;
  PerOptimizer& rec = record(optimizer);
  EMBER_CHECK(!rec.unscaled, ValueError,
              "GradScaler::unscale_: already called on this optimizer since the last update() (call it at most "
              "once per step, before step())");
  EMBER_CHECK(!rec.stepped, ValueError,
              "GradScaler::unscale_: called after step() on this optimizer; call update() first");
  const Device dev = grads_device(optimizer);
  ensure_device(dev);

  NoGradGuard ng;
  const Tensor inv_scale = reciprocal(scale_);  // f32 on the device
  Tensor found = full({}, false, {.dtype = kBool, .device = dev});
  const auto& groups = optimizer.param_groups();
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      const Tensor& p = groups[gi].params[i];
      if (!p.requires_grad()) continue;
      Tensor g = p.grad();
      if (!g.defined() || g.numel() == 0) continue;
      EMBER_CHECK(g.device() == dev, DeviceError, "GradScaler::unscale_: the gradient of parameter \"",
                  optimizer.param_key(gi, i), "\" is on ", g.device().str(), " but the scale is on ", dev.str());
      EMBER_CHECK(is_floating(g.dtype()), DTypeError, "GradScaler::unscale_: the gradient of parameter \"",
                  optimizer.param_key(gi, i), "\" has dtype ", dtype_name(g.dtype()), ", expected floating point");
      EMBER_CHECK(g.dtype() != kFloat16, DTypeError, "GradScaler::unscale_: the gradient of parameter \"",
                  optimizer.param_key(gi, i),
                  "\" is float16; keep the parameters in float32 (autocast casts them for the forward pass) so "
                  "that the unscaled gradients do not underflow");
      // Bad when fewer than all elements are finite (isfinite is a device op; no host read).
      found = logical_or(found, ne(sum(isfinite(g)), Scalar(g.numel())));
      g.mul_(g.dtype() == kFloat32 ? inv_scale : inv_scale.to(g.dtype()));
    }
  rec.found_inf = found;
  rec.unscaled = true;
}

void GradScaler::step(optim::Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return;
  }
  {
    const PerOptimizer& rec = record(optimizer);
    EMBER_CHECK(!rec.stepped, ValueError,
                "GradScaler::step: already called on this optimizer since the last update() (call update() once "
                "per step)");
    if (!rec.unscaled) unscale_(optimizer);
  }
  PerOptimizer& rec = record(optimizer);
  Tensor flag = rec.found_inf;
  const Tensor& armed = optimizer.skip_flag();
  if (armed.defined()) {
    NoGradGuard ng;
    EMBER_CHECK(armed.device() == flag.device(), DeviceError, "GradScaler::step: the optimizer's armed skip flag is on ",
                armed.device().str(), " but the scale is on ", flag.device().str());
    flag = logical_or(armed, flag);
  }
  optimizer.set_skip_flag(flag);
  rec.stepped = true;
  optimizer.step();
}

void GradScaler::update() {
  if (!options_.enabled) return;
  EMBER_CHECK(!per_optimizer_.empty(), ValueError,
              "GradScaler::update: no inf checks were recorded since the last update() (call step() or unscale_() "
              "first)");
  NoGradGuard ng;
  Tensor found;
  for (const auto& [opt, rec] : per_optimizer_) {
    if (!rec.found_inf.defined()) continue;
    found = found.defined() ? logical_or(found, rec.found_inf) : rec.found_inf;
  }
  per_optimizer_.clear();
  if (!found.defined()) return;
  // All on the device: no value comes back to the host.
  const Tensor clean = logical_not(found);
  const Tensor tracker1 = growth_tracker_ + Scalar(int64_t{1});
  const Tensor grow = logical_and(clean, eq(tracker1, Scalar(options_.growth_interval)));
  const Tensor grown = scale_ * Scalar(options_.growth_factor);
  const Tensor backed = scale_ * Scalar(options_.backoff_factor);
  Tensor next = where(logical_and(grow, isfinite(grown)), grown, scale_);
  next = where(found, backed, next);
  growth_tracker_ = where(logical_or(found, grow), zeros_like(tracker1), tracker1);
  scale_ = next.to(kFloat32);
}

double GradScaler::get_scale() const {
  if (!options_.enabled) return 1.0;
  return scale_.defined() ? static_cast<double>(scale_.item<float>()) : host_scale_;
}

int64_t GradScaler::growth_tracker() const {
  return growth_tracker_.defined() ? growth_tracker_.item<int64_t>() : host_tracker_;
}

std::map<std::string, double> GradScaler::state_dict() const {
  if (!options_.enabled) return {};
  return {{"scale", get_scale()},
          {"growth_factor", options_.growth_factor},
          {"backoff_factor", options_.backoff_factor},
          {"growth_interval", static_cast<double>(options_.growth_interval)},
          {"growth_tracker", static_cast<double>(growth_tracker())}};
}

void GradScaler::load_state_dict(const std::map<std::string, double>& state) {
  if (!options_.enabled) return;
  EMBER_CHECK(!state.empty(), ValueError,
              "GradScaler::load_state_dict: the state is empty (it was saved without an enabled GradScaler)");
  auto get = [&](const char* key) {
    const auto it = state.find(key);
    EMBER_CHECK(it != state.end(), ValueError, "GradScaler::load_state_dict: missing key \"", key, "\"");
    return it->second;
  };
  auto integral = [&](const char* key, double v, double min) {
    EMBER_CHECK(std::isfinite(v) && v >= min && v == std::floor(v) && v < 9.0e18, ValueError,
                "GradScaler::load_state_dict: \"", key, "\" must be an integer >= ", min, ", got ", v);
    return static_cast<int64_t>(v);
  };
  GradScalerOptions o = options_;
  o.init_scale = get("scale");
  o.growth_factor = get("growth_factor");
  o.backoff_factor = get("backoff_factor");
  o.growth_interval = integral("growth_interval", get("growth_interval"), 1);
  check_options(o, "GradScaler::load_state_dict");
  const int64_t tracker = integral("growth_tracker", get("growth_tracker"), 0);
  EMBER_CHECK(tracker < o.growth_interval, ValueError, "GradScaler::load_state_dict: growth_tracker (", tracker,
              ") must be below growth_interval (", o.growth_interval, ")");
  options_.growth_factor = o.growth_factor;
  options_.backoff_factor = o.backoff_factor;
  options_.growth_interval = o.growth_interval;
  host_scale_ = o.init_scale;
  host_tracker_ = tracker;
  per_optimizer_.clear();
  if (scale_.defined()) {
    const Device dev = scale_.device();
    scale_ = Tensor();
    growth_tracker_ = Tensor();
    ensure_device(dev);
  }
}

}  // namespace ember::amp
