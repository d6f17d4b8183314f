// optim::StepGuard (non-finite step skipping), Optimizer::set_skip_flag and LossSpikeDetector.
// A skipped step must leave parameters and optimizer state bit-identical, and the steps after it
// must behave exactly as if the skipped one had never been attempted: both are checked bitwise
// against a twin model/optimizer that never saw the bad step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::optim {
namespace {

using test::expect_throw_containing;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Kind { sgd, adam, adamw };
enum class Fault { nan_loss, inf_grad };

std::string kind_name(Kind k) { return k == Kind::sgd ? "SGD" : k == Kind::adam ? "Adam" : "AdamW"; }

// A small MLP (real autograd), identical for every call with the same seed.
struct Net {
  nn::Sequential seq;
  explicit Net(uint64_t seed) {
    manual_seed(seed);
    seq.emplace<nn::Linear>(6, 8);
    seq.emplace<nn::Tanh>();
    seq.emplace<nn::Linear>(8, 3);
  }
  std::vector<Tensor> params() const { return seq.parameters(); }
};

std::unique_ptr<Optimizer> make_optimizer(Kind k, const std::vector<Tensor>& params) {
  switch (k) {
    case Kind::sgd:  // dampening != 0 so that a wrongly "first" or "not first" step shows
      return std::make_unique<SGD>(params,
                                   SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.25, .weight_decay = 0.01});
    case Kind::adam: return std::make_unique<Adam>(params, AdamOptions{.lr = 0.01, .weight_decay = 0.01});
    default: return std::make_unique<AdamW>(params, AdamWOptions{.lr = 0.01});
  }
}

const Tensor& inputs() {
  static const Tensor x = test::random_tensor({5, 6}, 11, kFloat32);
  return x;
}
const Tensor& targets() {
  static const Tensor y = test::random_tensor({5, 3}, 12, kFloat32);
  return y;
}

// Forward + backward; `fault` (if any) poisons the loss or one gradient element.
Tensor forward_backward(Net& net, Optimizer& opt, std::optional<Fault> fault = std::nullopt, double scale = 1.0) {
  opt.zero_grad();
  Tensor out = net.seq(inputs() * scale);
  Tensor loss = (out - targets()).pow(2).mean();
  if (fault == Fault::nan_loss) loss = loss * kNaN;
  loss.backward();
  if (fault == Fault::inf_grad) {
    NoGradGuard ng;
    Tensor g = net.params()[2].grad();  // the second layer's weight
    g.view({-1}).narrow(0, 5, 1).fill_(kInf);
  }
  return loss;
}

// The raw bytes of a tensor (contiguous, on the CPU).
std::string bytes_of(const Tensor& t) {
  Tensor c = t.detach().cpu().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
}

// Parameters and optimizer state, byte for byte (with dtype and shape).
std::map<std::string, std::string> snapshot(const Net& net, const Optimizer& opt) {
  std::map<std::string, std::string> s;
  const auto params = net.params();
  for (size_t i = 0; i < params.size(); ++i) s["param." + std::to_string(i)] = bytes_of(params[i]);
  for (const auto& [k, t] : opt.state_dict())
    s["opt." + k] = std::string(dtype_name(t.dtype())) + shape_str(t.shape()) + ":" + bytes_of(t);
  return s;
}

void expect_identical(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    ASSERT_NE(it, b.end()) << k;
    EXPECT_TRUE(v == it->second) << k << " differs";
  }
}

bool any_nonfinite(const Net& net) {
  for (const Tensor& p : net.params())
    for (double v : p.to(kFloat64).to_vector<double>())
      if (!std::isfinite(v)) return true;
  return false;
}

struct Case {
  Kind kind;
  Fault fault;
};

class StepGuardSkip : public ::testing::TestWithParam<Case> {};

TEST_P(StepGuardSkip, SkippedStepIsBitIdenticalAndLaterStepsMatchATwinThatNeverSawIt) {
  const auto [kind, fault] = GetParam();
  Net net(3), twin(3);
  auto opt = make_optimizer(kind, net.params());
  auto twin_opt = make_optimizer(kind, twin.params());
  StepGuard guard(*opt, {.max_consecutive_skips = 3});

  // Two finite steps: guarded and unguarded updates agree bit for bit.
  for (int s = 0; s < 2; ++s) {
    Tensor loss = forward_backward(net, *opt);
    guard.check(loss);
    ASSERT_TRUE(opt->skip_flag().defined());
    EXPECT_FALSE(opt->skip_flag().item<bool>());
    opt->step();
    EXPECT_FALSE(opt->skip_flag().defined()) << "step() must consume the flag";
    forward_backward(twin, *twin_opt);
    twin_opt->step();
  }
  expect_identical(snapshot(net, *opt), snapshot(twin, *twin_opt));
  const auto before = snapshot(net, *opt);

  // The bad step: detected, skipped, nothing touched.
  Tensor loss = forward_backward(net, *opt, fault);
  guard.check(loss);
  ASSERT_TRUE(opt->skip_flag().defined());
  EXPECT_EQ(opt->skip_flag().dim(), 0);
  EXPECT_EQ(opt->skip_flag().dtype(), kBool);
  EXPECT_TRUE(opt->skip_flag().item<bool>());
  opt->step();
  EXPECT_FALSE(opt->skip_flag().defined());
  expect_identical(before, snapshot(net, *opt));
  EXPECT_FALSE(any_nonfinite(net));
  EXPECT_EQ(guard.skipped_steps(), 1);
  EXPECT_EQ(guard.consecutive_skips(), 1);
  if (kind != Kind::sgd) {
    for (const auto& [k, t] : opt->state_dict())
      if (k.size() > 5 && k.compare(k.size() - 5, 5, ".step") == 0) {
        EXPECT_EQ(t.item<double>(), 2.0) << k;
      }
  }

  // Finite steps afterwards: exactly the twin's steps.
  for (int s = 0; s < 2; ++s) {
    Tensor l = forward_backward(net, *opt, std::nullopt, 1.0 + 0.5 * s);
    guard.check(l);
    opt->step();
    forward_backward(twin, *twin_opt, std::nullopt, 1.0 + 0.5 * s);
    twin_opt->step();
    expect_identical(snapshot(net, *opt), snapshot(twin, *twin_opt));
  }
  EXPECT_EQ(guard.skipped_steps(), 1);
  EXPECT_EQ(guard.consecutive_skips(), 0);
  // The steps did move the parameters (the comparison above is not vacuous).
  EXPECT_FALSE(before.at("param.0") == snapshot(net, *opt).at("param.0"));
}

TEST_P(StepGuardSkip, SkippedFirstStepCreatesNoState) {
  const auto [kind, fault] = GetParam();
  Net net(5), twin(5);
  auto opt = make_optimizer(kind, net.params());
  auto twin_opt = make_optimizer(kind, twin.params());
  StepGuard guard(*opt);
  const auto fresh = snapshot(net, *opt);

  guard.check(forward_backward(net, *opt, fault));
  opt->step();
  expect_identical(fresh, snapshot(net, *opt));
  for (const auto& [k, t] : opt->state_dict()) EXPECT_NE(k.rfind("state.", 0), 0u) << "state created: " << k;

  // The first real step is a first step (SGD: the momentum buffer starts as the gradient).
  guard.check(forward_backward(net, *opt));
  opt->step();
  forward_backward(twin, *twin_opt);
  twin_opt->step();
  expect_identical(snapshot(net, *opt), snapshot(twin, *twin_opt));
}

INSTANTIATE_TEST_SUITE_P(AllOptimizers, StepGuardSkip,
                         ::testing::Values(Case{Kind::sgd, Fault::nan_loss}, Case{Kind::sgd, Fault::inf_grad},
                                           Case{Kind::adam, Fault::nan_loss}, Case{Kind::adam, Fault::inf_grad},
                                           Case{Kind::adamw, Fault::nan_loss}, Case{Kind::adamw, Fault::inf_grad}),
                         [](const auto& info) {
                           return kind_name(info.param.kind) +
                                  (info.param.fault == Fault::nan_loss ? "_NanLoss" : "_InfGradient");
                         });

TEST(StepGuard, WithoutTheGuardTheFaultsDoCorruptTheModel) {
  // The faults used above are real: an unguarded step spreads them into the parameters.
  for (Fault fault : {Fault::nan_loss, Fault::inf_grad}) {
    Net net(3);
    auto opt = make_optimizer(Kind::adam, net.params());
    forward_backward(net, *opt, fault);
    opt->step();
    EXPECT_TRUE(any_nonfinite(net));
  }
}

TEST(StepGuard, CheckGradientsOffIgnoresGradients) {
  Net net(3);
  auto opt = make_optimizer(Kind::sgd, net.params());
  StepGuard guard(*opt, {.check_gradients = false});
  guard.check(forward_backward(net, *opt, Fault::inf_grad));
  EXPECT_FALSE(opt->skip_flag().item<bool>());
  opt->step();
  EXPECT_TRUE(any_nonfinite(net));
  EXPECT_EQ(guard.skipped_steps(), 0);
}

TEST(StepGuard, FrozenParametersAreNotChecked) {
  // Parameters that do not require grad are not updated by step(), so their (stale) gradient
  // does not cause a skip.
  Net net(3);
  auto params = net.params();
  auto opt = make_optimizer(Kind::adam, params);
  StepGuard guard(*opt);
  forward_backward(net, *opt);
  params[0].set_grad(full(params[0].shape(), kNaN, {.dtype = kFloat32}));
  params[0].requires_grad_(false);
  Tensor loss = (net.seq(inputs()) - targets()).pow(2).mean();
  guard.check(loss);
  EXPECT_FALSE(opt->skip_flag().item<bool>());
  params[0].requires_grad_(true);
  guard.check(loss);
  EXPECT_TRUE(opt->skip_flag().item<bool>());
}

TEST(StepGuard, CountsAndThrowsAfterKConsecutiveSkips) {
  Net net(7);
  auto opt = make_optimizer(Kind::adam, net.params());
  StepGuard guard(*opt, {.max_consecutive_skips = 3});
  auto bad_step = [&] {
    guard.check(forward_backward(net, *opt, Fault::nan_loss));
    opt->step();
  };
  auto good_step = [&] {
    guard.check(forward_backward(net, *opt));
    opt->step();
  };
  good_step();
  EXPECT_NO_THROW(guard.throw_if_diverged());
  bad_step();
  bad_step();
  EXPECT_EQ(guard.consecutive_skips(), 2);
  EXPECT_NO_THROW(guard.throw_if_diverged());
  good_step();  // resets the run
  EXPECT_EQ(guard.consecutive_skips(), 0);
  EXPECT_EQ(guard.skipped_steps(), 2);
  bad_step();
  bad_step();
  EXPECT_NO_THROW(guard.throw_if_diverged());
  bad_step();
  EXPECT_EQ(guard.consecutive_skips(), 3);
  EXPECT_EQ(guard.skipped_steps(), 5);
  try {
    guard.throw_if_diverged();
    ADD_FAILURE() << "expected NumericalError";
  } catch (const NumericalError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("not finite for 3 consecutive steps"), std::string::npos) << msg;
    EXPECT_NE(msg.find("max_consecutive_skips = 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("5 steps skipped"), std::string::npos) << msg;
    EXPECT_NE(msg.find("diverged"), std::string::npos) << msg;
  }
  bad_step();  // still diverged
  EXPECT_THROW(guard.throw_if_diverged(), NumericalError);
  const auto st = guard.state();
  EXPECT_EQ(st.at("skipped_steps"), 6);
  EXPECT_EQ(st.at("consecutive_skips"), 4);
}

TEST(StepGuard, ZeroLimitNeverThrows) {
  Net net(7);
  auto opt = make_optimizer(Kind::sgd, net.params());
  StepGuard guard(*opt, {.max_consecutive_skips = 0});
  for (int s = 0; s < 6; ++s) {
    guard.check(forward_backward(net, *opt, Fault::inf_grad));
    opt->step();
    EXPECT_NO_THROW(guard.throw_if_diverged());
  }
  EXPECT_EQ(guard.consecutive_skips(), 6);
  EXPECT_FALSE(any_nonfinite(net));
}

TEST(StepGuard, StateRoundTripAndValidation) {
  Net net(7);
  auto opt = make_optimizer(Kind::sgd, net.params());
  StepGuard guard(*opt, {.max_consecutive_skips = 2});
  guard.load_state({{"skipped_steps", 9}, {"consecutive_skips", 1}, {"epoch", 4}});
  EXPECT_EQ(guard.skipped_steps(), 9);
  EXPECT_EQ(guard.consecutive_skips(), 1);
  EXPECT_NO_THROW(guard.throw_if_diverged());
  guard.check(forward_backward(net, *opt, Fault::nan_loss));  // continues the restored run
  opt->step();
  EXPECT_EQ(guard.skipped_steps(), 10);
  EXPECT_EQ(guard.consecutive_skips(), 2);
  EXPECT_THROW(guard.throw_if_diverged(), NumericalError);

  StepGuard other(*opt);
  other.load_state(guard.state());
  EXPECT_EQ(other.state(), guard.state());
  other.load_state({});  // missing keys count as 0
  EXPECT_EQ(other.skipped_steps(), 0);
  EXPECT_EQ(other.consecutive_skips(), 0);

  expect_throw_containing([&] { other.load_state({{"skipped_steps", -1}}); }, "\"skipped_steps\" must be >= 0, got -1");
  EXPECT_THROW(other.load_state({{"skipped_steps", -1}}), ValueError);
  expect_throw_containing([&] { other.load_state({{"skipped_steps", 1}, {"consecutive_skips", 2}}); },
                          "consecutive_skips (2) cannot exceed skipped_steps (1)");
  EXPECT_THROW(other.load_state({{"skipped_steps", 1}, {"consecutive_skips", 2}}), ValueError);
  EXPECT_EQ(other.skipped_steps(), 0);  // a rejected state changes nothing
  expect_throw_containing([&] { StepGuard g(*opt, {.max_consecutive_skips = -1}); },
                          "max_consecutive_skips must be >= 0");
  EXPECT_THROW(StepGuard(*opt, {.max_consecutive_skips = -1}), ValueError);
}

TEST(StepGuard, RejectsBadLosses) {
  Net net(7);
  auto opt = make_optimizer(Kind::sgd, net.params());
  StepGuard guard(*opt);
  EXPECT_THROW(guard.check(Tensor()), ValueError);
  expect_throw_containing([&] { guard.check(Tensor()); }, "undefined loss");
  EXPECT_THROW(guard.check(zeros({2})), ValueError);
  expect_throw_containing([&] { guard.check(zeros({1, 1})); }, "must be a 0-d tensor, got shape (1, 1)");
  EXPECT_THROW(guard.check(zeros({}, {.dtype = kInt64})), DTypeError);
  expect_throw_containing([&] { guard.check(zeros({}, {.dtype = kInt64})); }, "floating point, got int64");
  EXPECT_FALSE(opt->skip_flag().defined());  // nothing armed by a rejected check
  EXPECT_EQ(guard.skipped_steps(), 0);
}

TEST(OptimizerSkipFlag, ValidationArmingAndConsumption) {
  Net net(9);
  auto opt = make_optimizer(Kind::adam, net.params());
  expect_throw_containing([&] { opt->set_skip_flag(full({1}, true, {.dtype = kBool})); },
                          "Adam: the skip flag must be a 0-d bool tensor, got shape (1,)");
  EXPECT_THROW(opt->set_skip_flag(full({1}, true, {.dtype = kBool})), ValueError);
  expect_throw_containing([&] { opt->set_skip_flag(full({}, 1.0, {.dtype = kFloat32})); },
                          "0-d bool tensor, got dtype float32");
  EXPECT_THROW(opt->set_skip_flag(full({}, 1.0, {.dtype = kFloat32})), ValueError);
  EXPECT_FALSE(opt->skip_flag().defined());

  // Armed by hand: true skips, false steps, an undefined tensor disarms.
  forward_backward(net, *opt);
  const auto before = snapshot(net, *opt);
  opt->set_skip_flag(full({}, true, {.dtype = kBool}));
  EXPECT_TRUE(opt->skip_flag().defined());
  opt->step();
  expect_identical(before, snapshot(net, *opt));
  opt->set_skip_flag(full({}, true, {.dtype = kBool}));
  opt->set_skip_flag(Tensor());
  EXPECT_FALSE(opt->skip_flag().defined());
  opt->step();
  EXPECT_FALSE(before.at("param.0") == snapshot(net, *opt).at("param.0"));
  const auto after_one = snapshot(net, *opt);
  opt->set_skip_flag(full({}, false, {.dtype = kBool}));
  opt->step();
  EXPECT_FALSE(after_one.at("param.0") == snapshot(net, *opt).at("param.0"));
}

// ------------------------------------------------------------------ LossSpikeDetector

// Independent z-score: population std over `w`, two passes.
double z_of(const std::vector<double>& w, double x) {
  double mean = 0;
  for (double v : w) mean += v;
  mean /= static_cast<double>(w.size());
  double var = 0;
  for (double v : w) var += (v - mean) * (v - mean);
  return (x - mean) / std::sqrt(var / static_cast<double>(w.size()));
}

TEST(LossSpikeDetector, CraftedSequence) {
  LossSpikeDetector d(/*window=*/3, /*z_threshold=*/2.0, /*min_samples=*/3);
  // Fewer than min_samples known: no verdict, however large the jump.
  EXPECT_FALSE(d.observe(10.0));
  EXPECT_FALSE(d.observe(10.5));
  EXPECT_FALSE(d.observe(9.5));
  // Non-finite losses are ignored and not added.
  EXPECT_FALSE(d.observe(kNaN));
  EXPECT_FALSE(d.observe(kInf));
  EXPECT_FALSE(d.observe(-kInf));
  // Window {10, 10.5, 9.5}: 10 is the mean (z = 0), no spike.
  EXPECT_FALSE(d.observe(10.0));
  // Window {10.5, 9.5, 10}: 12 is a spike.
  auto z = d.observe(12.0);
  ASSERT_TRUE(z.has_value());
  EXPECT_NEAR(*z, z_of({10.5, 9.5, 10.0}, 12.0), 1e-12);
  EXPECT_NEAR(*z, 2.0 / std::sqrt(1.0 / 6.0), 1e-12);
  // The spike joins the statistics: window {9.5, 10, 12}, z(12) ≈ 1.39.
  EXPECT_LT(z_of({9.5, 10.0, 12.0}, 12.0), 2.0);
  EXPECT_FALSE(d.observe(12.0));
  // Window {10, 12, 12}: z(12) ≈ 0.71.
  EXPECT_FALSE(d.observe(12.0));
  // Window {12, 12, 12} (the older losses evicted): std 0, no spike. Had the window kept
  // everything, 13 would be a spike (z > 2).
  EXPECT_GT(z_of({10.0, 10.5, 9.5, 10.0, 12.0, 12.0, 12.0}, 13.0), 2.0);
  EXPECT_FALSE(d.observe(13.0));
  // Window {12, 12, 13}: 20 is a spike with the evicted-window z.
  z = d.observe(20.0);
  ASSERT_TRUE(z.has_value());
  EXPECT_NEAR(*z, z_of({12.0, 12.0, 13.0}, 20.0), 1e-12);
  // Drops are never spikes (one-sided).
  EXPECT_FALSE(d.observe(-1000.0));
}

TEST(LossSpikeDetector, ThresholdIsStrict) {
  // Window {0, 2}: mean 1, std 1; z(3) == 2 exactly is not above a threshold of 2.
  LossSpikeDetector d(2, 2.0, 2);
  d.observe(0.0);
  d.observe(2.0);
  EXPECT_FALSE(d.observe(3.0));
  LossSpikeDetector e(2, 2.0, 2);
  e.observe(0.0);
  e.observe(2.0);
  auto z = e.observe(3.5);
  ASSERT_TRUE(z.has_value());
  EXPECT_DOUBLE_EQ(*z, 2.5);
}

TEST(LossSpikeDetector, RejectsBadOptions) {
  expect_throw_containing([] { LossSpikeDetector d(1, 6.0, 1); }, "window must be >= 2, got 1");
  EXPECT_THROW(LossSpikeDetector(1, 6.0, 1), ValueError);
  expect_throw_containing([] { LossSpikeDetector d(10, 0.0, 5); }, "z_threshold must be finite and > 0, got 0");
  EXPECT_THROW(LossSpikeDetector(10, kNaN, 5), ValueError);
  expect_throw_containing([] { LossSpikeDetector d(10, 6.0, 11); }, "min_samples must be in [2, window = 10], got 11");
  EXPECT_THROW(LossSpikeDetector(10, 6.0, 1), ValueError);
}

}  // namespace
}  // namespace ember::optim
