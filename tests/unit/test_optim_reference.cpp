// SGD, Adam and AdamW against PyTorch: 10 steps on two float64 parameters under a fixed
// sequence of gradients, every step's parameters compared with
// tests/data/optim_reference.safetensors (tests/reference/make_optim_reference.py).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "unit/test_util.hpp"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::optim;

namespace {

constexpr int kSteps = 10;
constexpr double kTol = 1e-9;

const io::TensorMap& ref() { return test::reference_file("optim_reference.safetensors"); }

Tensor R(const std::string& name) {
  auto it = ref().find(name);
  EXPECT_NE(it, ref().end()) << "reference file has no tensor \"" << name << "\"";
  return it == ref().end() ? Tensor() : it->second.clone();
}

void expect_close(const Tensor& actual, const std::string& ref_name) {
  Tensor r = R(ref_name);
  ASSERT_EQ(actual.shape(), r.shape()) << ref_name;
  const auto a = actual.to_vector<double>();
  const auto e = r.to_vector<double>();
  // One failure per tensor, listing the first few bad elements.
  int bad = 0;
  std::ostringstream msg;
  msg.precision(17);
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(a[i] - e[i]);
    if (!(diff <= kTol + kTol * std::abs(e[i])) && bad++ < 3)
      msg << "\n  " << ref_name << "[" << i << "]: got " << a[i] << ", PyTorch " << e[i] << " (diff " << diff << ")";
  }
  if (bad > 0) ADD_FAILURE() << bad << " of " << a.size() << " elements differ:" << msg.str();
}

std::vector<Tensor> fresh_params() {
  Tensor p0 = R("init.p0").requires_grad_(true), p1 = R("init.p1").requires_grad_(true);
  return {p0, p1};
}

void set_grads(std::vector<Tensor>& ps, int t) {
  ps[0].set_grad(R("grad." + std::to_string(t) + ".p0"));
  ps[1].set_grad(R("grad." + std::to_string(t) + ".p1"));
}

using Make = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>&)>;

void run_config(const std::string& cfg, const Make& make) {
  SCOPED_TRACE(cfg);
  auto ps = fresh_params();
  auto opt = make(ps);
  for (int t = 0; t < kSteps; ++t) {
    set_grads(ps, t);
    opt->step();
    expect_close(ps[0], cfg + "." + std::to_string(t) + ".p0");
    expect_close(ps[1], cfg + "." + std::to_string(t) + ".p1");
  }
}

TEST(OptimReference, SGD) {
  run_config("sgd", [](auto& ps) { return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1}); });
}

TEST(OptimReference, SGDMomentum) {
  run_config("sgd_momentum",
             [](auto& ps) { return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.9}); });
}

TEST(OptimReference, SGDNesterovWeightDecay) {
  run_config("sgd_nesterov_wd", [](auto& ps) {
    return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  });
}

TEST(OptimReference, SGDDampeningWeightDecay) {
  run_config("sgd_dampening_wd", [](auto& ps) {
    return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.02});
  });
}

TEST(OptimReference, SGDParameterGroups) {
  run_config("sgd_groups", [](auto& ps) {
    std::vector<ParamGroup> groups{ParamGroup({ps[0]}), ParamGroup({ps[1]}, {{"lr", 0.01}, {"momentum", 0.5}})};
    return std::make_unique<SGD>(std::move(groups), SGDOptions{.lr = 0.1, .momentum = 0.9});
  });
}

TEST(OptimReference, Adam) {
  run_config("adam", [](auto& ps) { return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.01}); });
}

TEST(OptimReference, AdamL2WeightDecay) {
  run_config("adam_wd", [](auto& ps) {
    return std::make_unique<Adam>(
        ps, AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1});
  });
}

TEST(OptimReference, AdamW) {
  run_config("adamw",
             [](auto& ps) { return std::make_unique<AdamW>(ps, AdamWOptions{.lr = 0.01, .weight_decay = 0.1}); });
}

TEST(OptimReference, AdamWDefaults) {
  run_config("adamw_default", [](auto& ps) { return std::make_unique<AdamW>(ps); });
}

// OneCycleLR drives Adam's lr and beta1 between steps.
TEST(OptimReference, AdamWithOneCycle) {
  auto ps = fresh_params();
  Adam opt(ps, {.lr = 0.01});
  OneCycleLR sched(opt, 0.05, kSteps);
  for (int t = 0; t < kSteps; ++t) {
    set_grads(ps, t);
    opt.step();
    if (t + 1 < kSteps) sched.step();
    expect_close(ps[0], "adam_onecycle." + std::to_string(t) + ".p0");
    expect_close(ps[1], "adam_onecycle." + std::to_string(t) + ".p1");
  }
}

// Saving after 4 steps and resuming in a fresh optimizer (and scheduler) continues the same
// trajectory.
TEST(OptimReference, ResumeFromStateDict) {
  auto ps = fresh_params();
  OptimizerState saved_opt;
  SchedulerState saved_sched;
  {
    Adam opt(ps, {.lr = 0.01});
    OneCycleLR sched(opt, 0.05, kSteps);
    for (int t = 0; t < 4; ++t) {
      set_grads(ps, t);
      opt.step();
      sched.step();
    }
    saved_opt = opt.state_dict();
    saved_sched = sched.state_dict();
  }
  std::vector<Tensor> resumed{ps[0].detach().clone().requires_grad_(true), ps[1].detach().clone().requires_grad_(true)};
  resumed[0].set_name(ps[0].name());
  resumed[1].set_name(ps[1].name());
  Adam opt(resumed, {.lr = 0.01});
  opt.load_state_dict(saved_opt);  // restores initial_lr / max_lr / ... too
  OneCycleLR sched(opt, 0.05, kSteps, {}, /*last_epoch=*/3);
  sched.load_state_dict(saved_sched);
  EXPECT_EQ(sched.last_epoch(), 4);
  for (int t = 4; t < kSteps; ++t) {
    set_grads(resumed, t);
    opt.step();
    if (t + 1 < kSteps) sched.step();
    expect_close(resumed[0], "adam_onecycle." + std::to_string(t) + ".p0");
    expect_close(resumed[1], "adam_onecycle." + std::to_string(t) + ".p1");
  }
}

// The comparison can fail: one step fewer of SGD momentum is far from the reference.
TEST(OptimReference, ComparisonDetectsADifferentTrajectory) {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9});
  set_grads(ps, 0);
  opt.step();
  EXPECT_NONFATAL_FAILURE(expect_close(ps[0], "sgd_momentum.1.p0"), "sgd_momentum.1.p0");
}

}  // namespace
