// Learning-rate schedulers, transcribing torch/optim/lr_scheduler.py (PyTorch 1.13) formula by
// formula: the recursive forms are kept (rather than the closed forms) because they are what
// PyTorch applies on step(), and they differ from the closed forms in the last bits and, for
// CosineAnnealingLR past T_max, in value.
#include "ember/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ember::optim {

namespace {
constexpr double kPi = std::numbers::pi;

double get_or_throw(const SchedulerState& s, const std::string& key, const std::string& who) {
  auto it = s.find(key);
  EMBER_CHECK(it != s.end(), ValueError, who, "::load_state_dict: missing key \"", key, "\"");
  return it->second;
}
}  // namespace

// ------------------------------------------------------------------ LRScheduler
LRScheduler::LRScheduler(Optimizer& optimizer, int64_t last_epoch, const char* name)
    : optimizer_(&optimizer), name_(name), last_epoch_(last_epoch) {
  EMBER_CHECK(last_epoch >= -1, ValueError, name_, ": last_epoch must be >= -1, got ", last_epoch);
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& opts = groups[i].options;
    if (last_epoch == -1) {
      opts.emplace("initial_lr", opts.at("lr"));
    } else {
      EMBER_CHECK(opts.count("initial_lr") != 0, ValueError, name_, ": param_groups[", i,
                  "] has no \"initial_lr\" (needed to resume with last_epoch = ", last_epoch, ")");
    }
    base_lrs_.push_back(opts.at("initial_lr"));
  }
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

std::vector<double> LRScheduler::group_lrs() const {
  std::vector<double> out;
  for (auto& g : optimizer_->param_groups()) out.push_back(g.get("lr"));
  return out;
}

void LRScheduler::write_lrs(const std::vector<double>& lrs) {
  auto& groups = optimizer_->param_groups();
  EMBER_CHECK(lrs.size() == groups.size(), ValueError, name_, ": the optimizer has ", groups.size(),
              " parameter groups but the scheduler was made for ", lrs.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options["lr"] = lrs[i];
  last_lr_ = lrs;
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  write_lrs(compute_lr());
}

void LRScheduler::step(int64_t epoch) {
  EMBER_CHECK(epoch >= 0, ValueError, name_, ": step(epoch) needs epoch >= 0, got ", epoch);
  ++step_count_;
  last_epoch_ = epoch;
  auto closed = closed_form_lr();
  write_lrs(closed ? *closed : compute_lr());
}

SchedulerState LRScheduler::state_dict() const {
  SchedulerState s;
  s["last_epoch"] = static_cast<double>(last_epoch_);
  s["step_count"] = static_cast<double>(step_count_);
  for (size_t i = 0; i < base_lrs_.size(); ++i) s["base_lrs." + std::to_string(i)] = base_lrs_[i];
  for (size_t i = 0; i < last_lr_.size(); ++i) s["last_lr." + std::to_string(i)] = last_lr_[i];
  return s;
}

void LRScheduler::load_state_dict(const SchedulerState& s) {
  const size_t n = base_lrs_.size();
  EMBER_CHECK(s.count("base_lrs." + std::to_string(n)) == 0, ValueError, name_,
              "::load_state_dict: the state has more parameter groups than the optimizer's ", n);
  std::vector<double> base(n), last(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = get_or_throw(s, "base_lrs." + std::to_string(i), name_);
    last[i] = get_or_throw(s, "last_lr." + std::to_string(i), name_);
  }
  last_epoch_ = static_cast<int64_t>(get_or_throw(s, "last_epoch", name_));
  step_count_ = static_cast<int64_t>(get_or_throw(s, "step_count", name_));
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ------------------------------------------------------------------ StepLR
StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "StepLR"), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size > 0, ValueError, "StepLR: step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::compute_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> StepLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_)));
  return lrs;
}

// ------------------------------------------------------------------ MultiStepLR
MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::compute_lr() {
  std::vector<double> lrs = group_lrs();
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (hits == 0) return lrs;
  for (double& lr : lrs) lr *= std::pow(gamma_, static_cast<double>(hits));
  return lrs;
}

std::optional<std::vector<double>> MultiStepLR::closed_form_lr() const {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * std::pow(gamma_, static_cast<double>(passed)));
  return lrs;
}

// ------------------------------------------------------------------ ExponentialLR
ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "ExponentialLR"), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::compute_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> ExponentialLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * std::pow(gamma_, static_cast<double>(last_epoch_)));
  return lrs;
}

// ------------------------------------------------------------------ CosineAnnealingLR
CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "CosineAnnealingLR"), t_max_(T_max), eta_min_(eta_min) {
  EMBER_CHECK(T_max > 0, ValueError, "CosineAnnealingLR: T_max must be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::compute_lr() {
  std::vector<double> lrs = group_lrs();
  const double t_max = static_cast<double>(t_max_), e = static_cast<double>(last_epoch_);
  if (last_epoch_ == 0) return lrs;
  if (step_count_ == 1 && last_epoch_ > 0) {
    // Resumed at a later epoch: the closed form.
    for (size_t i = 0; i < lrs.size(); ++i)
      lrs[i] = eta_min_ + (base_lrs_[i] - eta_min_) * (1 + std::cos(e * kPi / t_max)) / 2;
    return lrs;
  }
  if ((last_epoch_ - 1 - t_max_) % (2 * t_max_) == 0) {
    // The recursion divides by 1 + cos(π(e − 1)/T_max), which is 0 here: step up from the trough.
    for (size_t i = 0; i < lrs.size(); ++i) lrs[i] += (base_lrs_[i] - eta_min_) * (1 - std::cos(kPi / t_max)) / 2;
    return lrs;
  }
  for (double& lr : lrs)
    lr = (1 + std::cos(kPi * e / t_max)) / (1 + std::cos(kPi * (e - 1) / t_max)) * (lr - eta_min_) + eta_min_;
  return lrs;
}

std::optional<std::vector<double>> CosineAnnealingLR::closed_form_lr() const {
  std::vector<double> lrs;
  const double e = static_cast<double>(last_epoch_), t_max = static_cast<double>(t_max_);
  for (double b : base_lrs_) lrs.push_back(eta_min_ + (b - eta_min_) * (1 + std::cos(kPi * e / t_max)) / 2);
  return lrs;
}

// ------------------------------------------------------------------ LinearLR
LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters,
                   int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "LinearLR"),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  // start_factor = 0 would make the recursive form divide by zero at epoch 1.
  EMBER_CHECK(start_factor > 0 && start_factor <= 1, ValueError, "LinearLR: start_factor must be in (0, 1], got ",
              start_factor);
  EMBER_CHECK(end_factor >= 0 && end_factor <= 1, ValueError, "LinearLR: end_factor must be in [0, 1], got ",
              end_factor);
  EMBER_CHECK(total_iters > 0, ValueError, "LinearLR: total_iters must be positive, got ", total_iters);
  initial_step();
}

std::vector<double> LinearLR::compute_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) {
    for (double& lr : lrs) lr *= start_factor_;
    return lrs;
  }
  if (last_epoch_ > total_iters_) return lrs;
  const double d = end_factor_ - start_factor_;
  const double f =
      1.0 + d / (static_cast<double>(total_iters_) * start_factor_ + static_cast<double>(last_epoch_ - 1) * d);
  for (double& lr : lrs) lr *= f;
  return lrs;
}

std::optional<std::vector<double>> LinearLR::closed_form_lr() const {
  std::vector<double> lrs;
  const double done = static_cast<double>(std::min(total_iters_, last_epoch_));
  for (double b : base_lrs_)
    lrs.push_back(b * (start_factor_ + (end_factor_ - start_factor_) * done / static_cast<double>(total_iters_)));
  return lrs;
}

// ------------------------------------------------------------------ OneCycleLR
namespace {
// Writes OneCycleLR's per-group options before the base constructor reads "initial_lr".
Optimizer& prepare_one_cycle(Optimizer& optimizer, const std::vector<double>& max_lrs, int64_t total_steps,
                             const OneCycleLROptions& o, int64_t last_epoch) {
  auto& groups = optimizer.param_groups();
  EMBER_CHECK(max_lrs.size() == groups.size(), ValueError, "OneCycleLR: expected ", groups.size(),
              " values for max_lr, got ", max_lrs.size());
  EMBER_CHECK(total_steps > 0, ValueError, "OneCycleLR: expected a positive total_steps, got ", total_steps);
  EMBER_CHECK(o.pct_start >= 0 && o.pct_start <= 1, ValueError, "OneCycleLR: expected pct_start between 0 and 1, got ",
              o.pct_start);
  EMBER_CHECK(o.div_factor > 0 && o.final_div_factor > 0, ValueError,
              "OneCycleLR: div_factor and final_div_factor must be positive, got ", o.div_factor, " and ",
              o.final_div_factor);
  if (o.cycle_momentum) {
    const auto& opts = groups.front().options;
    EMBER_CHECK(opts.count("beta1") != 0 || opts.count("momentum") != 0, ValueError, "OneCycleLR: the ",
                optimizer.type_name(), " optimizer has no momentum or beta1 to cycle (use cycle_momentum = false)");
  }
  if (last_epoch != -1) return optimizer;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& opts = groups[i].options;
    opts["initial_lr"] = max_lrs[i] / o.div_factor;
    opts["max_lr"] = max_lrs[i];
    opts["min_lr"] = opts["initial_lr"] / o.final_div_factor;
    if (o.cycle_momentum) {
      opts[opts.count("beta1") != 0 ? "beta1" : "momentum"] = o.max_momentum;
      opts["max_momentum"] = o.max_momentum;
      opts["base_momentum"] = o.base_momentum;
    }
  }
  return optimizer;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, OneCycleLROptions options,
                       int64_t last_epoch)
    : OneCycleLR(optimizer, std::vector<double>(optimizer.param_groups().size(), max_lr), total_steps, options,
                 last_epoch) {}

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps,
                       OneCycleLROptions options, int64_t last_epoch)
    : LRScheduler(prepare_one_cycle(optimizer, max_lrs, total_steps, options, last_epoch), last_epoch, "OneCycleLR"),
      total_steps_(total_steps),
      options_(options) {
  const double n = static_cast<double>(total_steps), p = options.pct_start;
  if (options.three_phase) {
    phases_ = {{p * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {2 * p * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
               {n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  } else {
    phases_ = {{p * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  }
  if (options.cycle_momentum)
    momentum_key_ = optimizer.param_groups().front().options.count("beta1") != 0 ? "beta1" : "momentum";
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy == AnnealStrategy::cos) return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1);
  return (end - start) * pct + start;
}

std::vector<double> OneCycleLR::compute_lr() {
  EMBER_CHECK(last_epoch_ <= total_steps_, ValueError, "OneCycleLR: tried to step ", last_epoch_ + 1,
              " times; the specified number of total steps is ", total_steps_);
  const double step_num = static_cast<double>(last_epoch_);
  std::vector<double> lrs;
  for (auto& group : optimizer_->param_groups()) {
    double start_step = 0, lr = 0, momentum = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (step_num <= ph.end_step || i + 1 == phases_.size()) {
        const double pct = (step_num - start_step) / (ph.end_step - start_step);
        lr = anneal(group.get(ph.start_lr), group.get(ph.end_lr), pct);
        if (!momentum_key_.empty()) momentum = anneal(group.get(ph.start_momentum), group.get(ph.end_momentum), pct);
        break;
      }
      start_step = ph.end_step;
    }
    lrs.push_back(lr);
    if (!momentum_key_.empty()) group.options[momentum_key_] = momentum;
  }
  return lrs;
}

// ------------------------------------------------------------------ SequentialLR
SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "SequentialLR"),
      schedulers_(std::move(schedulers)),
      milestones_(std::move(milestones)) {
  EMBER_CHECK(!schedulers_.empty(), ValueError, "SequentialLR: expected at least one scheduler");
  for (size_t i = 0; i < schedulers_.size(); ++i) {
    EMBER_CHECK(schedulers_[i] != nullptr, ValueError, "SequentialLR: scheduler ", i, " is null");
    EMBER_CHECK(&schedulers_[i]->optimizer() == &optimizer, ValueError, "SequentialLR: scheduler ", i,
                " drives a different optimizer than the one passed in");
  }
  EMBER_CHECK(milestones_.size() + 1 == schedulers_.size(), ValueError,
              "SequentialLR: expected one milestone fewer than schedulers, got ", schedulers_.size(),
              " schedulers and ", milestones_.size(), " milestones");
  EMBER_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), ValueError,
              "SequentialLR: milestones must be in increasing order");
  last_epoch_ = last_epoch + 1;
  // Undo the initial steps the children took when they were built, then restart the first one.
  auto& groups = optimizer.param_groups();
  for (auto& g : groups) g.options["lr"] = g.get("initial_lr");
  for (auto& s : schedulers_) s->last_epoch_ -= 1;
  schedulers_.front()->initial_step();
  last_lr_ = schedulers_.front()->get_last_lr();
}

std::vector<double> SequentialLR::compute_lr() { return group_lrs(); }

void SequentialLR::step() {
  ++last_epoch_;
  const size_t idx =
      static_cast<size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_) {
    s.step(0);
  } else {
    s.step();
  }
  last_lr_ = s.get_last_lr();
}

void SequentialLR::step(int64_t) { EMBER_THROW(ValueError, "SequentialLR: step(epoch) is not supported; call step()"); }

SchedulerState SequentialLR::state_dict() const {
  SchedulerState s = LRScheduler::state_dict();
  for (size_t k = 0; k < schedulers_.size(); ++k)
    for (auto& [key, v] : schedulers_[k]->state_dict()) s["schedulers." + std::to_string(k) + "." + key] = v;
  return s;
}

void SequentialLR::load_state_dict(const SchedulerState& state) {
  std::vector<SchedulerState> children(schedulers_.size());
  SchedulerState own;
  for (auto& [key, v] : state) {
    if (key.rfind("schedulers.", 0) != 0) {
      own[key] = v;
      continue;
    }
    const std::string rest = key.substr(11);
    const size_t dot = rest.find('.');
    EMBER_CHECK(dot != std::string::npos, ValueError, "SequentialLR::load_state_dict: malformed key \"", key, "\"");
    const size_t k = std::stoul(rest.substr(0, dot));
    EMBER_CHECK(k < schedulers_.size(), ValueError, "SequentialLR::load_state_dict: state for scheduler ", k,
                " but there are ", schedulers_.size());
    children[k][rest.substr(dot + 1)] = v;
  }
  LRScheduler::load_state_dict(own);
  for (size_t k = 0; k < schedulers_.size(); ++k) schedulers_[k]->load_state_dict(children[k]);
}

}  // namespace ember::optim
