// Helpers shared by test_checkpoint.cpp and test_disk_faults.cpp: a per-test scratch directory,
// deterministic model/optimizer/trainer states, bitwise comparisons and error expectations.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ember/ember.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::test {

namespace fs = std::filesystem;

/// A TempDirTest under the prefix ember_ckpt_.
class ScratchDir : public TempDirTest {
 protected:
  ScratchDir() : TempDirTest("ember_ckpt_") {}
};

/// A model state of several dtypes; `seed` changes every value.
inline io::TensorMap make_model(uint32_t seed, int64_t hidden = 16) {
  io::TensorMap m;
  m["fc1.weight"] = random_tensor({hidden, 12}, seed, kFloat32);
  m["fc1.bias"] = random_tensor({hidden}, seed + 1, kFloat32);
  m["fc2.weight"] = random_tensor({3, hidden}, seed + 2, kFloat64);
  m["bn.num_batches_tracked"] = tensor<int64_t>({int64_t{seed} * 1000 + 7}).view({});
  m["emb.weight"] = random_tensor({4, 2}, seed + 3, kBFloat16);
  return m;
}

/// An optimizer state (Adam-like names).
inline io::TensorMap make_optimizer(uint32_t seed) {
  io::TensorMap m;
  m["state.0.exp_avg"] = random_tensor({16, 12}, seed + 10, kFloat32);
  m["state.0.exp_avg_sq"] = random_tensor({16, 12}, seed + 11, kFloat32, 0.01).abs();
  m["state.0.step"] = tensor<int64_t>({int64_t{seed} + 40}).view({});
  m["param_groups.0.lr"] = tensor<double>({1e-3 * seed}).view({});
  return m;
}

/// A trainer state exercising every field, with awkward doubles and integer extremes.
inline io::TrainerState make_trainer(int64_t step) {
  io::TrainerState s;
  s.step = step;
  s.epoch = step / 100;
  s.loader = {s.epoch, step % 100};
  s.generators["default"] = {67280421310721ull, 12345};
  s.generators["dropout"] = {std::numeric_limits<uint64_t>::max(), (uint64_t{1} << 63) + 5};
  s.scheduler = {{"last_epoch", 3.0}, {"base_lr", 0.1}, {"gamma", 1.0 / 3.0}};
  s.grad_scaler = {{"scale", 65536.0}};
  s.counters = {{"skipped_steps", 2},
                {"consecutive_skips", 0},
                {"big", std::numeric_limits<int64_t>::max()},
                {"small", std::numeric_limits<int64_t>::min()}};
  s.values = {{"tenth", 0.1},
              {"third", 1.0 / 3.0},
              {"denormal", std::numeric_limits<double>::denorm_min()},
              {"denormal2", 2.2250738585072009e-308},
              {"huge", 1e308},
              {"max", std::numeric_limits<double>::max()},
              {"neg_zero", -0.0},
              {"nan", std::numeric_limits<double>::quiet_NaN()},
              {"inf", std::numeric_limits<double>::infinity()},
              {"ninf", -std::numeric_limits<double>::infinity()},
              {"loss_sum", 1234.5678901234567}};
  s.config = {{"model", "mlp"}, {"lr", "0.001"}, {"quote", "a \"b\" \\ c\n"}, {"utf8", "\xC3\xA9t\xC3\xA9"}};
  return s;
}

/// Maps equal key by key: dtype, shape and every byte.
inline void expect_bitwise_equal(const io::TensorMap& a, const io::TensorMap& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << what << ": missing " << name;
    const Tensor x = t.contiguous();
    const Tensor y = it->second.contiguous();
    ASSERT_EQ(x.dtype(), y.dtype()) << what << ": " << name;
    ASSERT_EQ(x.shape(), y.shape()) << what << ": " << name;
    ASSERT_EQ(x.nbytes(), y.nbytes()) << what << ": " << name;
    if (x.nbytes() > 0)
      EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<size_t>(x.nbytes())), 0) << what << ": " << name;
  }
}

/// Doubles compared by bit pattern (NaN equals NaN of the same bits; -0.0 differs from 0.0).
inline void expect_same_doubles(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
                                const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    ASSERT_NE(it, b.end()) << what << ": missing " << k;
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(it->second)) << what << "." << k;
    } else {
      EXPECT_EQ(std::bit_cast<uint64_t>(v), std::bit_cast<uint64_t>(it->second))
          << what << "." << k << ": " << v << " read back as " << it->second;
    }
  }
}

/// TrainerState equality with bitwise doubles (operator== treats NaN as unequal).
inline void expect_same_trainer(const io::TrainerState& a, const io::TrainerState& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.loader, b.loader);
  EXPECT_EQ(a.generators, b.generators);
  expect_same_doubles(a.scheduler, b.scheduler, "scheduler");
  expect_same_doubles(a.grad_scaler, b.grad_scaler, "grad_scaler");
  expect_same_doubles(a.values, b.values, "values");
  EXPECT_EQ(a.counters, b.counters);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.ember_version, b.ember_version);
}

/// Expects fn to throw an IOError whose message contains every needle.
template <class F>
void expect_io_error(F fn, const std::vector<std::string>& needles) {
  expect_error<IOError>(std::move(fn), needles);
}

/// The whole content of a file.
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ember::test
