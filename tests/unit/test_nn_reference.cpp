// nn layers and losses against PyTorch: outputs and gradients (w.r.t. the input and every
// parameter, under a fixed upstream gradient) from tests/data/nn_reference.safetensors, written
// by tests/reference/make_nn_reference.py with PyTorch in float64.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "unit/test_util.hpp"

namespace fs = std::filesystem;
using namespace ember;
namespace F = ember::nn::functional;

namespace {

constexpr double kAtol = 1e-10, kRtol = 1e-10;

const io::TensorMap& ref() { return test::reference_file("nn_reference.safetensors"); }

Tensor R(const std::string& name) {
  auto it = ref().find(name);
  EXPECT_NE(it, ref().end()) << "reference file has no tensor \"" << name << "\"";
  if (it == ref().end()) return Tensor();
  return it->second.clone();
}

/// A fresh leaf requiring grad with the reference values.
Tensor leaf(const std::string& name) { return R(name).requires_grad_(true); }

void expect_close(const Tensor& actual, const std::string& ref_name, double atol = kAtol, double rtol = kRtol) {
  test::expect_close_to_reference(ref(), actual, ref_name, atol, rtol);
}

void backward_with(const Tensor& y, const std::string& c) { y.backward(R(c + ".gy")); }

// ------------------------------------------------------------------ layers
TEST(NNReference, Linear) {
  nn::Linear lin(5, 3);
  lin.to(kFloat64);
  {
    NoGradGuard ng;
    lin.weight.copy_(R("linear.weight"));
    lin.bias.copy_(R("linear.bias"));
  }
  Tensor x = leaf("linear.x");
  Tensor y = lin(x);
  expect_close(y, "linear.y");
  backward_with(y, "linear");
  expect_close(x.grad(), "linear.gx");
  expect_close(lin.weight.grad(), "linear.gweight");
  expect_close(lin.bias.grad(), "linear.gbias");
}

TEST(NNReference, LayerNormOverTwoDims) {
  nn::LayerNorm ln({3, 4});
  ln.to(kFloat64);
  {
    NoGradGuard ng;
    ln.weight.copy_(R("layer_norm.weight"));
    ln.bias.copy_(R("layer_norm.bias"));
  }
  Tensor x = leaf("layer_norm.x");
  Tensor y = ln(x);
  expect_close(y, "layer_norm.y");
  backward_with(y, "layer_norm");
  expect_close(x.grad(), "layer_norm.gx");
  expect_close(ln.weight.grad(), "layer_norm.gweight");
  expect_close(ln.bias.grad(), "layer_norm.gbias");
}

TEST(NNReference, LayerNormWithoutAffine) {
  Tensor x = leaf("layer_norm_plain.x");
  Tensor y = F::layer_norm(x, {5}, Tensor(), Tensor(), 1e-3);
  expect_close(y, "layer_norm_plain.y");
  backward_with(y, "layer_norm_plain");
  expect_close(x.grad(), "layer_norm_plain.gx");
}

TEST(NNReference, EmbeddingWithRepeatedIndices) {
  nn::Embedding emb(7, 4);
  emb.to(kFloat64);
  {
    NoGradGuard ng;
    emb.weight.copy_(R("embedding.weight"));
  }
  Tensor y = emb(R("embedding.idx"));
  expect_close(y, "embedding.y");
  backward_with(y, "embedding");
  expect_close(emb.weight.grad(), "embedding.gweight");
}

TEST(NNReference, DropoutInEvalModeIsIdentity) {
  nn::Dropout drop(0.5);
  drop.eval();
  Tensor x = leaf("dropout_eval.x");
  Tensor y = drop(x);
  expect_close(y, "dropout_eval.y", 0, 0);
  backward_with(y, "dropout_eval");
  expect_close(x.grad(), "dropout_eval.gx", 0, 0);
}

void check_activation(nn::UnaryModule& m, const std::string& c) {
  SCOPED_TRACE(c);
  Tensor x = leaf(c + ".x");
  Tensor y = m(x);
  expect_close(y, c + ".y");
  backward_with(y, c);
  expect_close(x.grad(), c + ".gx");
}

TEST(NNReference, Activations) {
  nn::ReLU relu;
  nn::GELU gelu, gelu_tanh("tanh");
  nn::SiLU silu;
  nn::Tanh tanh;
  nn::Sigmoid sigmoid;
  check_activation(relu, "relu");
  check_activation(gelu, "gelu");
  check_activation(gelu_tanh, "gelu_tanh");
  check_activation(silu, "silu");
  check_activation(tanh, "tanh");
  check_activation(sigmoid, "sigmoid");
}

// ------------------------------------------------------------------ losses
void check_loss(const std::string& c, const std::function<Tensor(const Tensor&, const Tensor&)>& fn,
                bool target_grad = false) {
  SCOPED_TRACE(c);
  Tensor x = leaf(c + ".x");
  Tensor target = R(c + ".target");
  if (target_grad) target.requires_grad_(true);
  Tensor y = fn(x, target);
  expect_close(y, c + ".y");
  backward_with(y, c);
  expect_close(x.grad(), c + ".gx");
  if (target_grad) expect_close(target.grad(), c + ".gtarget");
}

using Red = F::Reduction;

TEST(NNReference, CrossEntropyReductions) {
  check_loss("ce_mean", [](auto& x, auto& t) { return F::cross_entropy(x, t); });
  check_loss("ce_sum", [](auto& x, auto& t) { return F::cross_entropy(x, t, {.reduction = Red::sum}); });
  check_loss("ce_none", [](auto& x, auto& t) { return F::cross_entropy(x, t, {.reduction = Red::none}); });
}

TEST(NNReference, CrossEntropyIgnoreIndex) {
  check_loss("ce_ignore", [](auto& x, auto& t) { return F::cross_entropy(x, t, {.ignore_index = 1}); });
  check_loss("ce_ignore_default", [](auto& x, auto& t) { return F::cross_entropy(x, t); });
}

TEST(NNReference, CrossEntropyLabelSmoothing) {
  check_loss("ce_smooth", [](auto& x, auto& t) { return F::cross_entropy(x, t, {.label_smoothing = 0.1}); });
  check_loss("ce_smooth_ignore",
             [](auto& x, auto& t) { return F::cross_entropy(x, t, {.ignore_index = 1, .label_smoothing = 0.1}); });
}

TEST(NNReference, CrossEntropyClassWeights) {
  const Tensor w = R("ce_weight.weight");
  check_loss("ce_weight", [&](auto& x, auto& t) { return F::cross_entropy(x, t, {.weight = w}); });
  check_loss("ce_weight_sum",
             [&](auto& x, auto& t) { return F::cross_entropy(x, t, {.reduction = Red::sum, .weight = w}); });
}

TEST(NNReference, CrossEntropyClassWeightsWithLabelSmoothing) {
  const Tensor w = R("ce_weight.weight");
  check_loss("ce_weight_smooth",
             [&](auto& x, auto& t) { return F::cross_entropy(x, t, {.label_smoothing = 0.1, .weight = w}); });
  check_loss("ce_weight_smooth_none", [&](auto& x, auto& t) {
    return F::cross_entropy(x, t, {.reduction = Red::none, .label_smoothing = 0.1, .weight = w});
  });
}

TEST(NNReference, CrossEntropySpatial) {
  check_loss("ce_3d", [](auto& x, auto& t) { return F::cross_entropy(x, t); });
}

TEST(NNReference, NllLoss) {
  check_loss("nll_mean", [](auto& x, auto& t) { return F::nll_loss(x, t); });
  check_loss("nll_sum", [](auto& x, auto& t) { return F::nll_loss(x, t, {.reduction = Red::sum}); });
  check_loss("nll_none", [](auto& x, auto& t) { return F::nll_loss(x, t, {.reduction = Red::none}); });
  const Tensor w = R("nll_weight.weight");
  check_loss("nll_weight", [&](auto& x, auto& t) { return F::nll_loss(x, t, {.ignore_index = 2, .weight = w}); });
}

TEST(NNReference, MseLoss) {
  check_loss(
      "mse_mean", [](auto& x, auto& t) { return F::mse_loss(x, t); }, true);
  check_loss(
      "mse_sum", [](auto& x, auto& t) { return F::mse_loss(x, t, Red::sum); }, true);
  check_loss(
      "mse_none", [](auto& x, auto& t) { return F::mse_loss(x, t, Red::none); }, true);
}

TEST(NNReference, BinaryCrossEntropyWithLogits) {
  check_loss(
      "bce_mean", [](auto& x, auto& t) { return F::binary_cross_entropy_with_logits(x, t); }, true);
  check_loss(
      "bce_sum", [](auto& x, auto& t) { return F::binary_cross_entropy_with_logits(x, t, Red::sum); }, true);
  check_loss(
      "bce_none", [](auto& x, auto& t) { return F::binary_cross_entropy_with_logits(x, t, Red::none); }, true);
  const Tensor pw = R("bce_pos_weight.pos_weight");
  check_loss(
      "bce_pos_weight", [&](auto& x, auto& t) { return F::binary_cross_entropy_with_logits(x, t, Red::mean, pw); },
      true);
}

// The comparison itself must be able to fail (NaN and a perturbed value are rejected).
TEST(NNReference, ComparisonRejectsNaNAndPerturbation) {
  Tensor y = R("linear.y");
  auto flat = y.to_vector<double>();
  flat[0] = std::nan("");
  EXPECT_NONFATAL_FAILURE(expect_close(tensor(flat, y.shape()), "linear.y"), "linear.y[0]");
  flat[0] = y.to_vector<double>()[0] * (1 + 1e-8);
  EXPECT_NONFATAL_FAILURE(expect_close(tensor(flat, y.shape()), "linear.y"), "linear.y[0]");
}

}  // namespace
