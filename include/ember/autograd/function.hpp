// User-defined differentiable functions (torch.autograd.Function):
//
//   struct Square : autograd::Function<Square> {
//     static Tensor forward(autograd::Context& ctx, const Tensor& x) {
//       ctx.save_for_backward({x});
//       return x * x;
//     }
//     static std::vector<Tensor> backward(autograd::Context& ctx, const std::vector<Tensor>& g) {
//       Tensor x = ctx.saved()[0];
//       return {g[0] * 2 * x};
//     }
//   };
//   Tensor y = Square::apply(x);
//
// forward runs with grad mode off; backward returns one gradient per Tensor argument of forward.
#pragma once

#include <any>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ember/autograd/node.hpp"

namespace ember::autograd {

class EMBER_API Context {
 public:
  /// Saves tensors for backward (version-checked like built-in ops).
  void save_for_backward(const std::vector<Tensor>& tensors) {
    saved_.clear();
    for (const auto& t : tensors) saved_.emplace_back(t);
  }
  /// The saved tensors; throws if any was modified in place since it was saved.
  std::vector<Tensor> saved() const {
    std::vector<Tensor> out;
    for (const auto& s : saved_) out.push_back(s.get());
    return out;
  }
  /// Non-tensor values for backward.
  std::map<std::string, std::any> data;
  /// Set by apply: whether input i (in order of Tensor arguments) needs a gradient.
  std::vector<bool> needs_input_grad;
  void release() { saved_.clear(); data.clear(); }

 private:
  std::vector<SavedTensor> saved_;
};

namespace detail {
template <class T>
void collect_tensor(std::vector<Tensor>& out, const T& arg) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) out.push_back(arg);
}
}  // namespace detail

template <class Derived>
struct Function {
  template <class... Args>
  static Tensor apply(Args&&... args) {
    std::vector<Tensor> inputs;
    (detail::collect_tensor(inputs, args), ...);
    auto ctx = std::make_shared<Context>();
    Tensor out;
    {
      NoGradGuard ng;
      out = Derived::forward(*ctx, std::forward<Args>(args)...);
    }
    if (!any_requires_grad(inputs)) return out;
    // The output gets fresh autograd metadata; forward may have returned a view of an input.
    out = out.detach();
    auto node = make_node(typeid(Derived).name(), inputs,
                          [ctx, n = inputs.size()](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
                            ctx->needs_input_grad = needs;
                            std::vector<Tensor> r = Derived::backward(*ctx, g);
                            EMBER_CHECK(r.size() == n, AutogradError, "custom Function backward returned ", r.size(),
                                        " gradients but forward took ", n, " tensors");
                            return r;
                          });
    set_history(out, node);
    return out;
  }
};

}  // namespace ember::autograd
