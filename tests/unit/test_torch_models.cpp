// The Fashion-MNIST models against PyTorch, in both directions.
//
// PyTorch → Ember: tests/data/fmnist_models_reference.safetensors (written by
// tests/reference/make_torch_models_reference.py) holds torch's state dicts of the MLP and the
// CNN (BatchNorm running stats after two training-mode forwards), a fixed input batch and
// torch's eval-mode logits. The test loads each state dict strictly into Ember's model from
// examples/fashion_mnist/models.hpp and compares the eval outputs.
//
// Ember → PyTorch: tests/data/ember_{mlp,cnn}_state.safetensors hold Ember's state_dict() of a
// freshly initialised model plus "input" and Ember's eval logits "output". They are rewritten
// by this test when EMBER_REGENERATE_TEST_DATA=1; `make_torch_models_reference.py --check`
// loads them into torch with load_state_dict(strict=True) and compares torch's outputs. Without
// the variable the test checks that the committed files still load strictly into Ember and
// reproduce their stored outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "../../examples/fashion_mnist/models.hpp"
#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace ember;

namespace {

constexpr double kAtol = 1e-5, kRtol = 1e-5;

fs::path data_path(const std::string& file) {
  fs::path p = fs::path(__FILE__).parent_path().parent_path() / "data" / file;
  if (!fs::exists(p.parent_path())) p = fs::path("data") / file;  // ctest runs in tests/
  return p;
}

const io::TensorMap& ref() {
  static const io::TensorMap m =
      io::load_safetensors(data_path("fmnist_models_reference.safetensors").string(), nullptr, {.mmap = false});
  return m;
}

Tensor R(const std::string& name) {
  auto it = ref().find(name);
  EXPECT_NE(it, ref().end()) << "reference file has no tensor \"" << name << "\"";
  if (it == ref().end()) return Tensor();
  return it->second.clone();
}

// Fails on a shape or dtype mismatch, NaN, or |a − e| > atol + rtol·|e|.
void expect_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  ASSERT_EQ(actual.dtype(), expected.dtype()) << what;
  const auto a = actual.to(kFloat64).to_vector<double>();
  const auto e = expected.to(kFloat64).to_vector<double>();
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(a[i] - e[i]);
    if (!(diff <= kAtol + kRtol * std::abs(e[i])) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << a[i] << ", expected " << e[i] << " (diff " << diff << ")";
  }
}

/// torch's state dict of model `m` from the reference file: "<m>.state.<key>" verbatim, and
/// "<m>.u.<key>" / "<m>.v.<key>" rebuilt as the float32 rounding of u·vᵀ computed in float64
/// (the script sets those large weights to exactly that value).
nn::StateDict torch_state(const std::string& m) {
  nn::StateDict dict;
  const std::string state = m + ".state.", u = m + ".u.";
  for (const auto& [name, t] : ref()) {
    if (name.rfind(state, 0) == 0) {
      dict[name.substr(state.size())] = t.clone();
    } else if (name.rfind(u, 0) == 0) {
      const std::string key = name.substr(u.size());
      Tensor v = R(m + ".v." + key);
      dict[key] = matmul(t.to(kFloat64), v.to(kFloat64).t()).to(kFloat32);
    }
  }
  return dict;
}

void check_torch_to_ember(const std::string& m, nn::Sequential& model, size_t expected_keys) {
  nn::StateDict dict = torch_state(m);
  EXPECT_EQ(dict.size(), expected_keys);
  ASSERT_NO_THROW(model.load_state_dict(dict, /*strict=*/true));
  // Every value arrived (not merely the key names).
  for (const auto& [key, t] : model.state_dict()) {
    ASSERT_TRUE(dict.count(key)) << key;
    expect_close(t, dict.at(key), m + " state " + key);
  }
  model.eval();
  NoGradGuard ng;
  expect_close(model.forward(R("input")), R(m + ".out"), m + " eval logits");
}

// Ember's state of a freshly initialised model plus its eval output on the reference input;
// written when EMBER_REGENERATE_TEST_DATA is set, otherwise checked against the committed file.
void ember_to_torch(const std::string& m, std::shared_ptr<nn::Sequential> (*make)()) {
  const fs::path path = data_path("ember_" + m + "_state.safetensors");
  Tensor x = R("input");
  if (std::getenv("EMBER_REGENERATE_TEST_DATA")) {
    manual_seed(m == "mlp" ? 11 : 12);
    auto model = make();
    model->eval();
    io::TensorMap out;
    {
      NoGradGuard ng;
      out["output"] = model->forward(x);
    }
    out["input"] = x;
    for (const auto& [key, t] : model->state_dict()) out[key] = t;
    io::save_safetensors(path.string(), out);
  }
  io::TensorMap file = io::load_safetensors(path.string(), nullptr, {.mmap = false});
  ASSERT_TRUE(file.count("input") && file.count("output")) << path;
  Tensor stored_out = file.at("output");
  expect_close(file.at("input"), x, m + " stored input");
  file.erase("input");
  file.erase("output");
  auto model = make();
  ASSERT_NO_THROW(model->load_state_dict(file, /*strict=*/true));
  model->eval();
  NoGradGuard ng;
  expect_close(model->forward(x), stored_out, m + " output from the stored Ember state");
}

}  // namespace

TEST(TorchModels, ReferenceFileHasTorchBatchNormBuffers) {
  // num_batches_tracked is a 0-d int64 in torch's state dict, counting the two training forwards.
  for (const char* key : {"cnn.state.1.num_batches_tracked", "cnn.state.5.num_batches_tracked"}) {
    Tensor n = R(key);
    ASSERT_TRUE(n.defined()) << key;
    EXPECT_EQ(n.dtype(), kInt64) << key;
    EXPECT_EQ(n.dim(), 0) << key;
    EXPECT_EQ(n.item<int64_t>(), 2) << key;
  }
  // Running stats moved away from their initial (0, 1), so eval mode exercises them.
  const auto rm = R("cnn.state.1.running_mean").to_vector<float>();
  const auto rv = R("cnn.state.5.running_var").to_vector<float>();
  double dm = 0, dv = 0;
  for (float v : rm) dm += std::abs(v);
  for (float v : rv) dv += std::abs(v - 1.0f);
  EXPECT_GT(dm, 1e-2);
  EXPECT_GT(dv, 1e-2);
}

TEST(TorchModels, MlpLoadsTorchStateAndMatchesTorchEvalOutput) {
  auto model = fashion_mnist::make_mlp();
  check_torch_to_ember("mlp", *model, 6);
}

TEST(TorchModels, CnnLoadsTorchStateAndMatchesTorchEvalOutput) {
  auto model = fashion_mnist::make_cnn();
  check_torch_to_ember("cnn", *model, 18);
  EXPECT_EQ(model->state_dict().at("5.num_batches_tracked").item<int64_t>(), 2);
}

TEST(TorchModels, TorchStateWithAMissingKeyIsRejectedStrictly) {
  auto model = fashion_mnist::make_cnn();
  nn::StateDict dict = torch_state("cnn");
  dict.erase("1.running_var");
  EXPECT_THROW(model->load_state_dict(dict, /*strict=*/true), ValueError);
}

TEST(TorchModels, EmberMlpStateFile) { ember_to_torch("mlp", &fashion_mnist::make_mlp); }

TEST(TorchModels, EmberCnnStateFile) { ember_to_torch("cnn", &fashion_mnist::make_cnn); }
