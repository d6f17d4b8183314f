// Optimizer::pending_state_: state entries whose existence a device decides (SGD's momentum
// buffer created by a guarded CUDA step that may be skipped). state_dict() must leave out an
// entry until every element of its flag tensor is true, keep every other entry, and
// load_state_dict() must drop the flags with the state they described. The mechanism does not
// depend on the flags' device, so CPU flags exercise it here; tests/cuda/test_cuda_step_guard.cpp
// covers the CUDA SGD that uses it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::optim {
namespace {

class Probe : public Optimizer {
 public:
  explicit Probe(std::vector<Tensor> ps) : Optimizer({ParamGroup(std::move(ps))}, {{"lr", 0.1}}, "Probe") {}
  void step() override {}
  void put(const std::string& key, const std::string& name, const Tensor& value, const Tensor& flags = Tensor()) {
    state_[key][name] = value;
    if (flags.defined()) pending_state_[key][name] = flags;
  }
  size_t pending() const { return pending_state_.size(); }
};

Tensor flags(std::vector<uint8_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return ne(tensor<uint8_t>(std::move(v), {n}), 0);
}

std::vector<std::string> state_keys(const Optimizer& o) {
  std::vector<std::string> keys;
  for (const auto& [k, t] : o.state_dict())
    if (k.rfind("state.", 0) == 0) keys.push_back(k);
  return keys;
}

TEST(OptimizerPendingState, EntriesAppearOnlyOnceEveryFlagIsSet) {
  Tensor a = zeros({4}).requires_grad_(true), b = zeros({2, 3}).requires_grad_(true);
  a.set_name("a");
  b.set_name("b");
  Probe o({a, b});
  o.put("a", "momentum_buffer", ones({4}), flags({0, 0}));
  o.put("a", "other", ones({4}));  // no flag: always saved
  o.put("b", "momentum_buffer", ones({2, 3}), flags({1, 0, 1}));
  EXPECT_EQ(state_keys(o), (std::vector<std::string>{"state.a.other"}));

  o.put("a", "momentum_buffer", ones({4}), flags({1, 1}));
  o.put("b", "momentum_buffer", ones({2, 3}), flags({1, 1, 1}));
  EXPECT_EQ(state_keys(o),
            (std::vector<std::string>{"state.a.momentum_buffer", "state.a.other", "state.b.momentum_buffer"}));
  // The saved values are the state's own.
  EXPECT_EQ(o.state_dict().at("state.b.momentum_buffer").to_vector<float>(), std::vector<float>(6, 1.0f));
  // No elements: nothing is false (a parameter without elements has no chunks).
  o.put("b", "momentum_buffer", ones({2, 3}), flags({}));
  EXPECT_EQ(state_keys(o).size(), 3u);
}

TEST(OptimizerPendingState, LoadStateDictClearsTheFlags) {
  Tensor a = zeros({4}).requires_grad_(true);
  a.set_name("a");
  Probe o({a});
  o.put("a", "momentum_buffer", full({4}, 2.0), flags({0}));
  const OptimizerState saved = o.state_dict();
  EXPECT_EQ(saved.count("state.a.momentum_buffer"), 0u);

  // Loading replaces the state: what was loaded counts as created, whatever the old flags said.
  OptimizerState with_buffer = saved;
  with_buffer["state.a.momentum_buffer"] = full({4}, 3.0);
  o.load_state_dict(with_buffer);
  EXPECT_EQ(o.pending(), 0u);
  ASSERT_EQ(state_keys(o), (std::vector<std::string>{"state.a.momentum_buffer"}));
  EXPECT_EQ(o.state_dict().at("state.a.momentum_buffer").to_vector<float>(), std::vector<float>(4, 3.0f));

  // A dict without the entry (saved while it was pending) restores no state at all.
  o.put("a", "momentum_buffer", full({4}, 2.0), flags({0}));
  o.load_state_dict(saved);
  EXPECT_EQ(o.pending(), 0u);
  EXPECT_TRUE(state_keys(o).empty());
}

// Adam on CUDA uses its device step count (0-d f64) as the flag of all three entries: pending
// while it is 0, created once it is positive; the entries share the one tensor, so a step
// (an in-place increment) makes all of them appear at once.
TEST(OptimizerPendingState, AStepCountServesAsTheFlag) {
  Tensor a = zeros({3}).requires_grad_(true);
  a.set_name("a");
  Probe o({a});
  Tensor step = zeros({}, {.dtype = kFloat64});
  o.put("a", "step", step, step);
  o.put("a", "exp_avg", zeros({3}), step);
  o.put("a", "exp_avg_sq", zeros({3}), step);
  EXPECT_TRUE(state_keys(o).empty());
  step.fill_(1.0);
  EXPECT_EQ(state_keys(o), (std::vector<std::string>{"state.a.exp_avg", "state.a.exp_avg_sq", "state.a.step"}));
  EXPECT_EQ(o.state_dict().at("state.a.step").item<double>(), 1.0);
}

}  // namespace
}  // namespace ember::optim
