// Non-finite step skipping on CUDA (Optimizer::set_skip_flag with a device flag, read by the
// update kernels themselves): a skipped step leaves GPU parameters and optimizer state bit for
// bit as they were, and guarded steps that are not skipped match the CPU optimizer. All skip
// without a CUDA device.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda_diff.hpp"

using namespace ember;
using namespace ember::cuda_test;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Kind { sgd, sgd_nesterov, adam, adamw };

std::unique_ptr<optim::Optimizer> make_optimizer(Kind k, const Tensor& p) {
  std::vector<Tensor> ps{p};
  switch (k) {
    case Kind::sgd:
      return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
    case Kind::sgd_nesterov:
      return std::make_unique<optim::SGD>(
          ps, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
    case Kind::adam: return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
    default: return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions{.lr = 0.01});
  }
}

const char* kind_name(Kind k) {
  return k == Kind::sgd ? "SGD" : k == Kind::sgd_nesterov ? "SGD-nesterov" : k == Kind::adam ? "Adam" : "AdamW";
}

Tensor flag(bool value, Device d) { return full({}, value, {.dtype = kBool}).to(d); }

std::string bytes_of(const Tensor& t) {
  Tensor c = t.detach().cpu().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
}

std::map<std::string, std::string> snapshot(const Tensor& p, const optim::Optimizer& opt) {
  std::map<std::string, std::string> s{{"param", bytes_of(p)}};
  for (const auto& [k, t] : opt.state_dict()) s[k] = std::string(dtype_name(t.dtype())) + ":" + bytes_of(t);
  return s;
}

// Gradient of sum(p²)·scale (computed with autograd), poisoned with an inf when asked.
void make_grad(optim::Optimizer& opt, const Tensor& p, double scale, bool poison) {
  opt.zero_grad();
  ((p * p).sum() * scale).backward();
  if (poison) {
    NoGradGuard ng;
    p.grad().view({-1}).narrow(0, 7, 1).fill_(kInf);
  }
}

// Gradients of sum(p²)·scale for every parameter, the second one poisoned with an inf when asked.
void make_grads(optim::Optimizer& opt, const std::vector<Tensor>& ps, double scale, bool poison) {
  opt.zero_grad();
  for (const Tensor& p : ps) ((p * p).sum() * scale).backward();
  if (poison) {
    NoGradGuard ng;
    ps[1].grad().view({-1}).narrow(0, 2, 1).fill_(kInf);
  }
}

// CPU and CUDA copies of the same initial values, as parameters.
struct Params {
  std::vector<Tensor> cpu, gpu;
};
Params cpu_and_gpu_params(const std::vector<Tensor>& init, Device gpu) {
  Params p;
  for (const Tensor& t : init) {
    p.cpu.push_back(t.clone().requires_grad_(true));
    p.gpu.push_back(t.to(gpu).requires_grad_(true));
  }
  return p;
}

// One step of a skip pattern on a CPU and a CUDA optimizer: skip 1 is a guarded step that is
// skipped, 0 a guarded step that runs, -1 an unguarded step (no flag).
void step_both(optim::Optimizer& oc, optim::Optimizer& og, int skip, Device gpu) {
  if (skip >= 0) {
    oc.set_skip_flag(flag(skip == 1, Device::cpu()));
    og.set_skip_flag(flag(skip == 1, gpu));
  }
  oc.step();
  og.step();
}

// No per-parameter state saved (only skipped steps have run, as on the CPU).
void expect_no_saved_state(const optim::OptimizerState& saved) {
  for (const auto& [k, t] : saved) EXPECT_NE(k.rfind("state.", 0), 0u) << "state saved: " << k;
}

Tol param_tol(DType dt) { return dt == kFloat32 ? Tol{1e-5, 1e-4} : Tol{1e-12, 1e-10}; }

// The skip pattern {1, 1, 0, 1, 0, -1, -1} (two skipped guarded first steps, then guarded steps
// that run or not, the last two unguarded) on a CPU and a CUDA optimizer over Params p, with the
// gradients of make_grads: no state saved on CUDA while only skipped steps have run, then after
// every step the same keys as the CPU's, state of the same dtype, 0-d entries (step counts)
// equal, other state and the parameters within tol.
void expect_skip_pattern_matches_cpu(optim::Optimizer& oc, optim::Optimizer& og, const Params& p, Tol tol,
                                     Device gpu) {
  const int kSkip[] = {1, 1, 0, 1, 0, -1, -1};
  int s = 0;
  for (int skip : kSkip) {
    SCOPED_TRACE("step " + std::to_string(s++));
    make_grads(oc, p.cpu, 1.0 + 0.25 * s, skip == 1);
    make_grads(og, p.gpu, 1.0 + 0.25 * s, skip == 1);
    step_both(oc, og, skip, gpu);
    const auto sc = oc.state_dict(), sg = og.state_dict();
    if (s <= 2) expect_no_saved_state(sg);
    for (size_t i = 0; i < p.cpu.size(); ++i)
      EXPECT_TRUE(close_to(p.gpu[i].detach(), p.cpu[i].detach(), tol)) << "param " << i;
    ASSERT_EQ(sc.size(), sg.size());
    for (const auto& [k, t] : sc) {
      ASSERT_TRUE(sg.count(k)) << k;
      if (k.rfind("state.", 0) != 0) continue;
      const Tensor g = sg.at(k);
      EXPECT_EQ(g.dtype(), t.dtype()) << k;
      if (t.dim() == 0)
        EXPECT_EQ(g.item<double>(), t.item<double>()) << k;  // the step count
      else
        EXPECT_TRUE(close_to(g, t, tol)) << k;
    }
  }
}

double step_count(const optim::Optimizer& opt) {
  for (const auto& [k, t] : opt.state_dict())
    if (k.size() > 5 && k.compare(k.size() - 5, 5, ".step") == 0) {
      EXPECT_EQ(t.dtype(), kFloat64) << k;
      EXPECT_EQ(t.dim(), 0) << k;
      return t.item<double>();
    }
  return -1;
}

const Kind kKinds[] = {Kind::sgd, Kind::sgd_nesterov, Kind::adam, Kind::adamw};

}  // namespace

TEST(CudaStepGuard, SkippedStepLeavesGpuParamsAndStateBitIdentical) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  for (DType dt : {kFloat32, kFloat64})
    for (Kind kind : kKinds) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + kind_name(kind));
      Tensor p = random_tensor({300, 5}, dt, 3).to(gpu).requires_grad_(true);
      auto opt = make_optimizer(kind, p);
      // A skipped first step leaves the parameter as it was and no state in state_dict() (the
      // CPU's and PyTorch's state: the device-side state it created is pending).
      const std::string p0 = bytes_of(p);
      make_grad(*opt, p, 1.0, true);
      opt->set_skip_flag(flag(true, gpu));
      opt->step();
      EXPECT_FALSE(opt->skip_flag().defined());
      EXPECT_EQ(bytes_of(p), p0);
      expect_no_saved_state(opt->state_dict());
      for (int s = 0; s < 2; ++s) {
        make_grad(*opt, p, 1.0 + s, false);
        opt->set_skip_flag(flag(false, gpu));
        opt->step();
      }
      EXPECT_NE(bytes_of(p), p0);
      const auto before = snapshot(p, *opt);
      make_grad(*opt, p, 1.0, true);
      opt->set_skip_flag(flag(true, gpu));
      opt->step();
      EXPECT_EQ(before, snapshot(p, *opt));
      if (kind == Kind::adam || kind == Kind::adamw) {
        EXPECT_EQ(step_count(*opt), 2.0);
      }
    }
}

TEST(CudaStepGuard, GuardedStepsMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  // Skip pattern; the unskipped steps must match the CPU optimizer fed the same pattern (the CPU
  // reads its flag on the host). The last steps are unguarded: the GPU step count goes back to
  // the host there.
  const int kSkip[] = {0, 1, 0, 0, 1, 1, 0, -1, -1};
  for (DType dt : {kFloat32, kFloat64})
    for (Kind kind : kKinds) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + kind_name(kind));
      Tensor init = random_tensor({1000, 3}, dt, 40);
      Tensor pc = init.clone().requires_grad_(true);
      Tensor pg = init.to(gpu).requires_grad_(true);
      auto oc = make_optimizer(kind, pc);
      auto og = make_optimizer(kind, pg);
      int s = 0;
      for (int skip : kSkip) {
        SCOPED_TRACE("step " + std::to_string(s++));
        make_grad(*oc, pc, 1.0 + 0.25 * s, skip == 1);
        make_grad(*og, pg, 1.0 + 0.25 * s, skip == 1);
        step_both(*oc, *og, skip, gpu);
        EXPECT_TRUE(close_to(pg.detach(), pc.detach(), param_tol(dt)));
        EXPECT_EQ(step_count(*og), step_count(*oc));
      }
      for (const auto& [k, t] : oc->state_dict()) {
        const auto g = og->state_dict().at(k);
        if (k.rfind("state.", 0) == 0 && t.dim() > 0) {
          EXPECT_TRUE(close_to(g, t, param_tol(dt))) << k;
        }
      }
    }
}

TEST(CudaStepGuard, StateDictRoundTripAcrossGuardedSteps) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  for (Kind kind : {Kind::adam, Kind::adamw}) {
    SCOPED_TRACE(kind_name(kind));
    Tensor init = random_tensor({64, 4}, kFloat32, 9);
    Tensor pa = init.to(gpu).requires_grad_(true), pb = init.to(gpu).requires_grad_(true);
    auto oa = make_optimizer(kind, pa);
    for (int s = 0; s < 3; ++s) {
      make_grad(*oa, pa, 1.0, false);
      oa->set_skip_flag(flag(false, gpu));
      oa->step();
    }
    // The step count lives on the device now; the saved format stays a 0-d f64.
    EXPECT_EQ(step_count(*oa), 3.0);
    auto ob = make_optimizer(kind, pb);
    {
      NoGradGuard ng;
      pb.copy_(pa);
    }
    ob->load_state_dict(oa->state_dict());
    make_grad(*oa, pa, 2.0, false);
    make_grad(*ob, pb, 2.0, false);
    oa->set_skip_flag(flag(false, gpu));
    ob->set_skip_flag(flag(false, gpu));
    oa->step();
    ob->step();  // its step count came back on the host (load_state_dict) and moves to the device
    EXPECT_EQ(bytes_of(pa), bytes_of(pb));
    EXPECT_EQ(snapshot(pa, *oa), snapshot(pb, *ob));
  }
}

// PyTorch starts the momentum buffer with the gradient on the first step that actually runs.
// A skipped guarded first step on CUDA (the host cannot know it was skipped) must leave no
// state behind in state_dict(), and the next step must be a first step: with dampening != 0 a
// zero buffer taken as a real one would give (1 − dampening)·g instead of g. Two parameters,
// one of several multi-tensor chunks (each chunk has its own flag), against the CPU optimizer
// fed the same skip pattern; the last steps are unguarded (the flags are dropped there).
TEST(CudaStepGuard, SgdSkippedFirstStepsWithDampeningMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  for (DType dt : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Params p = cpu_and_gpu_params({random_tensor({300, 70}, dt, 50), random_tensor({7, 3}, dt, 51)}, gpu);
    const optim::SGDOptions o{.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.01};
    optim::SGD oc(p.cpu, o), og(p.gpu, o);
    expect_skip_pattern_matches_cpu(oc, og, p, param_tol(dt), gpu);
  }
}

// A checkpoint taken after a skipped guarded first step holds no momentum buffer; an optimizer
// that loads it (on CUDA or on the CPU) starts its buffer with the gradient, as the one that
// saved it does.
TEST(CudaStepGuard, SgdStateDictAfterSkippedFirstStepRoundTrips) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  const optim::SGDOptions o{.lr = 0.1, .momentum = 0.9, .dampening = 0.3};
  Tensor init = random_tensor({40, 5}, kFloat64, 60);
  Tensor pa = init.to(gpu).requires_grad_(true), pb = init.to(gpu).requires_grad_(true);
  Tensor pc = init.clone().requires_grad_(true);
  optim::SGD oa(std::vector<Tensor>{pa}, o), ob(std::vector<Tensor>{pb}, o), oc(std::vector<Tensor>{pc}, o);
  make_grad(oa, pa, 1.0, true);
  oa.set_skip_flag(flag(true, gpu));
  oa.step();
  const optim::OptimizerState saved = oa.state_dict();
  expect_no_saved_state(saved);
  ob.load_state_dict(saved);
  oc.load_state_dict(saved);
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(s);
    make_grad(oa, pa, 1.5 + s, false);
    make_grad(ob, pb, 1.5 + s, false);
    make_grad(oc, pc, 1.5 + s, false);
    oa.set_skip_flag(flag(false, gpu));
    oa.step();  // guarded
    ob.step();  // unguarded
    oc.step();
    EXPECT_EQ(bytes_of(pa), bytes_of(pb));
    EXPECT_TRUE(close_to(pa.detach(), pc.detach(), {1e-12, 1e-10}));
  }
  EXPECT_EQ(snapshot(pa, oa), snapshot(pb, ob));
}

// Adam/AdamW: skipped guarded first steps create the state on the device (step 0, zero
// moments) before it is known whether they run; state_dict() must hold none of it until a step
// has run (as the CPU optimizer fed the same pattern), then exactly the CPU's. Two parameters,
// one of several multi-tensor chunks; the last steps are unguarded.
TEST(CudaStepGuard, AdamSkippedFirstStepsSaveStateLikeCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  for (DType dt : {kFloat32, kFloat64})
    for (Kind kind : {Kind::adam, Kind::adamw}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + kind_name(kind));
      const Params p = cpu_and_gpu_params({random_tensor({300, 70}, dt, 70), random_tensor({7, 3}, dt, 71)}, gpu);
      std::unique_ptr<optim::Optimizer> oc, og;
      if (kind == Kind::adam) {
        oc = std::make_unique<optim::Adam>(p.cpu, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
        og = std::make_unique<optim::Adam>(p.gpu, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
      } else {
        oc = std::make_unique<optim::AdamW>(p.cpu, optim::AdamWOptions{.lr = 0.01});
        og = std::make_unique<optim::AdamW>(p.gpu, optim::AdamWOptions{.lr = 0.01});
      }
      expect_skip_pattern_matches_cpu(*oc, *og, p, param_tol(dt), gpu);
    }
}

// A checkpoint taken after skipped guarded first steps holds no Adam state; optimizers that load
// it (CUDA and CPU) go on as the one that saved it; the CPU's state loads back into CUDA.
TEST(CudaStepGuard, AdamStateDictAfterSkippedFirstStepsRoundTrips) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  for (Kind kind : {Kind::adam, Kind::adamw}) {
    SCOPED_TRACE(kind_name(kind));
    Tensor init = random_tensor({40, 5}, kFloat64, 80);
    Tensor pa = init.to(gpu).requires_grad_(true), pb = init.to(gpu).requires_grad_(true);
    Tensor pc = init.clone().requires_grad_(true);
    auto oa = make_optimizer(kind, pa), ob = make_optimizer(kind, pb), oc = make_optimizer(kind, pc);
    for (int s = 0; s < 2; ++s) {
      make_grad(*oa, pa, 1.0, true);
      oa->set_skip_flag(flag(true, gpu));
      oa->step();
    }
    const optim::OptimizerState saved = oa->state_dict();
    expect_no_saved_state(saved);
    ob->load_state_dict(saved);
    oc->load_state_dict(saved);
    for (int s = 0; s < 3; ++s) {
      SCOPED_TRACE(s);
      make_grad(*oa, pa, 1.5 + s, false);
      make_grad(*ob, pb, 1.5 + s, false);
      make_grad(*oc, pc, 1.5 + s, false);
      // Both CUDA optimizers guarded (the device's pow for the bias corrections may differ from
      // the host's in the last bit, so only guarded steps can be compared bit for bit).
      oa->set_skip_flag(flag(false, gpu));
      ob->set_skip_flag(flag(false, gpu));
      oa->step();  // its step count (still 0 on the device) becomes 1
      ob->step();  // a fresh start
      oc->step();
      EXPECT_EQ(bytes_of(pa), bytes_of(pb));
      EXPECT_TRUE(close_to(pa.detach(), pc.detach(), {1e-12, 1e-10}));
      EXPECT_EQ(step_count(*oa), s + 1.0);
    }
    EXPECT_EQ(snapshot(pa, *oa), snapshot(pb, *ob));
    // Saved again after steps ran: the CPU optimizer's state, loaded into a fresh CUDA one.
    Tensor pd = pa.detach().clone().requires_grad_(true);
    auto od = make_optimizer(kind, pd);
    od->load_state_dict(oc->state_dict());
    EXPECT_EQ(step_count(*od), 3.0);
  }
}

TEST(CudaStepGuard, FlagOnAnotherDeviceIsADeviceError) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor pc = zeros({3}).requires_grad_(true);
  optim::SGD oc(std::vector<Tensor>{pc});
  try {
    oc.set_skip_flag(flag(true, Device::cuda(0)));
    ADD_FAILURE() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("the skip flag is on cuda:0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("is on cpu"), std::string::npos) << msg;
  }
  Tensor pg = zeros({3}).to(Device::cuda(0)).requires_grad_(true);
  optim::Adam og(std::vector<Tensor>{pg});
  EXPECT_THROW(og.set_skip_flag(flag(true, Device::cpu())), DeviceError);
}

TEST(CudaStepGuard, StepGuardOnGpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Device gpu = Device::cuda(0);
  try {
    (void)isfinite(zeros({2}).to(gpu));
  } catch (const NotImplemented&) {
    GTEST_SKIP() << "isfinite on CUDA tensors is not implemented yet (StepGuard::check needs it)";
  }
  Tensor p = random_tensor({50, 2}, kFloat32, 5).to(gpu).requires_grad_(true);
  optim::Adam opt(std::vector<Tensor>{p}, {.lr = 0.01});
  optim::StepGuard guard(opt, {.max_consecutive_skips = 2});
  make_grad(opt, p, 1.0, false);
  guard.check((p * p).sum());
  ASSERT_TRUE(opt.skip_flag().is_cuda());
  opt.step();
  const auto before = snapshot(p, opt);
  for (int s = 0; s < 2; ++s) {
    make_grad(opt, p, 1.0, true);
    guard.check((p * p).sum());
    opt.step();
  }
  EXPECT_EQ(before, snapshot(p, opt));
  EXPECT_EQ(guard.skipped_steps(), 2);
  EXPECT_THROW(guard.throw_if_diverged(), optim::NumericalError);
}
