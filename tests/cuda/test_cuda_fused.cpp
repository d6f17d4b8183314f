// Fused CUDA paths against their unfused counterparts: cuBLASLt epilogues (BIAS for linear,
// GELU_AUX_BIAS / DGELU_BGRAD for nn::functional::linear_gelu) against the CPU; multi-tensor
// SGD/Adam/AdamW bit for bit against the per-tensor CUDA kernels (and within tolerance against
// the CPU), guarded by device skip flags; clip_grad_norm_ without host synchronisation against
// the CPU. All skip without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;
namespace F = ember::nn::functional;

namespace {

const Device kGpu = Device::cuda(0);

std::string bytes_of(const Tensor& t) {
  Tensor c = t.detach().cpu().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
}

// Tolerances for results through cuBLASLt's GELU epilogues: its tanh may be a fast
// approximation (documented only as the tanh form), so wider than a plain product's.
Tol gelu_tol(DType dt) { return dt == kFloat32 ? Tol{2e-3, 2e-3} : dt == kFloat16 ? Tol{1e-2, 1e-2} : Tol{3e-2, 3e-2}; }

// Restores cuda::allow_tf32 at the end of a test.
struct Tf32Guard {
  bool old = cuda::allow_tf32();
  explicit Tf32Guard(bool on) { cuda::set_allow_tf32(on); }
  ~Tf32Guard() { cuda::set_allow_tf32(old); }
};

// ------------------------------------------------------------------ epilogues
class FusedLinear : public ::testing::TestWithParam<DType> {};

TEST_P(FusedLinear, BiasEpilogueMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tf32Guard tf32(false);
  const DType dt = GetParam();
  // The entry point itself runs (one call with the BIAS epilogue) and matches the CPU.
  const Tensor x = random_tensor({33, 20}, dt, 1), w = random_tensor({24, 20}, dt, 2), b = random_tensor({24}, dt, 3);
  Tensor out = empty({33, 24}, {.dtype = dt, .device = kGpu});
  ASSERT_TRUE(cuda_backend::linear_bias(out, x.to(kGpu), w.to(kGpu), b.to(kGpu)));
  const Tensor ref = F::linear(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32)).to(dt);
  EXPECT_TRUE(close_to(out, ref, tol_for(dt)));
  // Through nn::functional::linear with gradients, a transposed weight and a 3-d input.
  expect_same_on_cuda([](const std::vector<Tensor>& in) { return F::linear(in[0], in[1].t(), in[2]); },
                      {random_tensor({2, 5, 16}, dt, 4), random_tensor({16, 12}, dt, 5), random_tensor({12}, dt, 6)},
                      Tol{tol_for(dt).atol * 20, tol_for(dt).rtol * 4});
}

TEST_P(FusedLinear, GeluEpilogueMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tf32Guard tf32(false);
  const DType dt = GetParam();
  // n = 10: the aux buffer's row stride is padded to 16.
  for (int64_t n : {16, 10}) {
    const Tensor x = random_tensor({9, 12}, dt, 7), w = random_tensor({n, 12}, dt, 8), b = random_tensor({n}, dt, 9);
    const int64_t ld = (n + 7) / 8 * 8;
    Tensor y = empty({9, n}, {.dtype = dt, .device = kGpu});
    Tensor pre = empty({9, ld}, {.dtype = dt, .device = kGpu}).narrow(1, 0, n);
    ASSERT_TRUE(cuda_backend::linear_gelu(y, pre, x.to(kGpu), w.to(kGpu), b.to(kGpu))) << "n = " << n;
    const Tensor z = F::linear(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32));
    EXPECT_TRUE(close_to(pre, z.to(dt), tol_for(dt))) << "GELU input, n = " << n;
    EXPECT_TRUE(close_to(y, F::gelu(z, "tanh").to(dt), gelu_tol(dt))) << "output, n = " << n;
    // The backward epilogue: gelu'(pre) ⊙ g and its column sums.
    const Tensor g = random_tensor({9, n}, dt, 10);
    Tensor gpre = empty({9, n}, {.dtype = dt, .device = kGpu}), gb = empty({n}, {.dtype = dt, .device = kGpu});
    ASSERT_TRUE(cuda_backend::gelu_backward_bgrad(gpre, gb, g.to(kGpu), pre)) << "n = " << n;
    Tensor zc = pre.cpu().to(kFloat32).detach();
    zc.requires_grad_(true);
    F::gelu(zc, "tanh").backward(g.to(kFloat32));
    EXPECT_TRUE(close_to(gpre, zc.grad().to(dt), gelu_tol(dt))) << "GELU input gradient, n = " << n;
    const Tol sum_tol{tol_for(dt).atol * 10, tol_for(dt).rtol * 10};
    EXPECT_TRUE(close_to(gb, gpre.cpu().to(kFloat32).sum({0}).to(dt), sum_tol)) << "bias gradient, n = " << n;
  }
}

TEST_P(FusedLinear, LinearGeluWithGradientsMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tf32Guard tf32(false);
  const DType dt = GetParam();
  // 16-bit: compare against the CPU in f32 (the CPU lacks 16-bit GEMMs' f32 accumulation).
  const Tol tol = dt == kFloat32 ? gelu_tol(dt) : Tol{gelu_tol(dt).atol * 3, gelu_tol(dt).rtol * 3};
  for (int64_t n : {24, 13}) {
    std::vector<Tensor> in{random_tensor({3, 7, 20}, dt, 11), random_tensor({n, 20}, dt, 12),
                           random_tensor({n}, dt, 13)};
    std::vector<Tensor> cpu_in, gpu_in;
    for (const Tensor& t : in) {
      cpu_in.push_back(t.to(kFloat32).detach().requires_grad_(true));
      gpu_in.push_back(t.to(kGpu).detach().requires_grad_(true));
    }
    const Tensor yc = F::linear_gelu(cpu_in[0], cpu_in[1], cpu_in[2]);
    const Tensor yg = F::linear_gelu(gpu_in[0], gpu_in[1], gpu_in[2]);
    ASSERT_TRUE(yg.is_cuda());
    EXPECT_EQ(yg.dtype(), dt);
    EXPECT_TRUE(close_to(yg, yc.to(dt), tol)) << "forward, n = " << n;
    const Tensor gw = random_tensor(yc.shape(), kFloat32, 14);
    (yc * gw).sum().backward();
    (yg * gw.to(dt).to(kGpu)).sum().backward();
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(gpu_in[i].grad().defined()) << "input " << i;
      EXPECT_TRUE(close_to(gpu_in[i].grad(), cpu_in[i].grad().to(dt), tol)) << "gradient " << i << ", n = " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedLinear, ::testing::Values(kFloat32, kFloat16, kBFloat16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(FusedLinearGelu, Float64FallsBackToTheComposition) {
  EMBER_REQUIRE_CUDA_DEVICE();
  expect_same_on_cuda(
      [](const std::vector<Tensor>& in) { return F::linear_gelu(in[0], in[1], in[2]); },
      {random_tensor({6, 5}, kFloat64, 15), random_tensor({4, 5}, kFloat64, 16), random_tensor({4}, kFloat64, 17)},
      tol_for(kFloat64));
  Tensor y = empty({6, 4}, {.dtype = kFloat64, .device = kGpu});
  EXPECT_FALSE(cuda_backend::linear_bias(y, random_tensor({6, 5}, kFloat64, 15).to(kGpu),
                                         random_tensor({4, 5}, kFloat64, 16).to(kGpu),
                                         random_tensor({4}, kFloat64, 17).to(kGpu)));
}

TEST(FusedLinearGelu, WideOutputUsesTheComposedBackward) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tf32Guard tf32(false);
  // n = 1030 > 1024: the f32 backward composes instead of the identity product.
  const int64_t n = 1030;
  Tensor gpre = empty({3, n}, {.dtype = kFloat32, .device = kGpu}),
         gb = empty({n}, {.dtype = kFloat32, .device = kGpu});
  Tensor pre = empty({3, 1032}, {.dtype = kFloat32, .device = kGpu}).narrow(1, 0, n);
  EXPECT_FALSE(cuda_backend::gelu_backward_bgrad(gpre, gb, random_tensor({3, n}, kFloat32, 21).to(kGpu), pre));
  std::vector<Tensor> in{random_tensor({3, 8}, kFloat32, 22), random_tensor({n, 8}, kFloat32, 23),
                         random_tensor({n}, kFloat32, 24)};
  expect_same_on_cuda([](const std::vector<Tensor>& t) { return F::linear_gelu(t[0], t[1], t[2]); }, in,
                      gelu_tol(kFloat32));
}

TEST(FusedLinearGelu, AutocastRunsInBf16) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const Tensor x = random_tensor({8, 16}, kFloat32, 18).to(kGpu), w = random_tensor({8, 16}, kFloat32, 19).to(kGpu),
               b = random_tensor({8}, kFloat32, 20).to(kGpu);
  Tensor y;
  {
    amp::AutocastGuard ac(kBFloat16, DeviceType::cuda);
    y = F::linear_gelu(x, w, b);
  }
  EXPECT_EQ(y.dtype(), kBFloat16);
  const Tensor ref = F::gelu(F::linear(x.cpu(), w.cpu(), b.cpu()), "tanh");
  EXPECT_TRUE(close_to(y.to(kFloat32), ref, {0.2, 0.05}));
}

// ------------------------------------------------------------------ multi-tensor optimizers
// Parameter sizes: more than one list (48 per launch), one tensor over several chunks
// (16384 elements each), odd sizes, an empty tensor.
std::vector<int64_t> param_sizes() {
  std::vector<int64_t> s{40000, 0, 1, 17, 16384, 16385};
  for (int i = 0; i < 50; ++i) s.push_back(3 + 37 * i);
  return s;
}

struct Params {
  std::vector<Tensor> p;  // leaves requiring grad on the device
};

Params make_params(DType dt, uint32_t seed) {
  Params r;
  uint32_t s = seed;
  for (int64_t n : param_sizes()) r.p.push_back(random_tensor({n}, dt, s++).to(kGpu).requires_grad_(true));
  return r;
}

void set_grads(std::vector<Tensor>& ps, uint32_t seed, bool poison = false) {
  uint32_t s = seed;
  for (Tensor& p : ps) {
    Tensor g = random_tensor(p.shape(), p.dtype(), s++).to(kGpu);
    if (poison && p.numel() > 3) {
      NoGradGuard ng;
      g.narrow(0, 2, 1).fill_(std::numeric_limits<double>::infinity());
    }
    p.set_grad(g);
  }
}

std::vector<Tensor> clones(const std::vector<Tensor>& ps) {
  std::vector<Tensor> r;
  for (const Tensor& p : ps) r.push_back(p.detach().clone());
  return r;
}

class MultiTensor : public ::testing::TestWithParam<DType> {};

TEST_P(MultiTensor, AdamAndAdamWBitIdenticalToPerTensorKernels) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  for (bool decoupled : {false, true}) {
    Params a = make_params(dt, 100);
    std::vector<Tensor> ref = clones(a.p), m, v;
    for (const Tensor& p : ref) {
      m.push_back(zeros(p.shape(), {.dtype = dt, .device = kGpu}));
      v.push_back(zeros(p.shape(), {.dtype = dt, .device = kGpu}));
    }
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
    std::unique_ptr<optim::Optimizer> opt;
    if (decoupled)
      opt = std::make_unique<optim::AdamW>(a.p, optim::AdamWOptions{.lr = lr, .weight_decay = wd});
    else
      opt = std::make_unique<optim::Adam>(a.p, optim::AdamOptions{.lr = lr, .weight_decay = wd});
    for (int step = 1; step <= 3; ++step) {
      set_grads(a.p, 1000 * step);
      opt->step();
      const double bc1 = 1.0 - std::pow(b1, step), bc2 = std::sqrt(1.0 - std::pow(b2, step));
      for (size_t i = 0; i < ref.size(); ++i)
        cuda_backend::adam_step(ref[i], a.p[i].grad(), m[i], v[i], lr, b1, b2, eps, wd, bc2, lr / bc1, decoupled);
    }
    const optim::OptimizerState st = opt->state_dict();
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(bytes_of(a.p[i]), bytes_of(ref[i])) << "param " << i << (decoupled ? " AdamW" : " Adam");
      EXPECT_EQ(bytes_of(st.at("state.param0." + std::to_string(i) + ".exp_avg")), bytes_of(m[i])) << i;
      EXPECT_EQ(bytes_of(st.at("state.param0." + std::to_string(i) + ".exp_avg_sq")), bytes_of(v[i])) << i;
    }
  }
}

TEST_P(MultiTensor, GuardedAdamWBitIdenticalToPerTensorAndSkips) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  Params a = make_params(dt, 200);
  std::vector<Tensor> ref = clones(a.p), m, v, steps;
  for (const Tensor& p : ref) {
    m.push_back(zeros(p.shape(), {.dtype = dt, .device = kGpu}));
    v.push_back(zeros(p.shape(), {.dtype = dt, .device = kGpu}));
    steps.push_back(zeros({}, {.dtype = kFloat64, .device = kGpu}));
  }
  optim::AdamW opt(a.p, optim::AdamWOptions{.lr = 0.02, .weight_decay = 0.1});
  const bool pattern[] = {false, true, false, false};
  uint64_t syncs = 0;
  for (int s = 0; s < 4; ++s) {
    set_grads(a.p, 2000 + s);
    const Tensor skip = full({}, pattern[s], {.dtype = kBool}).to(kGpu);
    opt.set_skip_flag(skip);
    const uint64_t before = cuda::host_sync_count();
    opt.step();
    syncs += cuda::host_sync_count() - before;
    for (size_t i = 0; i < ref.size(); ++i)
      cuda_backend::adam_step_guarded(ref[i], a.p[i].grad(), m[i], v[i], steps[i], skip, 0.02, 0.9, 0.999, 1e-8, 0.1,
                                      true);
  }
  EXPECT_EQ(syncs, 0u) << "a guarded multi-tensor step waited for the device";
  const optim::OptimizerState st = opt.state_dict();
  for (size_t i = 0; i < ref.size(); ++i) {
    const std::string k = "state.param0." + std::to_string(i) + ".";
    EXPECT_EQ(bytes_of(a.p[i]), bytes_of(ref[i])) << "param " << i;
    EXPECT_EQ(bytes_of(st.at(k + "exp_avg")), bytes_of(m[i])) << i;
    EXPECT_EQ(bytes_of(st.at(k + "exp_avg_sq")), bytes_of(v[i])) << i;
    EXPECT_EQ(st.at(k + "step").cpu().item<double>(), 3.0) << i;
  }
}

TEST_P(MultiTensor, SgdBitIdenticalToPerTensorKernels) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  struct Case {
    double mom, damp;
    bool nesterov;
  };
  for (const Case c : {Case{0.0, 0.0, false}, Case{0.9, 0.1, false}, Case{0.9, 0.0, true}}) {
    Params a = make_params(dt, 300);
    std::vector<Tensor> ref = clones(a.p), bufs;
    for (const Tensor& p : ref) bufs.push_back(c.mom != 0 ? zeros(p.shape(), {.dtype = dt, .device = kGpu}) : Tensor());
    optim::SGD opt(
        a.p, optim::SGDOptions{
                 .lr = 0.05, .momentum = c.mom, .dampening = c.damp, .weight_decay = 0.01, .nesterov = c.nesterov});
    for (int s = 0; s < 3; ++s) {
      set_grads(a.p, 3000 + s);
      opt.step();
      for (size_t i = 0; i < ref.size(); ++i)
        cuda_backend::sgd_step(ref[i], a.p[i].grad(), bufs[i], 0.05, c.mom, c.damp, 0.01, c.nesterov, s == 0);
    }
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_EQ(bytes_of(a.p[i]), bytes_of(ref[i])) << "param " << i << " momentum " << c.mom;
  }
}

TEST_P(MultiTensor, GuardedSgdSkipsOnTheDevice) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  Params a = make_params(dt, 400);
  optim::SGD opt(a.p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
  set_grads(a.p, 4000);
  opt.step();  // creates the momentum buffers
  const std::vector<Tensor> before = clones(a.p);
  set_grads(a.p, 4001, /*poison=*/true);
  opt.set_skip_flag(full({}, true, {.dtype = kBool}).to(kGpu));
  opt.step();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(bytes_of(a.p[i]), bytes_of(before[i])) << "param " << i;
}

// Guarded steps whose first ones are skipped: the per-chunk "started" flags decide on the device
// which step is the first (the buffer starts as the gradient there), across lists and chunks,
// without host synchronisation, bit for bit as the per-tensor kernel told the truth on the host.
TEST_P(MultiTensor, GuardedSgdSkippedFirstStepsBitIdenticalToPerTensorKernels) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  Params a = make_params(dt, 450);
  std::vector<Tensor> ref = clones(a.p), bufs;
  for (const Tensor& p : ref) bufs.push_back(zeros(p.shape(), {.dtype = dt, .device = kGpu}));
  const double lr = 0.05, mom = 0.9, damp = 0.2, wd = 0.01;
  optim::SGD opt(a.p, optim::SGDOptions{.lr = lr, .momentum = mom, .dampening = damp, .weight_decay = wd});
  const bool pattern[] = {true, true, false, true, false, false};
  bool ran = false;
  uint64_t syncs = 0;
  for (int s = 0; s < 6; ++s) {
    set_grads(a.p, 4500 + s, /*poison=*/pattern[s]);
    opt.set_skip_flag(full({}, pattern[s], {.dtype = kBool}).to(kGpu));
    const uint64_t before = cuda::host_sync_count();
    opt.step();
    syncs += cuda::host_sync_count() - before;
    if (pattern[s]) continue;
    for (size_t i = 0; i < ref.size(); ++i)
      cuda_backend::sgd_step(ref[i], a.p[i].grad(), bufs[i], lr, mom, damp, wd, false, /*first=*/!ran);
    ran = true;
  }
  EXPECT_EQ(syncs, 0u) << "a guarded multi-tensor SGD step waited for the device";
  const optim::OptimizerState st = opt.state_dict();
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(bytes_of(a.p[i]), bytes_of(ref[i])) << "param " << i;
    EXPECT_EQ(bytes_of(st.at("state.param0." + std::to_string(i) + ".momentum_buffer")), bytes_of(bufs[i])) << i;
  }
}

TEST_P(MultiTensor, OptimizersMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const DType dt = GetParam();
  const Tol tol = dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-5};
  for (int kind = 0; kind < 3; ++kind) {
    Params a = make_params(dt, 500);
    std::vector<Tensor> cpu;
    for (const Tensor& p : a.p) cpu.push_back(p.detach().cpu().requires_grad_(true));
    auto make = [&](const std::vector<Tensor>& ps) -> std::unique_ptr<optim::Optimizer> {
      if (kind == 0) return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
      if (kind == 1) return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.01});
      return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions{.lr = 0.01});
    };
    auto og = make(a.p), oc = make(cpu);
    for (int s = 0; s < 3; ++s) {
      set_grads(a.p, 5000 + s);
      for (size_t i = 0; i < cpu.size(); ++i) cpu[i].set_grad(a.p[i].grad().cpu());
      og->step();
      oc->step();
    }
    for (size_t i = 0; i < cpu.size(); ++i)
      EXPECT_TRUE(close_to(a.p[i].detach(), cpu[i].detach(), tol)) << "kind " << kind << " param " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MultiTensor, ::testing::Values(kFloat32, kFloat64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// ------------------------------------------------------------------ clip_grad_norm_
TEST(FusedClip, MatchesCpuWithoutHostSync) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : {kFloat32, kFloat64}) {
    for (double norm_type : {2.0, std::numeric_limits<double>::infinity()}) {
      for (double max_norm : {0.5, 1e6}) {  // clipping, and a coefficient of 1
        Params a = make_params(dt, 600);
        std::vector<Tensor> cpu;
        set_grads(a.p, 6000);
        for (const Tensor& p : a.p) {
          Tensor c = p.detach().cpu().requires_grad_(true);
          c.set_grad(p.grad().cpu());
          cpu.push_back(c);
        }
        const uint64_t syncs = cuda::host_sync_count();
        const Tensor total = optim::clip_grad_norm_(a.p, max_norm, norm_type);
        EXPECT_EQ(cuda::host_sync_count(), syncs) << "clip_grad_norm_ waited for the device";
        ASSERT_TRUE(total.is_cuda());
        EXPECT_EQ(total.dim(), 0);
        EXPECT_EQ(total.dtype(), dt);
        const Tensor total_cpu = optim::clip_grad_norm_(cpu, max_norm, norm_type);
        const Tol tol = dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-5};
        EXPECT_TRUE(close_to(total, total_cpu, tol)) << dtype_name(dt) << " norm " << norm_type;
        for (size_t i = 0; i < cpu.size(); ++i)
          EXPECT_TRUE(close_to(a.p[i].grad(), cpu[i].grad(), tol)) << "grad " << i << " norm " << norm_type;
      }
    }
  }
}

TEST(FusedClip, DeterministicTotal) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Params a = make_params(kFloat32, 700);
  set_grads(a.p, 7000);
  const Tensor t1 = optim::clip_grad_norm_(a.p, 1e9);
  set_grads(a.p, 7000);
  const Tensor t2 = optim::clip_grad_norm_(a.p, 1e9);
  EXPECT_EQ(bytes_of(t1), bytes_of(t2));
}

TEST(FusedClip, NonFiniteTotal) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Params a = make_params(kFloat32, 800);
  set_grads(a.p, 8000, /*poison=*/true);
  std::vector<std::string> before;
  for (const Tensor& p : a.p) before.push_back(bytes_of(p.grad()));
  // error_if_nonfinite reads the total on the host: ValueError, gradients untouched.
  EXPECT_THROW(optim::clip_grad_norm_(a.p, 1.0, 2.0, true), ValueError);
  try {
    optim::clip_grad_norm_(a.p, 1.0, 2.0, true);
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("the total norm of order 2 of the gradients is inf"), std::string::npos)
        << e.what();
  }
  for (size_t i = 0; i < a.p.size(); ++i) EXPECT_EQ(bytes_of(a.p[i].grad()), before[i]) << i;
  // Without the check, as PyTorch: total inf, coefficient 0 (finite values become 0, inf NaN).
  const Tensor total = optim::clip_grad_norm_(a.p, 1.0);
  EXPECT_TRUE(std::isinf(total.cpu().item<double>()));
  const std::vector<double> g0 = a.p[0].grad().cpu().to_vector<double>();
  EXPECT_TRUE(std::isnan(g0[2]));
  EXPECT_EQ(g0[0], 0.0);
}

TEST(FusedClip, MixedDevicesAreAnError) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor a = random_tensor({4}, kFloat32, 1).to(kGpu).requires_grad_(true);
  Tensor b = random_tensor({4}, kFloat32, 2).requires_grad_(true);
  a.set_grad(ones({4}).to(kGpu));
  b.set_grad(ones({4}));
  EXPECT_THROW(optim::clip_grad_norm_({a, b}, 1.0), DeviceError);
}

}  // namespace
