// Differential testing of the CUDA backend against the CPU backend: random inputs, per-dtype
// tolerances (atol + rtol * |ref|), NaN rejected before any comparison, and a helper that runs
// one function on CPU and CUDA copies of its inputs and compares outputs and gradients.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "unit/test_util.hpp"

namespace ember::cuda_test {

#define EMBER_REQUIRE_CUDA_DEVICE() \
  if (::ember::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

struct Tol {
  double atol, rtol;
};

/// The dtypes the tests loop over: the floating ones, and every one.
inline const std::vector<DType> kFloatTypes = {DType::f32, DType::f64, DType::f16, DType::bf16};
inline const std::vector<DType> kEveryType = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                              DType::i32, DType::i64, DType::u8,  DType::boolean};
/// The device every test runs on.
inline const Device kDev = Device::cuda(0);
/// close_to's bit-for-bit comparison.
inline constexpr Tol kExact{0, 0};

/// Tolerances per dtype; tf32 for float32 products with TF32 enabled.
inline Tol tol_for(DType dt, bool tf32 = false) {
  switch (dt) {
    case DType::f64: return {1e-10, 1e-10};
    case DType::f32: return tf32 ? Tol{1e-3, 1e-3} : Tol{1e-5, 1e-5};
    case DType::f16: return {1e-3, 1e-3};
    case DType::bf16: return {1e-2, 1e-2};
    default: return {0, 0};
  }
}

/// The error type E, with `needle` (or every one of several) in its message.
using ember::test::expect_error;

/// Host synchronisations (cuda::host_sync_count) that fn() adds.
template <class F>
uint64_t syncs_during(F&& fn) {
  const uint64_t before = cuda::host_sync_count();
  fn();
  return cuda::host_sync_count() - before;
}

/// Random values in [lo, hi) (rounded to dtype) of the given shape, on the CPU.
inline Tensor random_tensor(const Shape& shape, DType dt, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return tensor<double>(v, shape).to(dt);
}

/// Uniform integers in [lo, hi] as dtype dt (bool: their low bit) of the given shape, on the CPU.
inline Tensor random_ints(const Shape& shape, DType dt, uint32_t seed, int64_t lo, int64_t hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(lo, hi);
  std::vector<int64_t> v(static_cast<size_t>(numel_of(shape)));
  for (int64_t& x : v) x = dt == DType::boolean ? (u(rng) & 1) : u(rng);
  Tensor t = tensor<int64_t>(v, shape);
  return dt == DType::boolean ? ne(t, 0) : t.to(dt);
}

/// Compares a CUDA result with the CPU reference element by element: same shape and dtype, no
/// NaN where the reference has none, |got - ref| <= atol + rtol * |ref|. Reports the first few
/// mismatches with their index.
inline ::testing::AssertionResult close_to(const Tensor& got, const Tensor& ref, Tol tol) {
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " != " << shape_str(ref.shape());
  if (got.dtype() != ref.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << " != " << dtype_name(ref.dtype());
  const std::vector<double> g = got.cpu().contiguous().to_vector<double>();
  const std::vector<double> r = ref.contiguous().to_vector<double>();
  int bad = 0;
  std::string report;
  for (size_t i = 0; i < r.size(); ++i) {
    const bool gn = std::isnan(g[i]), rn = std::isnan(r[i]);
    bool ok;
    if (rn || gn)
      ok = rn && gn;  // NaN first: a NaN passes only where the reference has one
    else if (std::isinf(r[i]) || std::isinf(g[i]))
      ok = g[i] == r[i];
    else
      ok = std::abs(g[i] - r[i]) <= tol.atol + tol.rtol * std::abs(r[i]);
    if (!ok && bad++ < 5)
      report += " [" + std::to_string(i) + "] got " + std::to_string(g[i]) + " want " + std::to_string(r[i]) + ";";
  }
  if (bad > 0) return ::testing::AssertionFailure() << bad << " of " << r.size() << " elements differ:" << report;
  return ::testing::AssertionSuccess();
}

/// A CUDA copy of t with t's layout: the same sizes, strides and storage offset (Tensor::to
/// would make it contiguous). The storage span t reads is copied, then the view is rebuilt.
inline Tensor to_cuda_same_layout(const Tensor& t) {
  if (t.numel() == 0 || (t.is_contiguous() && t.storage_offset() == 0)) return t.to(Device::cuda(0));
  int64_t extent = t.storage_offset() + 1;
  for (int64_t d = 0; d < t.dim(); ++d) extent += (t.size(d) - 1) * t.stride(d);
  const Tensor flat = t.as_strided({extent}, {1}, 0).to(Device::cuda(0));
  return flat.as_strided(t.shape(), t.strides(), t.storage_offset());
}

/// Runs fn on `inputs` (CPU) and on CUDA copies of them (to_cuda_same_layout); compares the outputs and, when
/// `with_grad`, the gradients of sum(output * w) (w a fixed random weight) for every floating
/// input. Inputs keep their layout: pass views (transposed, sliced) to test non-contiguous paths.
inline void expect_same_on_cuda(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                const std::vector<Tensor>& inputs, Tol tol, bool with_grad = true) {
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach();
    Tensor g = to_cuda_same_layout(t.detach());
    const bool grad = with_grad && is_floating(t.dtype());
    if (grad) {
      c.requires_grad_(true);
      g.requires_grad_(true);
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  Tensor yc = fn(cpu_in), yg = fn(gpu_in);
  ASSERT_TRUE(yg.is_cuda());
  EXPECT_TRUE(close_to(yg, yc, tol)) << "forward";
  if (!with_grad || !yc.requires_grad()) return;
  Tensor w = random_tensor(yc.shape(), yc.dtype(), 1234u);
  (yc * w).sum().backward();
  (yg * w.to(Device::cuda(0))).sum().backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    if (!cpu_in[i].grad().defined()) {  // not differentiable through fn (e.g. a class weight)
      EXPECT_FALSE(gpu_in[i].grad().defined()) << "input " << i << " has a gradient on CUDA only";
      continue;
    }
    ASSERT_TRUE(gpu_in[i].grad().defined()) << "input " << i << " has no gradient on CUDA";
    EXPECT_TRUE(close_to(gpu_in[i].grad(), cpu_in[i].grad(), tol)) << "gradient of input " << i;
  }
}

}  // namespace ember::cuda_test
