// Recording: edges, saved tensors, lambda nodes, and history on outputs.
#include "ember/autograd/node.hpp"

#include <atomic>


namespace ember::autograd {

namespace {
std::atomic<uint64_t> g_sequence{0};

/// Accumulates incoming gradients into a leaf's .grad; runs the leaf's hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  auto impl = leaf_.lock();
  if (!impl || grads.empty() || !grads[0].defined()) return {};
  Tensor g = std::move(grads[0]);
  for (auto& hook : impl->hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  NoGradGuard no_grad;
  if (!impl->grad) {
    // Keep the incoming buffer when nothing else can see it; copy otherwise (it may alias
    // another tensor's gradient, e.g. both inputs of an add receive the same tensor).
    bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
                     g.shape() == impl->shape && g.dtype() == impl->dtype;
    Tensor stored = exclusive ? g : g.clone();
    impl->grad = stored.detach().impl_ptr();
  } else {
    Tensor cur(impl->grad);
    cur.add_(g);
  }
  Tensor self(impl);
  for (auto& hook : impl->post_accumulate_hooks) hook(self);
  return {};
}
}  // namespace

namespace detail {
Tensor run_leaf_hooks(Node& accumulate_grad, Tensor grad) {
  auto* acc = dynamic_cast<AccumulateGrad*>(&accumulate_grad);
  auto impl = acc ? acc->leaf() : nullptr;
  if (!impl) return grad;
  for (auto& hook : impl->hooks) {
    Tensor r = hook(grad);
    if (r.defined()) grad = r;
  }
  return grad;
}
}  // namespace detail

Node::Node() : sequence_nr(g_sequence.fetch_add(1, std::memory_order_relaxed)) {}

SavedTensor::SavedTensor(const Tensor& t) : defined_(t.defined()) {
  if (!t.defined()) return;
  data_ = t.detach();
  version_ = t.storage()->version();
}

Tensor SavedTensor::get() const {
  if (!defined_) return Tensor();
  EMBER_CHECK(data_.defined(), AutogradError,
              "Trying to backward through the graph a second time (or access saved tensors after they have "
              "been freed). Pass retain_graph=true to the first backward() if you need to do this.");
  EMBER_CHECK(data_.storage()->version() == version_, AutogradError,
              "one of the tensors needed for gradient computation (shape ", shape_str(data_.shape()), ", dtype ",
              dtype_name(data_.dtype()), ") has been modified by an in-place operation: it was at version ",
              version_, " when saved and is now at version ", data_.storage()->version(),
              ". Clone it before modifying it in place.");
  return data_;
}

std::vector<Tensor> LambdaNode::apply(std::vector<Tensor>&& grad_outputs) {
  EMBER_CHECK(fn_ != nullptr, AutogradError, name_,
              ": trying to backward through the graph a second time. Pass retain_graph=true to the first "
              "backward() if you need to do this.");
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < needs.size(); ++i) needs[i] = next_edges[i].valid();
  return fn_(grad_outputs, needs);
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  TensorImpl& impl = t.impl();
  if (impl.grad_fn) return {impl.grad_fn, impl.output_nr};
  if (!impl.requires_grad) return {};
  std::shared_ptr<Node> acc = impl.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    acc->outputs.push_back({impl.shape, impl.dtype, impl.device});
    impl.grad_accumulator = acc;
  }
  return {acc, 0};
}

std::shared_ptr<Node> make_node(std::string name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<LambdaNode>(std::move(name), std::move(fn));
  node->next_edges.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  return node;
}

void set_history(const std::vector<Tensor>& outputs, const std::shared_ptr<Node>& node) {
  node->outputs.clear();
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = outputs[i];
    if (!t.defined()) {
      node->outputs.push_back({});
      continue;
    }
    TensorImpl& impl = t.impl();
    node->outputs.push_back({impl.shape, impl.dtype, impl.device});
    impl.grad_fn = node;
    impl.output_nr = i;
    impl.requires_grad = true;
  }
}

Tensor record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output, BackwardFn fn) {
  if (any_requires_grad(inputs)) set_history(output, make_node(name, inputs, std::move(fn)));
  return output;
}

void record_multi(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                  BackwardFn fn) {
  if (any_requires_grad(inputs)) set_history(outputs, make_node(name, inputs, std::move(fn)));
}

void check_inplace(const Tensor& self, const char* op) {
  if (!GradMode::is_enabled()) return;
  const TensorImpl& impl = self.impl();
  EMBER_CHECK(!(impl.grad_fn == nullptr && impl.requires_grad), AutogradError, op,
              ": a leaf tensor that requires grad (shape ", shape_str(impl.shape),
              ") cannot be modified in place while grad mode is on; wrap the update in NoGradGuard");
  EMBER_CHECK(!(impl.is_view && impl.grad_fn != nullptr), NotImplemented, op,
              ": in-place modification of a view that requires grad is not supported (shape ",
              shape_str(impl.shape), "); clone() the view first");
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  EMBER_CHECK(lead >= 0, ShapeError, "sum_to: cannot reduce ", shape_str(grad.shape()), " to ", shape_str(shape));
  Shape dims;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
    } else if (shape[i - lead] == 1 && grad.size(i) != 1) {
      dims.push_back(i);
    }
  }
  Tensor r = dims.empty() ? grad : grad.sum(dims, /*keepdim=*/true);
  if (lead > 0) r = r.reshape(shape);
  return r;
}

}  // namespace ember::autograd
