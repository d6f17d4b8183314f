// The backward engine: dependency counting from the roots, then nodes run in an order where
// every node runs after all nodes that feed it gradients (a ready queue ordered by creation,
// newest first, as PyTorch's engine on one device). Gradients for the same input slot are summed
// before the node runs, so hooks and AccumulateGrad see one complete gradient per pass.
#include "ember/autograd/engine.hpp"

#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace ember::autograd {

namespace detail {
// node.cpp: runs the tensor hooks of the leaf an AccumulateGrad node feeds.
Tensor run_leaf_hooks(Node& accumulate_grad, Tensor grad);
}  // namespace detail

namespace {

struct NodeCompare {
  bool operator()(Node* a, Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

Tensor zeros_for(const OutputMeta& m) { return zeros(m.shape, {.dtype = m.dtype, .device = m.device}); }

/// Runs the graph. When `capture` is non-empty, gradients arriving at those (node, slot) pairs are
/// stored in `captured` instead of flowing on (torch.autograd.grad).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                  const std::vector<Edge>* capture, std::vector<Tensor>* captured) {
  EMBER_CHECK(grads.empty() || grads.size() == roots.size(), ValueError, "backward: got ", roots.size(),
              " tensors but ", grads.size(), " gradients");
  std::vector<Edge> root_edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    EMBER_CHECK(r.defined(), ValueError, "backward: root ", i, " is an undefined tensor");
    EMBER_CHECK(r.requires_grad(), AutogradError, "backward: element ", i,
                " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      EMBER_CHECK(r.numel() == 1, AutogradError, "backward: grad can be implicitly created only for scalar outputs, "
                  "but the output has shape ", shape_str(r.shape()), "; pass a gradient");
      g = ones(r.shape(), {.dtype = r.dtype(), .device = r.device()});
    } else {
      EMBER_CHECK(g.shape() == r.shape(), ShapeError, "backward: gradient has shape ", shape_str(g.shape()),
                  " but the output has shape ", shape_str(r.shape()));
    }
    root_edges.push_back(gradient_edge(r));
    root_grads.push_back(g);
  }

  // Dependencies: how many edges point at each node from the part of the graph reachable
  // from the roots.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (auto& e : root_edges) {
    if (e.valid() && seen.insert(e.fn.get()).second) {
      stack.push_back(e.fn.get());
      keep[e.fn.get()] = e.fn;
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->next_edges) {
      if (!e.valid()) continue;
      ++deps[e.fn.get()];
      if (seen.insert(e.fn.get()).second) {
        stack.push_back(e.fn.get());
        keep[e.fn.get()] = e.fn;
      }
    }
  }

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto add_to = [&](const Edge& e, Tensor g) {
    if (!e.valid() || !g.defined()) return;
    auto& buf = buffers[e.fn.get()];
    if (buf.size() < e.fn->outputs.size()) buf.resize(std::max<size_t>(e.fn->outputs.size(), e.input_nr + 1));
    if (buf.size() <= e.input_nr) buf.resize(e.input_nr + 1);
    Tensor& slot = buf[e.input_nr];
    if (!slot.defined()) {
      slot = std::move(g);
    } else {
      NoGradGuard ng;
      slot = slot + g;
    }
  };

  std::priority_queue<Node*, std::vector<Node*>, NodeCompare> ready;
  for (size_t i = 0; i < root_edges.size(); ++i) add_to(root_edges[i], root_grads[i]);
  for (auto& e : root_edges)
    if (e.valid() && deps[e.fn.get()] == 0) {
      deps[e.fn.get()] = -1;  // queued
      ready.push(e.fn.get());
    }

  NoGradGuard no_grad;  // backward formulas are written with ops; no double backward
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[n]);
    buffers.erase(n);
    in.resize(std::max(in.size(), n->outputs.size()));

    for (auto& [slot, hook] : n->pre_hooks) {
      if (slot < in.size() && in[slot].defined()) {
        Tensor r = hook(in[slot]);
        if (r.defined()) in[slot] = r;
      }
    }

    // Captured after the tensor hooks, as torch.autograd.grad: a hook on an input changes the
    // gradient returned for it (leaf hooks live on the leaf, so they are run here explicitly).
    if (capture) {
      for (size_t c = 0; c < capture->size(); ++c) {
        const Edge& ce = (*capture)[c];
        if (ce.fn.get() == n && ce.input_nr < in.size() && in[ce.input_nr].defined()) {
          (*captured)[c] = n->name() == "AccumulateGrad" ? detail::run_leaf_hooks(*n, in[ce.input_nr])
                                                          : in[ce.input_nr];
        }
      }
    }

    std::vector<Tensor> out;
    bool is_accumulate = n->name() == "AccumulateGrad";
    // torch.autograd.grad leaves every .grad untouched.
    if (!(capture && is_accumulate)) {
      bool any = false;
      for (auto& g : in) any = any || g.defined();
      if (any) {
        for (size_t i = 0; i < in.size(); ++i)
          if (!in[i].defined() && i < n->outputs.size()) in[i] = zeros_for(n->outputs[i]);
        out = n->apply(std::move(in));
      }
    }
    if (!retain_graph) n->release();

    EMBER_CHECK(out.empty() || out.size() == n->next_edges.size(), AutogradError, n->name(), ": returned ",
                out.size(), " gradients for ", n->next_edges.size(), " inputs");
    for (size_t i = 0; i < n->next_edges.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.valid()) continue;
      if (i < out.size() && out[i].defined()) {
        // As PyTorch's validate_outputs: a gradient must have the shape of the tensor it is
        // for, and takes its dtype (a formula may compute in a wider type).
        if (e.input_nr < e.fn->outputs.size()) {
          const OutputMeta& m = e.fn->outputs[e.input_nr];
          EMBER_CHECK(out[i].shape() == m.shape, AutogradError, n->name(), ": returned a gradient of shape ",
                      shape_str(out[i].shape()), " for input ", i, " of shape ", shape_str(m.shape));
          if (out[i].dtype() != m.dtype && is_floating(m.dtype)) out[i] = out[i].to(m.dtype);
        }
        add_to(e, out[i]);
      }
      int& d = deps[e.fn.get()];
      if (--d == 0) {
        d = -1;
        ready.push(e.fn.get());
      }
    }
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  run_backward(roots, grads, retain_graph, nullptr, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  std::vector<Edge> capture;
  for (const Tensor& t : inputs) {
    EMBER_CHECK(t.defined() && t.requires_grad(), AutogradError,
                "autograd::grad: every input must be a tensor that requires grad");
    capture.push_back(gradient_edge(t));
  }
  std::vector<Tensor> captured(inputs.size());
  run_backward(outputs, grad_outputs, retain_graph, &capture, &captured);
  for (size_t i = 0; i < captured.size(); ++i) {
    EMBER_CHECK(allow_unused || captured[i].defined(), AutogradError, "autograd::grad: input ", i,
                " was not used in the graph; pass allow_unused=true if this is intended");
  }
  return captured;
}

}  // namespace ember::autograd
