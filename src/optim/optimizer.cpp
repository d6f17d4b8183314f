#include "ember/optim/optimizer.hpp"

#include <set>

#include "ember/core/grad_mode.hpp"

namespace ember::optim {

double ParamGroup::get(const std::string& key) const {
  auto it = options.find(key);
  EMBER_CHECK(it != options.end(), ValueError, "optimizer: parameter group has no option \"", key, "\"");
  return it->second;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults, std::string type)
    : defaults_(std::move(defaults)), type_(std::move(type)) {
  EMBER_CHECK(!groups.empty(), ValueError, type_, ": got an empty parameter list");
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  for (auto& [k, v] : group.options)
    EMBER_CHECK(defaults_.count(k) != 0, ValueError, type_, ": unknown option \"", k, "\" in a parameter group");
  for (auto& [k, v] : defaults_) group.options.emplace(k, v);
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    EMBER_CHECK(p.defined(), ValueError, type_, ": parameter ", i, " of group ", groups_.size(), " is undefined");
    EMBER_CHECK(p.is_leaf(), ValueError, type_, ": can only optimize leaf tensors (parameter ", i, ")");
    EMBER_CHECK(is_floating(p.dtype()), DTypeError, type_, ": parameters must be floating point, got ",
                dtype_name(p.dtype()));
  }
  groups_.push_back(std::move(group));
  // Keys must be unique across groups (a parameter in two groups would be updated twice).
  std::set<std::string> keys;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i)
      EMBER_CHECK(keys.insert(param_key(g, i)).second, ValueError, type_, ": parameter \"", param_key(g, i),
                  "\" appears more than once");
}

std::string Optimizer::param_key(size_t group, size_t index) const {
  const Tensor& p = groups_[group].params[index];
  if (!p.name().empty()) return p.name();
  return "param" + std::to_string(group) + "." + std::to_string(index);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& g : groups_) {
    for (auto& p : g.params) {
      if (!p.grad().defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
      } else {
        NoGradGuard ng;
        p.grad().zero_();
      }
    }
  }
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  for (auto& [key, entries] : state_)
    for (auto& [name, t] : entries) {
      if (!created(key, name)) continue;  // a pending entry whose steps were all skipped
      out["state." + key + "." + name] = t.detach();
    }
  for (size_t g = 0; g < groups_.size(); ++g)
    for (auto& [k, v] : groups_[g].options)
      out["param_groups." + std::to_string(g) + "." + k] = full({}, v, {.dtype = kFloat64});
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& dict, bool strict) {
  std::map<std::string, std::pair<size_t, size_t>> by_key;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) by_key[param_key(g, i)] = {g, i};
  std::map<std::string, std::map<std::string, Tensor>> state;
  std::vector<std::string> unknown;
  for (auto& [name, t] : dict) {
    if (name.rfind("param_groups.", 0) == 0) {
      const std::string rest = name.substr(13);
      const size_t dot = rest.find('.');
      EMBER_CHECK(dot != std::string::npos, ValueError, type_, ": malformed optimizer key \"", name, "\"");
      const size_t g = std::stoul(rest.substr(0, dot));
      const std::string opt = rest.substr(dot + 1);
      EMBER_CHECK(g < groups_.size(), ValueError, type_, ": state has parameter group ", g, " but the optimizer has ",
                  groups_.size());
      // Learning-rate schedulers keep their per-group values in the group, as PyTorch does.
      static const std::set<std::string> kSchedulerOptions = {"initial_lr", "max_lr", "min_lr", "max_momentum",
                                                              "base_momentum"};
      EMBER_CHECK(defaults_.count(opt) != 0 || kSchedulerOptions.count(opt) != 0, ValueError, type_,
                  ": unknown option \"", opt, "\" in saved state");
      groups_[g].options[opt] = t.item<double>();
      continue;
    }
    EMBER_CHECK(name.rfind("state.", 0) == 0, ValueError, type_, ": unexpected optimizer key \"", name, "\"");
    const std::string rest = name.substr(6);
    // The parameter key itself contains dots: match the longest known key that prefixes rest.
    std::string match;
    for (auto& [key, pos] : by_key)
      if (rest.size() > key.size() && rest.compare(0, key.size(), key) == 0 && rest[key.size()] == '.' &&
          key.size() > match.size())
        match = key;
    if (match.empty()) {
      unknown.push_back(rest);
      continue;
    }
    auto [g, i] = by_key[match];
    const Tensor& p = groups_[g].params[i];
    const std::string entry = rest.substr(match.size() + 1);
    // Step counts stay where the step reads them by default (the host, see Adam::step), so a
    // restored CUDA optimizer keeps the no-synchronisation fast path; a guarded CUDA step moves
    // its count to the device itself.
    Tensor value = (entry == "step" ? t.cpu() : t.to(p.device())).clone();
    if (entry != "step")
      EMBER_CHECK(value.shape() == p.shape(), ValueError, type_, ": state \"", entry, "\" of \"", match, "\" has shape ",
                  shape_str(value.shape()), " but the parameter has shape ", shape_str(p.shape()));
    state[match][entry] = value;
  }
  if (strict && !unknown.empty()) {
    std::string list;
    for (auto& u : unknown) list += " \"" + u + "\"";
    EMBER_THROW(ValueError, type_, ": saved state for parameters this optimizer does not have:", list);
  }
  state_ = std::move(state);
  pending_state_.clear();
}

bool Optimizer::created(const std::string& key, const std::string& name) const {
  const auto k = pending_state_.find(key);
  if (k == pending_state_.end()) return true;
  const auto e = k->second.find(name);
  if (e == k->second.end()) return true;
  // One small copy to the host (a synchronisation when the flags live on a device).
  for (const bool f : e->second.detach().to_vector<bool>())
    if (!f) return false;
  return true;
}

void Optimizer::set_skip_flag(Tensor flag) {
  if (!flag.defined()) {
    skip_flag_ = Tensor();
    return;
  }
  EMBER_CHECK(flag.dim() == 0, ValueError, type_, ": the skip flag must be a 0-d bool tensor, got shape ",
              shape_str(flag.shape()));
  EMBER_CHECK(flag.dtype() == kBool, ValueError, type_, ": the skip flag must be a 0-d bool tensor, got dtype ",
              dtype_name(flag.dtype()));
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Device d = groups_[g].params[i].device();
      EMBER_CHECK(flag.device() == d, DeviceError, type_, ": the skip flag is on ", flag.device().str(),
                  " but parameter \"", param_key(g, i), "\" is on ", d.str(),
                  " (the flag must be on the parameters' device)");
    }
  skip_flag_ = flag.detach();
}

Tensor Optimizer::take_skip_flag() {
  Tensor f = std::move(skip_flag_);
  skip_flag_ = Tensor();
  return f;
}

}  // namespace ember::optim
