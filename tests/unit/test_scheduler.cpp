// Learning-rate schedulers: 30-step lr (and momentum) sequences against PyTorch
// (tests/data/optim_reference.safetensors, made by tests/reference/make_optim_reference.py),
// closed forms, state round trips, parameter groups and error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "unit/test_util.hpp"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::optim;

namespace {

constexpr int kSteps = 30;
constexpr double kTol = 1e-12;

const io::TensorMap& ref() { return test::reference_file("optim_reference.safetensors"); }

std::vector<double> R(const std::string& name) {
  auto it = ref().find(name);
  EXPECT_NE(it, ref().end()) << "reference file has no tensor \"" << name << "\"";
  return it == ref().end() ? std::vector<double>() : it->second.to_vector<double>();
}

void expect_seq(const std::vector<double>& got, const std::string& name) {
  const auto want = R(name);
  ASSERT_EQ(got.size(), want.size()) << name;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(got[i] - want[i]);
    EXPECT_TRUE(diff <= kTol + kTol * std::abs(want[i]))
        << name << " at step " << i << ": got " << got[i] << ", PyTorch " << want[i];
  }
}

struct Fixture {
  Tensor p = zeros({2}, {.requires_grad = true});
  std::unique_ptr<Optimizer> opt;
  explicit Fixture(bool adam = false) {
    if (adam) {
      opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{.lr = 0.1});
    } else {
      opt = std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions{.lr = 0.1, .momentum = 0.9});
    }
  }
  double lr() const { return opt->param_groups()[0].get("lr"); }
};

using MakeScheduler = std::function<std::unique_ptr<LRScheduler>(Optimizer&)>;

// Runs 30 steps and compares get_last_lr() (and the group's momentum/beta1) with PyTorch.
void check_sequence(const std::string& name, const MakeScheduler& make, bool adam = false,
                    bool check_momentum = false) {
  SCOPED_TRACE(name);
  Fixture f(adam);
  auto sched = make(*f.opt);
  const std::string mkey = adam ? "beta1" : "momentum";
  std::vector<double> lrs{sched->get_last_lr()[0]}, moms{f.opt->param_groups()[0].get(mkey)};
  EXPECT_EQ(sched->get_last_lr()[0], f.lr());
  for (int i = 0; i < kSteps; ++i) {
    sched->step();
    lrs.push_back(sched->get_last_lr()[0]);
    moms.push_back(f.opt->param_groups()[0].get(mkey));
    EXPECT_EQ(sched->get_last_lr()[0], f.lr()) << "the scheduler did not write the group's lr";
  }
  expect_seq(lrs, "sched." + name + ".lr");
  if (check_momentum) expect_seq(moms, "sched." + name + ".momentum");
}

TEST(SchedulerReference, StepLR) {
  check_sequence("step", [](Optimizer& o) { return std::make_unique<StepLR>(o, 7, 0.5); });
}

TEST(SchedulerReference, MultiStepLRWithRepeatedMilestone) {
  check_sequence("multistep", [](Optimizer& o) {
    return std::make_unique<MultiStepLR>(o, std::vector<int64_t>{20, 5, 12, 12}, 0.3);
  });
}

TEST(SchedulerReference, ExponentialLR) {
  check_sequence("exponential", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); });
}

// 30 steps with T_max = 10 and 7 cover the recursion's special case at (e − 1 − T_max) % 2T_max == 0
// and its behaviour past T_max.
TEST(SchedulerReference, CosineAnnealingLRRecursive) {
  check_sequence("cosine", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 10, 0.001); });
  check_sequence("cosine_zero", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 7); });
}

TEST(SchedulerReference, LinearLR) {
  check_sequence("linear", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.25, 1.0, 8); });
  check_sequence("linear_decay", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 1.0, 0.1, 10); });
}

TEST(SchedulerReference, OneCycleLRCosineCyclesMomentum) {
  check_sequence(
      "onecycle_cos", [](Optimizer& o) { return std::make_unique<OneCycleLR>(o, 1.0, 31); }, false, true);
}

TEST(SchedulerReference, OneCycleLRLinearThreePhase) {
  check_sequence(
      "onecycle_linear_3phase",
      [](Optimizer& o) {
        return std::make_unique<OneCycleLR>(o, 0.5, 30,
                                            OneCycleLROptions{.pct_start = 0.25,
                                                              .anneal_strategy = AnnealStrategy::linear,
                                                              .base_momentum = 0.8,
                                                              .max_momentum = 0.9,
                                                              .div_factor = 10.0,
                                                              .final_div_factor = 100.0,
                                                              .three_phase = true});
      },
      false, true);
}

TEST(SchedulerReference, OneCycleLRCyclesAdamBeta1) {
  check_sequence(
      "onecycle_adam", [](Optimizer& o) { return std::make_unique<OneCycleLR>(o, 0.3, 40); }, true, true);
}

TEST(SchedulerReference, SequentialLinearWarmupThenCosine) {
  check_sequence("sequential", [](Optimizer& o) {
    auto warm = std::make_shared<LinearLR>(o, 0.1, 1.0, 5);
    auto cos = std::make_shared<CosineAnnealingLR>(o, 20, 1e-4);
    return std::make_unique<SequentialLR>(o, std::vector<std::shared_ptr<LRScheduler>>{warm, cos},
                                          std::vector<int64_t>{5});
  });
}

TEST(SchedulerReference, SequentialThreeSchedulers) {
  check_sequence("sequential3", [](Optimizer& o) {
    auto a = std::make_shared<LinearLR>(o, 0.5, 1.0, 4);
    auto b = std::make_shared<ExponentialLR>(o, 0.95);
    auto c = std::make_shared<CosineAnnealingLR>(o, 10);
    return std::make_unique<SequentialLR>(o, std::vector<std::shared_ptr<LRScheduler>>{a, b, c},
                                          std::vector<int64_t>{4, 12});
  });
}

// ------------------------------------------------------------------ behaviour
TEST(Scheduler, ConstructionPerformsTheInitialStep) {
  Fixture f;
  LinearLR s(*f.opt, 0.5, 1.0, 4);
  EXPECT_EQ(s.last_epoch(), 0);
  EXPECT_DOUBLE_EQ(f.lr(), 0.05);
  EXPECT_EQ(s.base_lrs(), std::vector<double>{0.1});
  EXPECT_EQ(f.opt->param_groups()[0].get("initial_lr"), 0.1);
}

TEST(Scheduler, EachGroupFollowsItsOwnBaseLr) {
  Tensor a = zeros({1}, {.requires_grad = true}), b = zeros({1}, {.requires_grad = true});
  SGD opt(std::vector<ParamGroup>{ParamGroup({a}), ParamGroup({b}, {{"lr", 0.02}})}, {.lr = 0.1});
  CosineAnnealingLR s(opt, 4, 0.001);
  for (int i = 0; i < 3; ++i) s.step();
  for (int g = 0; g < 2; ++g) {
    const double base = g == 0 ? 0.1 : 0.02;
    const double closed = 0.001 + (base - 0.001) * (1 + std::cos(std::numbers::pi * 3 / 4)) / 2;
    EXPECT_NEAR(s.get_last_lr()[g], closed, 1e-15);
    EXPECT_EQ(opt.param_groups()[g].get("lr"), s.get_last_lr()[g]);
  }
}

// step(epoch) uses the closed form; within one period it agrees with the recursion.
TEST(Scheduler, StepToEpochUsesTheClosedForm) {
  struct Case {
    const char* name;
    MakeScheduler make;
  };
  std::vector<Case> cases = {
      {"step", [](Optimizer& o) { return std::make_unique<StepLR>(o, 7, 0.5); }},
      {"multistep",
       [](Optimizer& o) {
         return std::make_unique<MultiStepLR>(o, std::vector<int64_t>{5, 12, 12, 20}, 0.3);
       }},
      {"exponential", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); }},
      {"cosine", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 10, 0.001); }},
      {"linear", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.25, 1.0, 8); }},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto want = R(std::string("sched.") + c.name + ".lr");
    for (int e : {0, 3, 7, 10, 13}) {
      Fixture f;
      auto s = c.make(*f.opt);
      s->step(e);
      EXPECT_EQ(s->last_epoch(), e);
      EXPECT_NEAR(s->get_last_lr()[0], want[static_cast<size_t>(e)], 1e-12) << "epoch " << e;
    }
  }
}

// Created with last_epoch = k (resuming), CosineAnnealingLR's first step uses the closed form
// at k + 1 (PyTorch's `_step_count == 1 and last_epoch > 0` case), then the recursion.
TEST(Scheduler, CosineAnnealingResumedAtALaterEpoch) {
  Fixture f;
  f.opt->param_groups()[0].options["initial_lr"] = 0.1;
  f.opt->param_groups()[0].options["lr"] = 0.5;  // ignored by the closed form
  CosineAnnealingLR s(*f.opt, 10, 0.001, /*last_epoch=*/4);
  EXPECT_EQ(s.last_epoch(), 5);
  const auto want = R("sched.cosine.lr");
  EXPECT_NEAR(f.lr(), want[5], 1e-15);
  for (int e = 6; e <= kSteps; ++e) {
    s.step();
    EXPECT_NEAR(f.lr(), want[static_cast<size_t>(e)], 1e-12) << "epoch " << e;
  }
}

TEST(Scheduler, StateDictRoundTripResumesTheSequence) {
  Fixture f1;
  auto warm = std::make_shared<LinearLR>(*f1.opt, 0.1, 1.0, 5);
  auto cos = std::make_shared<CosineAnnealingLR>(*f1.opt, 20, 1e-4);
  SequentialLR s1(*f1.opt, {warm, cos}, {5});
  for (int i = 0; i < 9; ++i) s1.step();
  const SchedulerState st = s1.state_dict();
  EXPECT_EQ(st.at("last_epoch"), 9);
  EXPECT_EQ(st.at("schedulers.1.last_epoch"), 4);
  const OptimizerState ost = f1.opt->state_dict();
  EXPECT_EQ(ost.count("param_groups.0.initial_lr"), 1u);

  Fixture f2;
  f2.opt->load_state_dict(ost);
  auto warm2 = std::make_shared<LinearLR>(*f2.opt, 0.1, 1.0, 5, 8);
  auto cos2 = std::make_shared<CosineAnnealingLR>(*f2.opt, 20, 1e-4, 3);
  SequentialLR s2(*f2.opt, {warm2, cos2}, {5}, 8);
  s2.load_state_dict(st);
  f2.opt->param_groups()[0].options["lr"] = ost.at("param_groups.0.lr").item<double>();
  EXPECT_EQ(s2.get_last_lr(), s1.get_last_lr());
  const auto want = R("sched.sequential.lr");
  for (int i = 10; i <= kSteps; ++i) {
    s2.step();
    EXPECT_NEAR(s2.get_last_lr()[0], want[static_cast<size_t>(i)], 1e-12) << "step " << i;
  }
}

// ------------------------------------------------------------------ errors
// An optimizer with neither momentum nor beta1.
class PlainOptimizer : public Optimizer {
 public:
  explicit PlainOptimizer(std::vector<Tensor> ps) : Optimizer({ParamGroup(std::move(ps))}, {{"lr", 0.1}}, "Plain") {}
  void step() override {}
};

TEST(SchedulerErrors, InvalidArguments) {
  Fixture f;
  Optimizer& o = *f.opt;
  EXPECT_THROW(StepLR(o, 0), ValueError);
  EXPECT_THROW(CosineAnnealingLR(o, 0), ValueError);
  EXPECT_THROW(LinearLR(o, 0.0, 1.0, 5), ValueError);
  EXPECT_THROW(LinearLR(o, 1.5, 1.0, 5), ValueError);
  EXPECT_THROW(LinearLR(o, 0.5, 1.5, 5), ValueError);
  EXPECT_THROW(LinearLR(o, 0.5, 1.0, 0), ValueError);
  EXPECT_THROW(OneCycleLR(o, 1.0, 0), ValueError);
  EXPECT_THROW(OneCycleLR(o, 1.0, 10, {.pct_start = 1.5}), ValueError);
  EXPECT_THROW(OneCycleLR(o, std::vector<double>{1.0, 2.0}, 10), ValueError);
  EXPECT_THROW(StepLR(o, 3, 0.1, -2), ValueError);
}

TEST(SchedulerErrors, OneCycleLRPastTotalSteps) {
  Fixture f;
  OneCycleLR s(*f.opt, 1.0, 3);
  for (int i = 0; i < 3; ++i) s.step();
  try {
    s.step();
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("total steps is 3"), std::string::npos) << e.what();
  }
}

TEST(SchedulerErrors, OneCycleLRNeedsMomentumToCycle) {
  Tensor p = zeros({1}, {.requires_grad = true});
  PlainOptimizer opt({p});
  EXPECT_THROW(OneCycleLR(opt, 1.0, 10), ValueError);
  OneCycleLR s(opt, 1.0, 10, {.cycle_momentum = false});
  EXPECT_NEAR(s.get_last_lr()[0], 1.0 / 25, 1e-15);
}

TEST(SchedulerErrors, ResumingNeedsInitialLr) {
  Fixture f;
  try {
    StepLR s(*f.opt, 3, 0.1, 5);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("initial_lr"), std::string::npos) << e.what();
  }
}

TEST(SchedulerErrors, SequentialLRArguments) {
  Fixture f, g;
  auto a = std::make_shared<LinearLR>(*f.opt, 0.5, 1.0, 4);
  auto b = std::make_shared<ExponentialLR>(*f.opt, 0.9);
  auto other = std::make_shared<ExponentialLR>(*g.opt, 0.9);
  using List = std::vector<std::shared_ptr<LRScheduler>>;
  EXPECT_THROW(SequentialLR(*f.opt, List{a, b}, {}), ValueError);
  EXPECT_THROW(SequentialLR(*f.opt, List{a, b}, {2, 3}), ValueError);
  EXPECT_THROW(SequentialLR(*f.opt, List{a, other}, {2}), ValueError);
  EXPECT_THROW(SequentialLR(*f.opt, List{a, nullptr}, {2}), ValueError);
  EXPECT_THROW(SequentialLR(*f.opt, List{}, {}), ValueError);
  SequentialLR s(*f.opt, List{a, b}, {2});
  EXPECT_THROW(s.step(3), ValueError);
}

TEST(SchedulerErrors, LoadStateDictMissingKey) {
  Fixture f;
  StepLR s(*f.opt, 3);
  SchedulerState st = s.state_dict();
  st.erase("last_epoch");
  EXPECT_THROW(s.load_state_dict(st), ValueError);
  st = s.state_dict();
  st["base_lrs.1"] = 0.5;
  EXPECT_THROW(s.load_state_dict(st), ValueError);
}

}  // namespace
