// nn::Module: parameters, buffers and child modules registered by name.
//
//   struct Net : nn::Module {
//     nn::Linear fc1{784, 256}, fc2{256, 10};
//     Net() { register_modules({{"fc1", fc1}, {"fc2", fc2}}); }
//     Tensor forward(const Tensor& x) { return fc2(nn::functional::relu(fc1(x))); }
//   };
//
// Ownership and copying. A module registers its members by address, so modules are neither
// copyable nor movable (a copy would point at the original's members). Hold models by
// reference, or by std::unique_ptr/std::shared_ptr; containers (Sequential, ModuleList,
// ModuleDict) own their children through shared_ptr. Parameters are Tensor handles: moving a
// module to another device or dtype swaps the data behind each handle (Tensor::set_data), so
// handles taken earlier (an optimizer's) keep seeing the parameter.
//
// LoRA. nn::Linear has an adapter slot (see linear.hpp): lora::inject fills the slot of
// each matching Linear after the user's model is built, so the user's own `fc1` member
// becomes a LoRA layer in place, without the model being rebuilt.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::nn {

/// A name → tensor map; ordered by name (state dicts, safetensors files).
using StateDict = std::map<std::string, Tensor>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;
struct NamedModule {
  std::string name;
  Module& module;
};

class EMBER_API Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  /// The module's type name ("Linear", "Sequential", ...), for printing and errors.
  virtual std::string type_name() const { return "Module"; }

  // ---------------------------------------------------------------- registration
  /// Registers `slot` (a member Tensor) as a parameter. Returns slot.
  Tensor& register_parameter(const std::string& name, Tensor& slot, bool requires_grad = true);
  /// Registers `slot` as a buffer (saved in state dicts, moved by to(), never trained).
  Tensor& register_buffer(const std::string& name, Tensor& slot);
  /// Registers a child module owned by the caller (usually a member).
  Module& register_module(const std::string& name, Module& child);
  /// Registers a child module owned by this module.
  Module& register_module(const std::string& name, std::shared_ptr<Module> child);
  void register_modules(std::initializer_list<NamedModule> children);

  // ---------------------------------------------------------------- traversal
  /// Parameters of this module and (if recurse) its descendants, each once (tied parameters
  /// are reported under their first name). Each returned tensor's name() is its dotted path.
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  /// Direct children in registration order.
  std::vector<std::pair<std::string, Module*>> named_children() const;
  /// This module ("" ) and every descendant with its dotted path, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  /// The descendant at a dotted path ("layers.1"); throws ValueError when absent.
  Module& submodule(const std::string& path) const;

  // ---------------------------------------------------------------- modes and movement
  /// Sets training mode on this module and its descendants (dropout, batch norm).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Moves parameters and buffers in place (the Tensor handles stay the same).
  void to(Device device);
  /// Converts floating parameters and buffers in place.
  void to(DType dtype);
  void to(Device device, DType dtype);
  /// Clears (set_to_none) or zeroes the .grad of every parameter.
  void zero_grad(bool set_to_none = true);
  /// requires_grad_(on) for every parameter (freeze / unfreeze).
  void requires_grad_(bool on);

  // ---------------------------------------------------------------- state
  /// Parameters and buffers by dotted name (tensors alias the module's, detached).
  StateDict state_dict() const;
  /// Copies values into the module. strict: every key must match (names missing from the
  /// dict, unexpected names and shape mismatches are reported together in one ValueError).
  /// Non-strict: missing/unexpected keys are skipped and returned; shape mismatches still throw.
  struct LoadResult {
    std::vector<std::string> missing_keys;
    std::vector<std::string> unexpected_keys;
  };
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);

  /// Multi-line description of the module tree, as PyTorch prints a model.
  std::string str() const;
  /// Extra text shown inside the parentheses of this module's line ("784, 256, bias=True").
  virtual std::string extra_repr() const { return ""; }

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
  };
  struct Child {
    std::string name;
    Module* module;
  };
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out,
               std::vector<const TensorImpl*>& seen) const;

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<Child> children_;
  std::vector<std::shared_ptr<Module>> owned_;
  bool training_ = true;
};

/// A module with one tensor in and one tensor out (what Sequential chains).
class EMBER_API UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

EMBER_API std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace ember::nn
