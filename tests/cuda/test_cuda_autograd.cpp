// Public ops on CUDA tensors against the same ops on the CPU, forward and gradients (the
// backward formulas are written with ops, so they run on the GPU too), and a small MLP trained
// on the GPU step by step beside the same MLP on the CPU. All skip without a CUDA device.
#include <gtest/gtest.h>

#include <memory>

#include "cuda_diff.hpp"

using namespace ember;
using namespace ember::cuda_test;
using Inputs = std::vector<Tensor>;

TEST(CudaAutograd, ElementwiseForwardAndGradients) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 1;
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = tol_for(dt);
    Tensor a = random_tensor({17, 9}, dt, seed++), b = random_tensor({9}, dt, seed++);
    Tensor pos = random_tensor({9, 17}, dt, seed++, 0.5, 2.0).t();  // a transposed view
    expect_same_on_cuda([](const Inputs& v) { return v[0] * v[1] + v[0] - v[1] / 3.0; }, {a, b}, tol);
    expect_same_on_cuda([](const Inputs& v) { return v[0] / v[1]; }, {a, pos}, tol);
    expect_same_on_cuda([](const Inputs& v) { return maximum(v[0], v[1]); }, {a, b}, tol);  // where in backward
    expect_same_on_cuda([](const Inputs& v) { return where(gt(v[0], 0.5), v[0], v[1]); }, {a, b}, tol);
    expect_same_on_cuda([](const Inputs& v) { return pow(v[1], v[0]); }, {a, pos}, {tol.atol * 4, tol.rtol * 4},
                        /*with_grad=*/false);
    expect_same_on_cuda([](const Inputs& v) { return v[0].to(kFloat32) * 2.0; }, {a}, tol_for(kFloat32));
    expect_same_on_cuda([](const Inputs& v) { return relu(v[0]) + gelu(v[0]) + tanh(v[0]) + sigmoid(v[0]); }, {a}, tol);
    expect_same_on_cuda([](const Inputs& v) { return exp(v[0]) + log(v[1]) + sqrt(v[1]); }, {a, pos}, tol);
    expect_same_on_cuda([](const Inputs& v) { return pow(v[1], 1.5) - v[0].pow(2); }, {a, pos}, tol);
  }
}

TEST(CudaAutograd, ReductionsSoftmaxAndMatmul) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 100;
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = tol_for(dt);
    Tensor x = random_tensor({13, 29}, dt, seed++);
    expect_same_on_cuda([](const Inputs& v) { return v[0].sum({1}); }, {x}, {tol.atol * 6, tol.rtol});
    expect_same_on_cuda([](const Inputs& v) { return v[0].mean({0}, true); }, {x}, tol);
    expect_same_on_cuda([](const Inputs& v) { return amax(v[0], {1}); }, {x}, tol);
    expect_same_on_cuda([](const Inputs& v) { return softmax(v[0], 1); }, {x}, tol);
    expect_same_on_cuda([](const Inputs& v) { return log_softmax(v[0], 0); }, {x}, tol);  // inner > 1
    Tensor a = random_tensor({11, 7}, dt, seed++), b = random_tensor({7, 5}, dt, seed++);
    const Tol mm_tol{tol.atol * 7, tol.rtol * 3};
    expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {a, b}, mm_tol);
    expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {random_tensor({3, 11, 7}, dt, seed++), b},
                        mm_tol);
    Tensor w = random_tensor({5, 7}, dt, seed++), bias = random_tensor({5}, dt, seed++);
    expect_same_on_cuda([](const Inputs& v) { return linear(v[0], v[1], v[2]); }, {a, w, bias},
                        {tol.atol * 11, tol.rtol * 3});
  }
}

TEST(CudaAutograd, MatmulAndLinearOnOffsetAndOddStrideViews) {
  // Operands cuBLASLt sees as they are (no copy): a one-element storage offset (2-byte alignment
  // for 16-bit dtypes), odd leading dimensions, a transposed slice, an odd batch stride and a
  // broadcast batch. The heuristic is told each pointer's real alignment; a view no kernel takes
  // is copied per matrix.
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 500;
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = tol_for(dt);
    const Tol mm_tol{tol.atol * 9, tol.rtol * 3};
    const Tensor a = random_tensor({13, 10}, dt, seed++).narrow(1, 1, 7);        // offset 1, ld 10
    const Tensor a_odd = random_tensor({13, 9}, dt, seed++).narrow(1, 1, 7);     // offset 1, ld 9
    const Tensor b = random_tensor({8, 5}, dt, seed++).narrow(0, 1, 7);          // offset 5, ld 5
    const Tensor bt = random_tensor({6, 9}, dt, seed++).narrow(1, 1, 7).t();     // column-major, offset 1
    const Tensor batch = random_tensor({3 * 7 * 5 + 1}, dt, seed++).narrow(0, 1, 105).view({3, 7, 5});
    const Tensor lhs = random_tensor({3, 4, 8}, dt, seed++).narrow(2, 1, 7);      // batch stride 32, offset 1
    ASSERT_EQ(a.storage_offset(), 1);
    ASSERT_FALSE(bt.is_contiguous());
    for (const Tensor& x : {a, a_odd}) {
      expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {x, b}, mm_tol);
      expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {x, bt}, mm_tol);
    }
    expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {lhs, batch}, mm_tol);
    expect_same_on_cuda([](const Inputs& v) { return matmul(v[0], v[1]); }, {lhs, b}, mm_tol);  // broadcast
    // linear: the weight (5, 7) is a slice with an offset; the bias a slice too.
    const Tensor w = random_tensor({5, 9}, dt, seed++).narrow(1, 2, 7);
    const Tensor bias = random_tensor({6}, dt, seed++).narrow(0, 1, 5);
    expect_same_on_cuda([](const Inputs& v) { return linear(v[0], v[1], v[2]); }, {a_odd, w, bias},
                        {tol.atol * 11, tol.rtol * 3});
  }
}

TEST(CudaAutograd, CrossEntropyMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 300;
  for (DType dt : {kFloat32, kFloat64, kFloat16}) {
    for (int64_t c : {int64_t{1}, int64_t{10}, int64_t{1001}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " classes " + std::to_string(c));
      const int64_t m = 37;
      Tensor x = random_tensor({m, c}, dt, seed++, -4.0, 4.0);
      std::vector<int64_t> t(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) t[i] = (i * 7) % c;
      t[3] = -100;  // ignored row
      Tensor target = tensor<int64_t>(t, {m});
      Tensor weight = random_tensor({c}, dt, seed++, 0.5, 2.0);
      const Tol tol = tol_for(dt);
      for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
        for (double eps : {0.0, 0.1}) {
          expect_same_on_cuda([&](const Inputs& v) { return cross_entropy_2d(v[0], v[1], Tensor(), -100, eps, r); },
                              {x, target}, {tol.atol * 10, tol.rtol * 10});
          expect_same_on_cuda([&](const Inputs& v) { return cross_entropy_2d(v[0], v[1], v[2], -100, eps, r); },
                              {x, target, weight}, {tol.atol * 10, tol.rtol * 10});
        }
      }
    }
  }
  // An out-of-range target: NaN on the device (the CPU raises IndexError; checking on the host
  // would wait for the GPU).
  Tensor bad = tensor<int64_t>({0, 5}, {2}).cuda();
  Tensor logits = zeros({2, 3}, {.device = Device::cuda(0)});
  EXPECT_TRUE(std::isnan(cross_entropy_2d(logits, bad, Tensor(), -100, 0.0, LossReduction::mean).item<float>()));
  EXPECT_THROW(cross_entropy_2d(logits, tensor<int64_t>({0, 1}, {2}), Tensor(), -100, 0.0, LossReduction::mean),
               DeviceError);
}

TEST(CudaAutograd, MixedDevicesAreErrors) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor g = ones({4}, {.device = Device::cuda(0)});
  Tensor h = ones({4});
  EXPECT_THROW(g + h, DeviceError);
  EXPECT_THROW(matmul(ones({2, 2}, {.device = Device::cuda(0)}), ones({2, 2})), DeviceError);
  EXPECT_THROW(where(gt(h, 0), g, g), DeviceError);
  EXPECT_EQ(g.clamp(0, 0.5).cpu().to_vector<float>(), (std::vector<float>{0.5, 0.5, 0.5, 0.5}));
  EXPECT_EQ(where(gt(g, 0), g * 2.0, 0.0).cpu().to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  // A 0-d CPU tensor beside a CUDA tensor is a wrapped scalar.
  EXPECT_EQ((g * scalar_tensor(3.0)).cpu().to_vector<float>(), (std::vector<float>{3, 3, 3, 3}));
}

namespace {

struct Mlp {
  Tensor w1, b1, w2, b2;
  std::vector<Tensor*> params() { return {&w1, &b1, &w2, &b2}; }
};

Mlp make_mlp(int64_t in, int64_t hidden, int64_t classes) {
  Mlp m;
  m.w1 = random_tensor({hidden, in}, kFloat32, 11, -0.3, 0.3);
  m.b1 = random_tensor({hidden}, kFloat32, 12, -0.1, 0.1);
  m.w2 = random_tensor({classes, hidden}, kFloat32, 13, -0.3, 0.3);
  m.b2 = random_tensor({classes}, kFloat32, 14, -0.1, 0.1);
  return m;
}

Mlp to_device(const Mlp& m, Device d) {
  Mlp r{m.w1.to(d), m.b1.to(d), m.w2.to(d), m.b2.to(d)};
  for (Tensor* p : r.params()) p->requires_grad_(true);
  return r;
}

// One SGD step on a batch; returns the loss.
float sgd_step(Mlp& m, const Tensor& x, const Tensor& one_hot, double lr) {
  Tensor h = relu(linear(x, m.w1, m.b1));
  Tensor logits = linear(h, m.w2, m.b2);
  // Cross entropy written with ops (log_softmax, mul, sum); the fused one is compared separately.
  Tensor loss = (log_softmax(logits, 1) * one_hot).sum() * (-1.0 / static_cast<double>(x.size(0)));
  loss.backward();
  {
    NoGradGuard ng;
    for (Tensor* p : m.params()) {
      p->sub_(p->grad() * lr);
      p->grad().zero_();
    }
  }
  return loss.item<float>();
}

}  // namespace

TEST(CudaTraining, SmallMlpTrainsLikeOnCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  constexpr int64_t kN = 64, kIn = 20, kHidden = 32, kClasses = 5;
  // A learnable problem: the class is the argmax of a fixed linear map of x.
  Tensor x = random_tensor({kN, kIn}, kFloat32, 7);
  Tensor proj = random_tensor({kIn, kClasses}, kFloat32, 8);
  std::vector<float> scores = matmul(x, proj).to_vector<float>();
  std::vector<float> oh(static_cast<size_t>(kN * kClasses), 0.f);
  for (int64_t i = 0; i < kN; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < kClasses; ++c)
      if (scores[i * kClasses + c] > scores[i * kClasses + best]) best = c;
    oh[i * kClasses + best] = 1.f;
  }
  Tensor one_hot = tensor<float>(oh, {kN, kClasses});

  const Mlp init = make_mlp(kIn, kHidden, kClasses);
  Mlp cpu_m = to_device(init, Device::cpu()), gpu_m = to_device(init, Device::cuda(0));
  const Tensor gx = x.cuda(), goh = one_hot.cuda();
  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    const float lc = sgd_step(cpu_m, x, one_hot, 0.5);
    const float lg = sgd_step(gpu_m, gx, goh, 0.5);
    ASSERT_TRUE(std::isfinite(lg)) << "step " << step;
    EXPECT_NEAR(lg, lc, 1e-3 + 1e-3 * std::abs(lc)) << "step " << step;
    if (step == 0) first = lg;
    last = lg;
  }
  EXPECT_LT(last, 0.5f * first) << "the GPU MLP did not learn";
  EXPECT_TRUE(close_to(gpu_m.w1, cpu_m.w1, {1e-3, 1e-3}));
}

TEST(CudaTraining, AdamAndSgdUpdatesMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : {kFloat32, kFloat64}) {
    for (int variant = 0; variant < 4; ++variant) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " variant " + std::to_string(variant));
      Tensor init = random_tensor({1000, 3}, dt, 40 + variant);
      Tensor pc = init.clone().requires_grad_(true);
      Tensor pg = init.cuda().requires_grad_(true);
      std::unique_ptr<optim::Optimizer> oc, og;
      switch (variant) {
        case 0:
          oc = std::make_unique<optim::Adam>(std::vector<Tensor>{pc},
                                             optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
          og = std::make_unique<optim::Adam>(std::vector<Tensor>{pg},
                                             optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
          break;
        case 1:
          oc = std::make_unique<optim::AdamW>(std::vector<Tensor>{pc}, optim::AdamWOptions{.lr = 0.01});
          og = std::make_unique<optim::AdamW>(std::vector<Tensor>{pg}, optim::AdamWOptions{.lr = 0.01});
          break;
        case 2:
          oc = std::make_unique<optim::SGD>(std::vector<Tensor>{pc}, optim::SGDOptions{.lr = 0.1});
          og = std::make_unique<optim::SGD>(std::vector<Tensor>{pg}, optim::SGDOptions{.lr = 0.1});
          break;
        default:
          oc = std::make_unique<optim::SGD>(
              std::vector<Tensor>{pc},
              optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
          og = std::make_unique<optim::SGD>(
              std::vector<Tensor>{pg},
              optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
      }
      for (int step = 0; step < 5; ++step) {
        oc->zero_grad();
        og->zero_grad();
        (pc * pc).sum().backward();
        (pg * pg).sum().backward();
        oc->step();
        og->step();
      }
      EXPECT_TRUE(close_to(pg.detach(), pc.detach(), dt == kFloat32 ? Tol{1e-5, 1e-4} : Tol{1e-12, 1e-10}));
    }
  }
}
