// Learning-rate schedulers with torch.optim.lr_scheduler's semantics: the same chainable
// (recursive) update formulas, the same initial step at construction, the same special cases,
// so that an Ember run and a PyTorch run see bit-for-bit comparable learning rates.
//
//   optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
//   optim::CosineAnnealingLR sched(opt, /*T_max=*/100);
//   for (...) { ...; opt.step(); sched.step(); }
//
// A scheduler writes each group's "lr" option (and OneCycleLR "momentum" or "beta1"). As in
// PyTorch it also records the group's starting learning rate as the option "initial_lr" the
// first time a scheduler is attached (later schedulers on the same optimizer reuse it, which
// is what makes SequentialLR and chained schedulers work), and OneCycleLR records "max_lr",
// "min_lr", "max_momentum" and "base_momentum". These options travel in the optimizer's
// state_dict like PyTorch's param_groups entries.
//
// The optimizer must outlive its schedulers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

/// A scheduler's resumable state: "last_epoch", "step_count", "base_lrs.<i>", "last_lr.<i>"
/// (SequentialLR adds "schedulers.<k>.<key>" for each child). Hyper-parameters are not
/// included: re-create the scheduler with the same arguments, then load its state.
using SchedulerState = std::map<std::string, double>;

class EMBER_API LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch/iteration and writes the new learning rate of every group.
  virtual void step();
  /// Jumps to `epoch` using the scheduler's closed form where it has one (the recursive form
  /// otherwise), as PyTorch's deprecated step(epoch).
  virtual void step(int64_t epoch);
  /// The learning rate of each group as last written by this scheduler.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  /// Each group's "initial_lr" when the scheduler was created.
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  int64_t last_epoch() const { return last_epoch_; }
  Optimizer& optimizer() const { return *optimizer_; }

  /// See SchedulerState.
  virtual SchedulerState state_dict() const;
  /// Restores what state_dict wrote (ValueError on a missing key or a group-count mismatch).
  /// The optimizer's learning rates are not touched: they travel in the optimizer's own state.
  virtual void load_state_dict(const SchedulerState& state);

 protected:
  /// Records base_lrs. With last_epoch == -1 every group's "initial_lr" defaults to its current
  /// "lr"; otherwise (resuming) every group must already have "initial_lr" (ValueError).
  /// Derived constructors finish with initial_step().
  LRScheduler(Optimizer& optimizer, int64_t last_epoch, const char* name);
  /// PyTorch's _initial_step: resets the step count and performs the first step().
  void initial_step();
  /// The chainable update: the new learning rate of each group from the current ones.
  virtual std::vector<double> compute_lr() = 0;
  /// The closed form at last_epoch, used by step(epoch); nullopt where there is none.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }
  /// Each group's current "lr".
  std::vector<double> group_lrs() const;
  void write_lrs(const std::vector<double>& lrs);

  Optimizer* optimizer_;
  std::string name_;
  int64_t last_epoch_;
  int64_t step_count_ = 0;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;

 private:
  friend class SequentialLR;  // restarts its children
};

/// Multiplies the learning rate by gamma every step_size epochs.
class EMBER_API StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// Multiplies the learning rate by gamma at each milestone (a repeated milestone multiplies by
/// gamma once per repetition, as PyTorch's Counter).
class EMBER_API MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1, int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

/// Multiplies the learning rate by gamma every epoch.
class EMBER_API ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma, int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  double gamma_;
};

/// Cosine annealing from the base learning rate to eta_min over T_max epochs, in PyTorch's
/// recursive form (which, past T_max, keeps oscillating rather than restarting).
class EMBER_API CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0, int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

/// Scales the base learning rate by a factor going linearly from start_factor to end_factor
/// over total_iters epochs (then constant).
class EMBER_API LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5,
           int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

enum class AnnealStrategy { cos, linear };

struct OneCycleLROptions {
  double pct_start = 0.3;
  AnnealStrategy anneal_strategy = AnnealStrategy::cos;
  /// Cycle the group's "momentum" (SGD) or "beta1" (Adam, AdamW) inversely to the lr.
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

/// The 1cycle policy (torch.optim.lr_scheduler.OneCycleLR): warm up from max_lr/div_factor to
/// max_lr over pct_start of total_steps, then anneal to initial_lr/final_div_factor (three
/// phases: up, back down to initial, then to the minimum). Stepping past total_steps throws
/// ValueError.
class EMBER_API OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, OneCycleLROptions options = {},
             int64_t last_epoch = -1);
  /// One max_lr per parameter group.
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps, OneCycleLROptions options = {},
             int64_t last_epoch = -1);

 protected:
  std::vector<double> compute_lr() override;

 private:
  struct Phase {
    double end_step;
    const char* start_lr;
    const char* end_lr;
    const char* start_momentum;
    const char* end_momentum;
  };
  double anneal(double start, double end, double pct) const;

  int64_t total_steps_;
  OneCycleLROptions options_;
  std::vector<Phase> phases_;
  std::string momentum_key_;  // "momentum", "beta1" or "" when not cycling
};

/// Runs schedulers one after another: schedulers[k] takes over at milestones[k-1] (restarted
/// at its epoch 0 there), e.g. a LinearLR warm-up followed by CosineAnnealingLR. All must
/// drive the same optimizer; milestones.size() must be schedulers.size() − 1.
class EMBER_API SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones, int64_t last_epoch = -1);

  void step() override;
  /// Not supported (as in PyTorch): throws ValueError.
  void step(int64_t epoch) override;
  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& state) override;

 protected:
  std::vector<double> compute_lr() override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace ember::optim
