// conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d and batch_norm against PyTorch: outputs and
// gradients (w.r.t. input, weight and bias, under a fixed upstream gradient) from
// tests/data/conv_reference.safetensors, written in float64 by
// tests/reference/make_torch_models_reference.py. The case parameters below repeat the
// script's CONV_CASES / MAX_POOL_CASES / AVG_POOL_CASES / ADAPTIVE_CASES.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "unit/test_util.hpp"
#include "ember/ops/conv.hpp"

namespace fs = std::filesystem;
using namespace ember;

namespace {

constexpr double kAtol = 1e-10, kRtol = 1e-10;

const io::TensorMap& ref() { return test::reference_file("conv_reference.safetensors"); }

bool has(const std::string& name) { return ref().count(name) != 0; }

Tensor R(const std::string& name) {
  auto it = ref().find(name);
  EXPECT_NE(it, ref().end()) << "reference file has no tensor \"" << name << "\"";
  if (it == ref().end()) return Tensor();
  return it->second.clone();
}

Tensor leaf(const std::string& name) { return R(name).requires_grad_(true); }

void expect_close(const Tensor& actual, const std::string& ref_name) {
  test::expect_close_to_reference(ref(), actual, ref_name, kAtol, kRtol);
}

/// y against "<c>.y", then backward with "<c>.gy" and x's gradient against "<c>.gx".
void check_unary(const std::string& c, const Tensor& x, const Tensor& y) {
  expect_close(y, c + ".y");
  y.backward(R(c + ".gy"));
  expect_close(x.grad(), c + ".gx");
}

struct ConvCase {
  const char* name;
  IntPair stride, padding, dilation;
  int64_t groups;
};

struct MaxPoolCase {
  const char* name;
  IntPair kernel;
  std::optional<IntPair> stride;
  IntPair padding, dilation;
  bool ceil_mode;
};

struct AvgPoolCase {
  const char* name;
  IntPair kernel;
  std::optional<IntPair> stride;
  IntPair padding;
  bool ceil_mode, count_include_pad;
};

}  // namespace

TEST(ConvReference, Conv2d) {
  const ConvCase cases[] = {
      {"conv_basic", 1, 0, 1, 1},      {"conv_stride2", 2, 0, 1, 1},
      {"conv_pad1", 1, 1, 1, 1},       {"conv_dilation2", 1, 0, 2, 1},
      {"conv_groups2", 1, 1, 1, 2},    {"conv_mixed", {2, 1}, {1, 2}, {2, 1}, 2},
      {"conv_1x1", 1, 0, 1, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string n = c.name;
    Tensor x = leaf(n + ".x"), w = leaf(n + ".weight");
    Tensor b = has(n + ".bias") ? leaf(n + ".bias") : Tensor();
    Tensor y = conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    expect_close(y, n + ".y");
    y.backward(R(n + ".gy"));
    expect_close(x.grad(), n + ".gx");
    expect_close(w.grad(), n + ".gweight");
    if (b.defined()) expect_close(b.grad(), n + ".gbias");
  }
  EXPECT_FALSE(has("conv_mixed.bias"));  // the no-bias path is covered
}

TEST(ConvReference, MaxPool2d) {
  const MaxPoolCase cases[] = {
      {"max_pool_2", 2, std::nullopt, 0, 1, false},
      {"max_pool_3s2p1", 3, IntPair(2), 1, 1, false},
      {"max_pool_dil_ceil", {3, 2}, IntPair(2, 2), {1, 1}, {2, 1}, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = leaf(std::string(c.name) + ".x");
    check_unary(c.name, x, max_pool2d(x, c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode));
  }
}

TEST(ConvReference, AvgPool2d) {
  const AvgPoolCase cases[] = {
      {"avg_pool_2", 2, std::nullopt, 0, false, true},
      {"avg_pool_pad_incl", 3, IntPair(2), 1, false, true},
      {"avg_pool_pad_excl", 3, IntPair(2), 1, false, false},
      {"avg_pool_ceil_excl", {3, 2}, IntPair(2), {1, 1}, true, false},
      {"avg_pool_ceil_incl", {3, 2}, IntPair(2), {1, 1}, true, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = leaf(std::string(c.name) + ".x");
    check_unary(c.name, x, avg_pool2d(x, c.kernel, c.stride, c.padding, c.ceil_mode, c.count_include_pad));
  }
}

TEST(ConvReference, AdaptiveAvgPool2d) {
  const std::pair<const char*, IntPair> cases[] = {
      {"adaptive_3x4", {3, 4}}, {"adaptive_1x1", {1, 1}}, {"adaptive_up", {5, 6}}};
  for (const auto& [name, osz] : cases) {
    SCOPED_TRACE(name);
    Tensor x = leaf(std::string(name) + ".x");
    check_unary(name, x, adaptive_avg_pool2d(x, osz));
  }
}

TEST(ConvReference, BatchNorm) {
  struct BnCase {
    const char* name;
    bool training;
    double momentum, eps;
  };
  const BnCase cases[] = {{"bn_train", true, 0.1, 1e-5}, {"bn_train_2d", true, 0.3, 1e-3}, {"bn_eval", false, 0.1, 1e-5}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string n = c.name;
    Tensor x = leaf(n + ".x"), w = leaf(n + ".weight"), b = leaf(n + ".bias");
    Tensor rm = R(n + ".running_mean"), rv = R(n + ".running_var");
    Tensor y = batch_norm(x, rm, rv, w, b, c.training, c.momentum, c.eps);
    expect_close(y, n + ".y");
    y.backward(R(n + ".gy"));
    expect_close(x.grad(), n + ".gx");
    expect_close(w.grad(), n + ".gweight");
    expect_close(b.grad(), n + ".gbias");
    if (c.training) {
      expect_close(rm, n + ".new_running_mean");
      expect_close(rv, n + ".new_running_var");
    } else {  // eval leaves the running stats alone
      expect_close(rm, n + ".running_mean");
      expect_close(rv, n + ".running_var");
    }
  }
}
