// Mixed precision on the CPU: autocast's dtype selection (bf16/f16 for matmul/linear/conv2d, f32
// for cross_entropy and batch_norm), its thread-local nesting, gradients of f32 masters, and the
// GradScaler's scale sequence checked against torch.amp.GradScaler's documented rules written out
// by hand (backoff on inf with the step skipped bit for bit, growth after growth_interval clean
// steps, state through io::TrainerState::grad_scaler).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "ember/backend/cuda.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

using amp::AutocastGuard;
using amp::GradScaler;

std::vector<float> values(const Tensor& t) {
  const Tensor c = t.detach().to(kFloat32).contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.nbytes())) == 0;
}

// ------------------------------------------------------------------ autocast state

TEST(Autocast, GuardSetsAndRestoresPerDeviceType) {
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cpu));
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cuda));
  {
    AutocastGuard g(kBFloat16, DeviceType::cpu);
    EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::cpu));
    EXPECT_EQ(amp::autocast_dtype(DeviceType::cpu), kBFloat16);
    EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cuda));  // per device type
    {
      AutocastGuard inner(kFloat16, DeviceType::cpu);
      EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::cpu));
      EXPECT_EQ(amp::autocast_dtype(DeviceType::cpu), kFloat16);
      {
        AutocastGuard off(kFloat16, DeviceType::cpu, /*enabled=*/false);
        EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cpu));
      }
      EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::cpu));
      EXPECT_EQ(amp::autocast_dtype(DeviceType::cpu), kFloat16);
    }
    EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::cpu));
    EXPECT_EQ(amp::autocast_dtype(DeviceType::cpu), kBFloat16);
  }
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cpu));
}

TEST(Autocast, RejectsNon16BitDtypes) {
  expect_error<DTypeError>([] { AutocastGuard g(kFloat32, DeviceType::cpu); }, "float16 or bfloat16, got float32");
  expect_error<DTypeError>([] { amp::set_autocast_state(DeviceType::cpu, true, kInt64); }, "got int64");
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceType::cpu));  // a failed guard changes nothing
}

TEST(Autocast, IsThreadLocal) {
  AutocastGuard g(kBFloat16, DeviceType::cpu);
  bool other_enabled = true;
  DType other_dtype = kFloat32;
  std::thread t([&] {
    other_enabled = amp::is_autocast_enabled(DeviceType::cpu);
    const Tensor a = random_tensor({3, 4}, 1, kFloat32), b = random_tensor({4, 2}, 2, kFloat32);
    other_dtype = matmul(a, b).dtype();
  });
  t.join();
  EXPECT_FALSE(other_enabled);
  EXPECT_EQ(other_dtype, kFloat32);
  EXPECT_TRUE(amp::is_autocast_enabled(DeviceType::cpu));
}

// ------------------------------------------------------------------ dtype selection

TEST(Autocast, MatrixProductsAndConvRunIn16BitInsideTheGuard) {
  const Tensor a = random_tensor({3, 4}, 1, kFloat32), b = random_tensor({4, 5}, 2, kFloat32);
  const Tensor a3 = random_tensor({2, 3, 4}, 3, kFloat32), b3 = random_tensor({2, 4, 5}, 4, kFloat32);
  const Tensor w = random_tensor({5, 4}, 5, kFloat32), bias = random_tensor({5}, 6, kFloat32);
  const Tensor x = random_tensor({2, 3, 6, 6}, 7, kFloat32), k = random_tensor({4, 3, 3, 3}, 8, kFloat32);
  const Tensor kb = random_tensor({4}, 9, kFloat32);
  for (DType low : {kBFloat16, kFloat16}) {
    {
      AutocastGuard g(low, DeviceType::cpu);
      EXPECT_EQ(matmul(a, b).dtype(), low);
      EXPECT_EQ(matmul(a3, b).dtype(), low);
      EXPECT_EQ(mm(a, b).dtype(), low);
      EXPECT_EQ(bmm(a3, b3).dtype(), low);
      EXPECT_EQ(linear(a, w, bias).dtype(), low);
      EXPECT_EQ(linear(a.to(low), w, bias).dtype(), low);  // mixed 16-bit input and f32 weight
      EXPECT_EQ(conv2d(x, k, kb, 1, 1).dtype(), low);
      EXPECT_EQ(add(a, a).dtype(), kFloat32);  // not on the list: unchanged
      // f64 operands are not autocast (as PyTorch).
      EXPECT_EQ(matmul(a.to(kFloat64), b.to(kFloat64)).dtype(), kFloat64);
    }
    EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
    EXPECT_EQ(linear(a, w, bias).dtype(), kFloat32);
    EXPECT_EQ(conv2d(x, k, kb, 1, 1).dtype(), kFloat32);
  }
  // A CUDA autocast guard leaves CPU tensors alone.
  AutocastGuard cuda_guard(kBFloat16, DeviceType::cuda);
  EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
  EXPECT_EQ(conv2d(x, k, kb, 1, 1).dtype(), kFloat32);
}

TEST(Autocast, LinearComputesOnTheRoundedOperands) {
  // Independent truth: round the operands to bf16, compute in double, round the result to bf16.
  const Tensor x = random_tensor({4, 6}, 11, kFloat32), w = random_tensor({3, 6}, 12, kFloat32);
  const Tensor b = random_tensor({3}, 13, kFloat32);
  Tensor y;
  {
    AutocastGuard g(kBFloat16, DeviceType::cpu);
    y = linear(x, w, b);
  }
  ASSERT_EQ(y.dtype(), kBFloat16);
  const auto xv = values(x.to(kBFloat16)), wv = values(w.to(kBFloat16)), bv = values(b.to(kBFloat16));
  const auto yv = values(y);
  for (int i = 0; i < 4; ++i)
    for (int o = 0; o < 3; ++o) {
      double ref = bv[o];
      for (int k = 0; k < 6; ++k) ref += static_cast<double>(xv[i * 6 + k]) * wv[o * 6 + k];
      const float got = yv[i * 3 + o];
      ASSERT_FALSE(std::isnan(got));
      // One bf16 rounding of the result (8 significant bits): |err| <= 2^-8 |ref| (+ tiny abs).
      EXPECT_NEAR(got, ref, std::abs(ref) * 0.0040 + 1e-6) << i << "," << o;
    }
}

TEST(Autocast, CrossEntropyAndBatchNormRunInFloat32) {
  const Tensor logits16 = random_tensor({5, 4}, 21, kBFloat16);
  const Tensor target = tensor<int64_t>({0, 3, 1, 2, 3});
  EXPECT_EQ(nn::functional::cross_entropy(logits16, target).dtype(), kBFloat16);  // outside: unchanged
  const Tensor x16 = random_tensor({2, 3, 4, 4}, 22, kBFloat16);
  const Tensor gamma = random_tensor({3}, 23, kFloat32), beta = random_tensor({3}, 24, kFloat32);
  AutocastGuard g(kBFloat16, DeviceType::cpu);
  const Tensor loss = nn::functional::cross_entropy(logits16, target);
  EXPECT_EQ(loss.dtype(), kFloat32);
  // Same value as the f32 loss of the same (bf16-valued) logits.
  const Tensor ref = nn::functional::cross_entropy(logits16.to(kFloat32), target);
  ASSERT_FALSE(std::isnan(loss.item<float>()));
  EXPECT_EQ(loss.item<float>(), ref.item<float>());
  const Tensor y = batch_norm(x16, Tensor(), Tensor(), gamma, beta, /*training=*/true, 0.1, 1e-5);
  EXPECT_EQ(y.dtype(), kFloat32);
}

// ------------------------------------------------------------------ gradients of f32 masters

TEST(Autocast, GradientsOfFloat32MastersAreFloat32AndCloseToTheFloat32Run) {
  const Tensor x = random_tensor({8, 6}, 31, kFloat32), target = tensor<int64_t>({0, 1, 2, 0, 1, 2, 0, 1});
  const Tensor w0 = random_tensor({3, 6}, 32, kFloat32, 0.5), b0 = random_tensor({3}, 33, kFloat32, 0.5);
  const Tensor k0 = random_tensor({2, 1, 3, 3}, 34, kFloat32, 0.5);
  const Tensor img = random_tensor({8, 1, 4, 4}, 35, kFloat32);
  auto run = [&](bool autocast, bool backward_inside) {
    Tensor w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    Tensor k = k0.clone().requires_grad_(true);
    std::optional<AutocastGuard> g;
    if (autocast) g.emplace(kBFloat16, DeviceType::cpu);
    const Tensor feat = conv2d(img, k, Tensor(), 1, 1).sum({1, 2, 3}).unsqueeze(1);  // (8, 1)
    const Tensor logits = linear(x + feat, w, b);
    EXPECT_EQ(logits.dtype(), autocast ? kBFloat16 : kFloat32);
    const Tensor loss = nn::functional::cross_entropy(logits, target);
    EXPECT_EQ(loss.dtype(), kFloat32);
    if (!backward_inside) g.reset();
    loss.backward();
    return std::vector<Tensor>{w.grad(), b.grad(), k.grad()};
  };
  const auto ref = run(false, false);
  for (bool inside : {false, true}) {
    const auto got = run(true, inside);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(got[i].defined());
      EXPECT_EQ(got[i].dtype(), kFloat32) << i;
      const auto gv = values(got[i]), rv = values(ref[i]);
      double scale = 0;
      for (float v : rv) scale = std::max(scale, static_cast<double>(std::abs(v)));
      for (size_t j = 0; j < gv.size(); ++j) {
        ASSERT_FALSE(std::isnan(gv[j]));
        // bf16 operands carry ~2^-9 relative error each; through two products and the softmax the
        // gradients stay within a few percent of the largest one.
        EXPECT_NEAR(gv[j], rv[j], 0.03 * scale + 1e-4) << "grad " << i << " element " << j;
      }
    }
  }
}

// An MLP trained on a synthetic task (labels from a random linear teacher) for 30 SGD steps.
double train_mlp(std::optional<DType> autocast, GradScaler* scaler, int* skipped = nullptr) {
  manual_seed(7);
  auto model = std::make_shared<nn::Sequential>();
  model->emplace<nn::Linear>(16, 32);
  model->emplace<nn::ReLU>();
  model->emplace<nn::Linear>(32, 4);
  const Tensor x = random_tensor({64, 16}, 41, kFloat32);
  const Tensor teacher = random_tensor({16, 4}, 42, kFloat32);
  const Tensor y = argmax(matmul(x, teacher), 1);
  optim::SGD opt(model->parameters(), {.lr = 0.5});
  double loss_value = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    Tensor loss;
    {
      std::optional<AutocastGuard> g;
      if (autocast) g.emplace(*autocast, DeviceType::cpu);
      loss = nn::functional::cross_entropy(model->forward(x), y);
    }
    EXPECT_EQ(loss.dtype(), kFloat32);
    if (scaler) {
      const double before = scaler->get_scale();
      scaler->scale(loss).backward();
      scaler->step(opt);
      scaler->update();
      if (skipped && scaler->get_scale() < before) ++*skipped;
    } else {
      loss.backward();
      opt.step();
    }
    for (const Tensor& p : model->parameters()) EXPECT_EQ(p.dtype(), kFloat32);
    loss_value = loss.item<float>();
  }
  return loss_value;
}

TEST(Autocast, MlpTrainsWithBf16CloseToFloat32) {
  const double f32 = train_mlp(std::nullopt, nullptr);
  const double bf16 = train_mlp(kBFloat16, nullptr);
  ASSERT_FALSE(std::isnan(f32));
  ASSERT_FALSE(std::isnan(bf16));
  // Both learn (the initial loss is about ln 4 = 1.39).
  EXPECT_LT(f32, 0.9);
  EXPECT_LT(bf16, 0.9);
  // bf16 rounds the operands of each product to 8 significant bits (relative 2^-9); the f32
  // accumulation keeps the products' error at that level, so after 30 steps of a contracting
  // trajectory the loss differs by about 1e-3 (measured 6e-4); 0.02 leaves room for other GEMM
  // kernels while still failing for a wrong cast (an f32 run of a different model).
  EXPECT_NEAR(bf16, f32, 0.02);
}

TEST(Autocast, MlpTrainsWithFp16AndGradScalerCloseToFloat32) {
  const double f32 = train_mlp(std::nullopt, nullptr);
  GradScaler scaler({.init_scale = 65536.0, .growth_interval = 10});
  int backoffs = 0;
  const double f16 = train_mlp(kFloat16, &scaler, &backoffs);
  ASSERT_FALSE(std::isnan(f16));
  EXPECT_LT(f16, 0.9);
  // f16 keeps 11 significant bits: closer than bf16, plus the steps the scaler skipped.
  EXPECT_NEAR(f16, f32, 0.02 + 0.02 * backoffs);
  EXPECT_GT(scaler.get_scale(), 0.0);
}

// ------------------------------------------------------------------ GradScaler

struct ScalerRig {
  Tensor p = tensor<float>({1.0f, -2.0f, 0.5f, 3.0f}).requires_grad_(true);
  optim::SGD opt{std::vector<Tensor>{p}, {.lr = 0.25}};
  // loss = sum(p * c): grad = c (exactly representable, so unscaling by a power of two is exact).
  Tensor loss(const std::vector<float>& c) { return (p * tensor<float>(c)).sum(); }
};

TEST(GradScaler, SequenceMatchesPyTorchRules) {
  ScalerRig r;
  GradScaler scaler({.init_scale = 8.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 2});
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> clean = {0.5f, 1.0f, -1.5f, 2.0f};
  // Expected by hand from torch.amp.GradScaler.update: found_inf -> scale *= backoff, tracker = 0;
  // else tracker += 1 and, at growth_interval, scale *= growth and tracker = 0.
  struct Step {
    bool inf;
    double scale_after;
    int64_t tracker_after;
  };
  const std::vector<Step> plan = {{false, 8, 1}, {false, 16, 0}, {true, 8, 0}, {false, 8, 1},
                                  {false, 16, 0}, {true, 8, 0},  {true, 4, 0}, {false, 4, 1}};
  EXPECT_EQ(scaler.get_scale(), 8.0);
  for (size_t i = 0; i < plan.size(); ++i) {
    const double scale_before = scaler.get_scale();
    r.opt.zero_grad();
    std::vector<float> c = clean;
    if (plan[i].inf) c[2] = inf;
    const Tensor scaled = scaler.scale(r.loss(c));
    scaled.backward();
    // The gradient carries the scale before unscaling.
    EXPECT_EQ(values(r.p.grad())[0], static_cast<float>(0.5 * scale_before)) << "step " << i;
    const Tensor before = r.p.detach().clone();
    scaler.unscale_(r.opt);
    if (!plan[i].inf) {
      const auto g = values(r.p.grad());
      for (size_t j = 0; j < c.size(); ++j) EXPECT_EQ(g[j], c[j]) << "unscaled grad, step " << i;
    }
    scaler.step(r.opt);
    if (plan[i].inf) {
      EXPECT_TRUE(bit_equal(r.p.detach(), before)) << "skipped step " << i << " changed the parameter";
    } else {
      const auto now = values(r.p), was = values(before);
      for (size_t j = 0; j < c.size(); ++j) EXPECT_EQ(now[j], was[j] - 0.25f * c[j]) << "step " << i;
    }
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), plan[i].scale_after) << "step " << i;
    EXPECT_EQ(scaler.growth_tracker(), plan[i].tracker_after) << "step " << i;
  }
}

TEST(GradScaler, GrowthThatOverflowsKeepsTheScale) {
  ScalerRig r;
  const double big = std::ldexp(1.0, 127);  // growth would give 2^128 = inf in f32
  GradScaler scaler({.init_scale = big, .growth_interval = 1});
  r.opt.zero_grad();
  scaler.scale(r.loss({0.0f, 0.0f, 0.0f, 0.0f})).backward();
  scaler.step(r.opt);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), big);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(GradScaler, StepOrsWithAnAlreadyArmedSkipFlag) {
  ScalerRig r;
  GradScaler scaler({.init_scale = 4.0});
  r.opt.zero_grad();
  scaler.scale(r.loss({1.0f, 1.0f, 1.0f, 1.0f})).backward();
  const Tensor before = r.p.detach().clone();
  r.opt.set_skip_flag(full({}, true, {.dtype = kBool}));  // e.g. optim::StepGuard saw a bad loss
  scaler.step(r.opt);
  EXPECT_TRUE(bit_equal(r.p.detach(), before));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 4.0);  // the scaler's own check was clean: no backoff
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(GradScaler, StateRoundTripsThroughTrainerState) {
  ScalerRig r;
  GradScaler a({.init_scale = 32.0, .growth_factor = 4.0, .backoff_factor = 0.25, .growth_interval = 3});
  for (int i = 0; i < 2; ++i) {
    r.opt.zero_grad();
    a.scale(r.loss({1.0f, 2.0f, 3.0f, 4.0f})).backward();
    a.step(r.opt);
    a.update();
  }
  const auto sd = a.state_dict();
  EXPECT_EQ(sd.at("scale"), 32.0);
  EXPECT_EQ(sd.at("growth_tracker"), 2.0);
  EXPECT_EQ(sd.at("growth_factor"), 4.0);
  EXPECT_EQ(sd.at("backoff_factor"), 0.25);
  EXPECT_EQ(sd.at("growth_interval"), 3.0);
  io::TrainerState t;
  t.grad_scaler = sd;
  const io::TrainerState back = io::trainer_state_from_json(io::trainer_state_to_json(t));
  GradScaler b;  // default options: everything comes from the state
  b.load_state_dict(back.grad_scaler);
  EXPECT_EQ(b.state_dict(), sd);
  // Both continue identically: the third clean step grows by 4.
  for (GradScaler* s : {&a, &b}) {
    r.opt.zero_grad();
    s->scale(r.loss({1.0f, 2.0f, 3.0f, 4.0f})).backward();
    s->step(r.opt);
    s->update();
    EXPECT_EQ(s->get_scale(), 128.0);
    EXPECT_EQ(s->growth_tracker(), 0);
  }
}

TEST(GradScaler, DisabledPassesThrough) {
  ScalerRig r;
  GradScaler s({.enabled = false});
  const Tensor loss = r.loss({1.0f, 1.0f, 1.0f, 1.0f});
  EXPECT_TRUE(bit_equal(s.scale(loss), loss));
  loss.backward();
  s.unscale_(r.opt);
  s.step(r.opt);
  s.update();
  EXPECT_EQ(values(r.p)[0], 0.75f);  // 1 - 0.25 * 1: the step ran, grads not rescaled
  EXPECT_TRUE(s.state_dict().empty());
}

TEST(GradScaler, ErrorPaths) {
  expect_error<ValueError>([] { GradScaler s({.init_scale = 0.0}); }, "scale must be finite and > 0, got 0");
  expect_error<ValueError>([] { GradScaler s({.growth_factor = 1.0}); }, "growth_factor must be finite and > 1");
  expect_error<ValueError>([] { GradScaler s({.backoff_factor = 1.0}); }, "backoff_factor must be in (0, 1)");
  expect_error<ValueError>([] { GradScaler s({.growth_interval = 0}); }, "growth_interval must be >= 1, got 0");

  ScalerRig r;
  GradScaler s({.init_scale = 2.0});
  expect_error<ValueError>([&] { s.update(); }, "no inf checks were recorded");
  expect_error<DTypeError>([&] { s.scale(tensor<int64_t>({1})); }, "loss must be floating point, got int64");
  expect_error<ValueError>([&] { s.scale(Tensor()); }, "undefined loss");
  s.scale(r.loss({1.0f, 1.0f, 1.0f, 1.0f})).backward();
  s.unscale_(r.opt);
  expect_error<ValueError>([&] { s.unscale_(r.opt); }, "already called on this optimizer");
  s.step(r.opt);
  expect_error<ValueError>([&] { s.step(r.opt); }, "step: already called");
  expect_error<ValueError>([&] { s.unscale_(r.opt); }, "already called");
  s.update();

  // float16 gradients cannot be unscaled safely (PyTorch refuses them too).
  Tensor h = tensor<float>({1.0f, 2.0f}).to(kFloat16).requires_grad_(true);
  optim::SGD oh(std::vector<Tensor>{h}, {.lr = 0.1});
  s.scale((h * h).sum().to(kFloat32)).backward();
  expect_error<DTypeError>([&] { s.unscale_(oh); }, "is float16; keep the parameters in float32");

  GradScaler l;
  expect_error<ValueError>([&] { l.load_state_dict({}); }, "the state is empty");
  auto sd = l.state_dict();
  sd.erase("growth_tracker");
  expect_error<ValueError>([&] { l.load_state_dict(sd); }, "missing key \"growth_tracker\"");
  sd = l.state_dict();
  sd["scale"] = std::numeric_limits<double>::infinity();
  expect_error<ValueError>([&] { l.load_state_dict(sd); }, "scale must be finite and > 0, got inf");
  sd = l.state_dict();
  sd["growth_tracker"] = 1.5;
  expect_error<ValueError>([&] { l.load_state_dict(sd); }, "\"growth_tracker\" must be an integer >= 0, got 1.5");
  sd = l.state_dict();
  sd["growth_tracker"] = 2000;
  expect_error<ValueError>([&] { l.load_state_dict(sd); }, "growth_tracker (2000) must be below growth_interval (2000)");
  EXPECT_EQ(l.get_scale(), 65536.0);  // a failed load changes nothing
}

// ------------------------------------------------------------------ pinned batches

TEST(PinMemory, DataLoaderOptionIsANoOpWithoutCuda) {
  if (cuda::is_available()) GTEST_SKIP() << "tests/cuda/test_cuda_amp.cpp covers pinned batches on a GPU";
  const Tensor x = random_tensor({10, 3}, 51, kFloat32);
  const Tensor y = tensor<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  data::TensorDataset ds(x, y);
  data::DataLoader plain(ds, {.batch_size = 4, .shuffle = true, .seed = 5});
  data::DataLoader pinned(ds, {.batch_size = 4, .shuffle = true, .num_workers = 1, .seed = 5, .pin_memory = true});
  EXPECT_TRUE(pinned.options().pin_memory);
  std::vector<data::Example> a, b;
  for (auto& e : plain) a.push_back(e);
  for (auto& e : pinned) b.push_back(e);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(bit_equal(a[i].x, b[i].x)) << i;
    EXPECT_TRUE(bit_equal(a[i].y, b[i].y)) << i;
    EXPECT_FALSE(cuda_backend::is_pinned(b[i].x));
  }
  EXPECT_TRUE(bit_equal(cuda_backend::pin_memory(x), x));
  expect_error<ValueError>([] { cuda_backend::pin_memory(Tensor()); }, "pin_memory: got an undefined tensor");
}

}  // namespace
}  // namespace ember::test
