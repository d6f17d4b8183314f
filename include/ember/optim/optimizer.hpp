// Optimizers with parameter groups and per-parameter state keyed by the parameter's dotted
// name, so a checkpoint resumes across world sizes and with frozen parameters.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::optim {

/// Parameters that share hyper-parameters ("lr", "weight_decay", "momentum", "beta1", ...).
/// Options missing from a group take the optimizer's defaults.
struct EMBER_API ParamGroup {
  std::vector<Tensor> params;
  std::map<std::string, double> options;

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> p, std::map<std::string, double> o = {})  // NOLINT: implicit from a list
      : params(std::move(p)), options(std::move(o)) {}
  double& lr() { return options.at("lr"); }
  double get(const std::string& key) const;
};

/// Name → tensor, as saved to optimizer.safetensors.
using OptimizerState = std::map<std::string, Tensor>;

class EMBER_API Optimizer {
 public:
  /// `defaults` must contain every option the optimizer reads.
  Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults, std::string type);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that requires grad and has a gradient.
  virtual void step() = 0;
  /// Clears (set_to_none, the default as in PyTorch 2) or zeroes every parameter's .grad.
  void zero_grad(bool set_to_none = true);

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  void add_param_group(ParamGroup group);
  const std::string& type_name() const { return type_; }

  /// State tensors "state.<param name>.<key>" and hyper-parameters
  /// "param_groups.<i>.<option>" (0-d f64).
  OptimizerState state_dict() const;
  /// Restores what state_dict wrote. State for parameters this optimizer does not have is an
  /// error (ValueError naming them) unless `strict` is false; parameters without saved state
  /// start fresh. Hyper-parameters are restored per group.
  void load_state_dict(const OptimizerState& state, bool strict = true);

  /// Arms the next step() with a non-finite flag: a 0-d bool tensor on the parameters' device
  /// (optim::StepGuard computes it). When the flag holds true, that step() leaves every
  /// parameter and every state tensor (step counts included) bit-identical; on CUDA the update
  /// kernels read the flag themselves, so no host synchronisation happens. step() consumes the
  /// flag (the step after it is unguarded unless armed again). An undefined tensor disarms.
  void set_skip_flag(Tensor flag);
  /// The armed flag (undefined when none).
  const Tensor& skip_flag() const { return skip_flag_; }

  /// The key of a parameter's state: its name (set by Module::named_parameters), or
  /// "param<group>.<index>" for unnamed tensors.
  std::string param_key(size_t group, size_t index) const;

 protected:
  /// Per-parameter state (momentum buffers, moments, step counts), by param_key.
  std::map<std::string, std::map<std::string, Tensor>> state_;
  /// Entries of state_ whose existence only the device knows: state_[key][name] counts as
  /// created once every element of the tensor pending_state_[key][name] is nonzero (SGD: a
  /// guarded CUDA step creates the momentum buffer before it is known whether the step runs;
  /// the update kernels set bool flags. Adam: the device step count, > 0 once a step ran).
  /// state_dict() leaves out the entries whose flags are false, as if the skipped steps had
  /// never been attempted (the CPU's and PyTorch's state); reading the flags waits for the
  /// device, only while there are any. load_state_dict() clears them with the rest of the state.
  std::map<std::string, std::map<std::string, Tensor>> pending_state_;
  /// For step() implementations: returns the armed flag (undefined when none) and disarms.
  Tensor take_skip_flag();
  /// Whether state_[key][name] counts as created (see pending_state_).
  bool created(const std::string& key, const std::string& name) const;
  std::map<std::string, double> defaults_;

 private:
  std::vector<ParamGroup> groups_;
  std::string type_;
  Tensor skip_flag_;
};

}  // namespace ember::optim
