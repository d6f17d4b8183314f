// The autograd graph. Each differentiable op that runs with grad mode on and an input that
// requires grad records one Node: edges to the nodes that produced its inputs, and a backward
// function written with ops. The engine (engine.hpp) walks these nodes from the loss.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "ember/core/grad_mode.hpp"
#include "ember/core/tensor.hpp"

namespace ember::autograd {

class Node;

/// Points at input `input_nr` of `fn` (the slot its gradient is added into).
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

/// Shape, dtype and device of one output, so an unreached output's gradient can be zeros.
struct OutputMeta {
  Shape shape;
  DType dtype = kFloat32;
  Device device = Device::cpu();
};

class EMBER_API Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Gradients w.r.t. this node's outputs → gradients w.r.t. its inputs (one per next edge;
  /// undefined where an input needs none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  virtual std::string name() const = 0;
  /// Drops saved tensors after a backward pass without retain_graph.
  virtual void release() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  /// Hooks on output i's gradient (tensor hooks on non-leaves, retain_grad).
  std::vector<std::pair<uint32_t, TensorHook>> pre_hooks;
  /// Creation order; the engine runs later nodes first.
  uint64_t sequence_nr;

  bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].valid(); }
};

/// A tensor saved for backward: a detached alias plus the storage version at save time.
/// Unpacking after an in-place change of that storage throws AutogradError.
class EMBER_API SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  /// The saved value; throws if it was modified in place or released.
  Tensor get() const;
  void reset() { data_ = Tensor(); }
  bool defined() const { return defined_; }

 private:
  Tensor data_;
  uint64_t version_ = 0;
  bool defined_ = false;
};

/// grads → input grads; `needs[i]` says whether input i wants a gradient.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads, const std::vector<bool>& needs)>;

/// A node whose backward is a lambda. Saved tensors live in the lambda's captures
/// (as SavedTensor); release() drops the lambda.
class EMBER_API LambdaNode : public Node {
 public:
  LambdaNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  std::string name() const override { return name_; }
  void release() override { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
};

/// True when grad mode is on and any defined input requires grad.
EMBER_API bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
EMBER_API bool any_requires_grad(const std::vector<Tensor>& inputs);
inline bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

/// Edge to where the gradient of `t` must go: its grad_fn, its leaf accumulator, or none.
EMBER_API Edge gradient_edge(const Tensor& t);

/// Creates a LambdaNode with edges to `inputs` (undefined or non-grad inputs get no edge).
EMBER_API std::shared_ptr<Node> make_node(std::string name, const std::vector<Tensor>& inputs, BackwardFn fn);

/// Makes `node` the grad_fn of `outputs` (output i ↔ node output i).
EMBER_API void set_history(const std::vector<Tensor>& outputs, const std::shared_ptr<Node>& node);
inline void set_history(const Tensor& output, const std::shared_ptr<Node>& node) {
  set_history(std::vector<Tensor>{output}, node);
}

/// Convenience for the common case: if grad is needed for any input, records a LambdaNode
/// producing `output`. Returns output.
EMBER_API Tensor record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output, BackwardFn fn);
/// As record, for ops with several outputs.
EMBER_API void record_multi(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                            BackwardFn fn);

/// Called by in-place ops on `self` before they modify it. With grad mode on, throws
/// AutogradError for a leaf that requires grad, and NotImplemented for a view that requires
/// grad (clone it first). After modifying, the op bumps the storage version
/// (self.storage()->bump_version()) and, if grad is needed, calls record(name, {self, ...},
/// self, fn), which makes the new node self's grad_fn (its edge points at the old history).
EMBER_API void check_inplace(const Tensor& self, const char* op);

/// Reduces a gradient of a broadcast result back to `shape` by summing broadcast dims.
EMBER_API Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace ember::autograd
