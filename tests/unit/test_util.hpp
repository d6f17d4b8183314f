// Helpers shared by the unit tests: deterministic random tensors (independent of Ember's own
// random ops), multi-index iteration for naive reference loops, and common expectations.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ember/autograd/gradcheck.hpp>
#include <ember/ember.hpp>
#include <filesystem>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ember::test {

/// The largest |a[i] - b[i]|; infinity when the sizes differ or any difference is NaN.
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}

/// Deterministic values in [-scale, scale) from std::mt19937.
inline Tensor random_tensor(const Shape& shape, uint32_t seed, DType dtype = kFloat64, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> v(static_cast<size_t>(numel_of(shape)));
  for (double& x : v) x = u(rng);
  return tensor<double>(v, shape).to(dtype);
}

/// n examples whose every batch says which examples it holds: x[i] = (i, i + 0.5) as float32,
/// y[i] = i as int64.
inline data::TensorDataset indexed_dataset(int64_t n) {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < n; ++i) {
    xs.push_back(static_cast<float>(i));
    xs.push_back(static_cast<float>(i) + 0.5f);
    ys.push_back(i);
  }
  return data::TensorDataset(tensor(xs, {n, 2}), tensor(ys));
}

/// A committed reference file under tests/data/ (written by a script in tests/reference/), loaded
/// once per process. Works from the source tree and from ctest's working directory (tests/).
inline const io::TensorMap& reference_file(const std::string& name) {
  static std::map<std::string, io::TensorMap> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  namespace fs = std::filesystem;
  fs::path p = fs::path(__FILE__).parent_path().parent_path() / "data" / name;
  if (!fs::exists(p)) p = fs::path("data") / name;
  return cache.emplace(name, io::load_safetensors(p.string(), nullptr, {.mmap = false})).first->second;
}

/// Expects `actual` to equal the f64 reference `ref_name` of `ref`: same shape, no NaN, and
/// |a − r| <= atol + rtol·|r| elementwise (the first five mismatches are reported).
inline void expect_close_to_reference(const io::TensorMap& ref, const Tensor& actual, const std::string& ref_name,
                                      double atol, double rtol) {
  auto it = ref.find(ref_name);
  ASSERT_NE(it, ref.end()) << "reference file has no tensor \"" << ref_name << "\"";
  const Tensor& r = it->second;
  ASSERT_TRUE(actual.defined()) << ref_name << ": tensor is undefined";
  ASSERT_EQ(actual.shape(), r.shape()) << ref_name;
  EXPECT_EQ(actual.dtype(), kFloat64) << ref_name;
  const auto a = actual.to(kFloat64).to_vector<double>();
  const auto e = r.to_vector<double>();
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(a[i] - e[i]);
    if (!(diff <= atol + rtol * std::abs(e[i])) && bad++ < 5)
      ADD_FAILURE() << ref_name << "[" << i << "]: got " << a[i] << ", PyTorch " << e[i] << " (diff " << diff << ")";
  }
}

/// Row-major flat index of a multi-index.
inline int64_t flat_index(const Shape& shape, const Shape& idx) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

/// Calls fn(idx) for every multi-index of shape in row-major order.
template <class F>
void for_each_index(const Shape& shape, F fn) {
  const int64_t n = numel_of(shape);
  Shape idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    fn(idx);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/// Expects fn to throw an ember::Error whose message contains needle.
template <class F>
void expect_throw_containing(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

/// Expects fn to throw an E (any other exception fails) whose message contains every needle.
template <class E, class F>
void expect_error(F fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << (needles.empty() ? "" : needles[0]) << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

/// expect_error with one needle.
template <class E, class F>
void expect_error(F fn, const std::string& needle) {
  expect_error<E>(std::move(fn), std::vector<std::string>{needle});
}

/// Entry names of a directory, sorted.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// A fresh directory for the running test (temp dir / prefix + pid + suite_test), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterised names contain '/'
    dir_ = std::filesystem::temp_directory_path() / (prefix_ + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// A path inside the directory (not created).
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  /// Entry names of the directory, sorted; of `dir` with an argument.
  std::vector<std::string> listing() const { return list_dir(dir_.string()); }
  static std::vector<std::string> listing(const std::string& dir) { return list_dir(dir); }

  std::string prefix_;
  std::filesystem::path dir_;
};

/// Marks the floating inputs as requiring grad and expects autograd::gradcheck to pass.
inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs) {
  for (Tensor& t : inputs)
    if (is_floating(t.dtype())) t.requires_grad_(true);
  auto r = autograd::gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace ember::test
