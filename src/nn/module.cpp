// nn::Module registration, traversal, movement and state dicts.
#include "ember/nn/module.hpp"

#include <algorithm>
#include <sstream>

#include "ember/core/grad_mode.hpp"

namespace ember::nn {

void Module::check_new_name(const std::string& name) const {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, type_name(),
              ": invalid name \"", name, "\" (expected a non-empty name without '.')");
  auto taken = [&](const std::string& n) {
    for (const auto& p : params_)
      if (p.name == n) return true;
    for (const auto& b : buffers_)
      if (b.name == n) return true;
    for (const auto& c : children_)
      if (c.name == n) return true;
    return false;
  };
  EMBER_CHECK(!taken(name), ValueError, type_name(), ": \"", name, "\" is already registered");
}

Tensor& Module::register_parameter(const std::string& name, Tensor& slot, bool requires_grad) {
  check_new_name(name);
  if (slot.defined()) {
    EMBER_CHECK(slot.is_leaf(), ValueError, type_name(), ": parameter \"", name,
                "\" must be a leaf tensor (detach() it first)");
    if (is_floating(slot.dtype())) slot.requires_grad_(requires_grad);
  }
  params_.push_back({name, &slot});
  return slot;
}

Tensor& Module::register_buffer(const std::string& name, Tensor& slot) {
  check_new_name(name);
  buffers_.push_back({name, &slot});
  return slot;
}

Module& Module::register_module(const std::string& name, Module& child) {
  check_new_name(name);
  EMBER_CHECK(&child != this, ValueError, type_name(), ": a module cannot be its own child");
  children_.push_back({name, &child});
  return child;
}

Module& Module::register_module(const std::string& name, std::shared_ptr<Module> child) {
  EMBER_CHECK(child != nullptr, ValueError, type_name(), ": child \"", name, "\" is null");
  Module& ref = register_module(name, *child);
  owned_.push_back(std::move(child));
  return ref;
}

void Module::register_modules(std::initializer_list<NamedModule> children) {
  for (const auto& c : children) register_module(c.name, c.module);
}

void Module::collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out,
                     std::vector<const TensorImpl*>& seen) const {
  for (const auto& s : params ? params_ : buffers_) {
    if (!s.tensor->defined()) continue;
    const TensorImpl* id = s.tensor->impl_ptr().get();
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
    seen.push_back(id);
    out.emplace_back(prefix + s.name, *s.tensor);
  }
  if (!recurse) return;
  for (const auto& c : children_) c.module->collect(prefix + c.name + ".", params, true, out, seen);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::vector<const TensorImpl*> seen;
  collect("", true, recurse, out, seen);
  for (auto& [name, t] : out)
    if (t.name().empty()) t.set_name(name);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::vector<const TensorImpl*> seen;
  collect("", false, recurse, out, seen);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& c : children_) out.emplace_back(c.name, c.module);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  out.emplace_back("", const_cast<Module*>(this));
  for (const auto& c : children_) {
    for (auto& [path, m] : c.module->named_modules()) out.emplace_back(path.empty() ? c.name : c.name + "." + path, m);
  }
  return out;
}

Module& Module::submodule(const std::string& path) const {
  for (auto& [name, m] : named_modules())
    if (name == path) return *m;
  EMBER_THROW(ValueError, type_name(), ": no submodule named \"", path, "\"");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.module->train(on);
}

namespace {
void move_tensor(Tensor& t, Device device, std::optional<DType> dtype) {
  if (!t.defined()) return;
  DType dt = dtype && is_floating(t.dtype()) ? *dtype : t.dtype();
  if (t.device() == device && t.dtype() == dt) return;
  Tensor moved;
  {
    NoGradGuard ng;
    moved = t.detach().to(device, dt);
  }
  Tensor grad = t.grad();
  t.set_data(moved);
  if (grad.defined()) {
    NoGradGuard ng;
    t.set_grad(grad.to(device, dt));
  }
}
}  // namespace

void Module::to(Device device) {
  for (auto& [name, m] : named_modules()) {
    for (auto& p : m->params_) move_tensor(*p.tensor, device, std::nullopt);
    for (auto& b : m->buffers_) move_tensor(*b.tensor, device, std::nullopt);
  }
}

void Module::to(DType dtype) {
  for (auto& [name, m] : named_modules()) {
    for (auto& p : m->params_)
      if (p.tensor->defined()) move_tensor(*p.tensor, p.tensor->device(), dtype);
    for (auto& b : m->buffers_)
      if (b.tensor->defined()) move_tensor(*b.tensor, b.tensor->device(), dtype);
  }
}

void Module::to(Device device, DType dtype) {
  for (auto& [name, m] : named_modules()) {
    for (auto& p : m->params_) move_tensor(*p.tensor, device, dtype);
    for (auto& b : m->buffers_) move_tensor(*b.tensor, device, dtype);
  }
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) {
    if (!p.grad().defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      NoGradGuard ng;
      p.grad().zero_();
    }
  }
}

void Module::requires_grad_(bool on) {
  for (Tensor& p : parameters())
    if (is_floating(p.dtype())) p.requires_grad_(on);
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t.detach();
  for (auto& [name, t] : named_buffers()) out[name] = t.detach();
  return out;
}

Module::LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  NamedTensors own = named_parameters();
  NamedTensors bufs = named_buffers();
  own.insert(own.end(), bufs.begin(), bufs.end());
  LoadResult result;
  std::vector<std::string> mismatched;
  for (auto& [name, t] : own) {
    auto it = dict.find(name);
    if (it == dict.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    if (it->second.shape() != t.shape()) {
      mismatched.push_back(name + ": checkpoint has shape " + shape_str(it->second.shape()) +
                           ", the model has " + shape_str(t.shape()));
    }
  }
  for (auto& [name, t] : dict) {
    bool known = std::any_of(own.begin(), own.end(), [&](const auto& p) { return p.first == name; });
    if (!known) result.unexpected_keys.push_back(name);
  }
  const bool fail = !mismatched.empty() || (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty()));
  if (fail) {
    std::ostringstream msg;
    msg << "load_state_dict: error(s) loading the state dict into " << type_name() << ":";
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg << "\n  " << what << ":";
      for (const auto& k : keys) msg << " \"" << k << "\"";
    };
    if (strict) list("missing keys", result.missing_keys);
    if (strict) list("unexpected keys", result.unexpected_keys);
    for (const auto& m : mismatched) msg << "\n  size mismatch for " << m;
    throw ValueError(msg.str());
  }
  NoGradGuard ng;
  for (auto& [name, t] : own) {
    auto it = dict.find(name);
    if (it == dict.end()) continue;
    Tensor dst = t;
    dst.detach().copy_(it->second);
  }
  return result;
}

std::string Module::str() const {
  std::ostringstream os;
  std::string extra = extra_repr();
  if (children_.empty()) {
    os << type_name() << "(" << extra << ")";
    return os.str();
  }
  os << type_name() << "(";
  if (!extra.empty()) os << "\n  " << extra;
  for (const auto& c : children_) {
    std::string child = c.module->str();
    std::string indented;
    for (char ch : child) {
      indented += ch;
      if (ch == '\n') indented += "  ";
    }
    os << "\n  (" << c.name << "): " << indented;
  }
  os << "\n)";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.str(); }

}  // namespace ember::nn
