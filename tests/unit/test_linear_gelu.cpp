// nn::functional::linear_gelu on the CPU: exactly gelu(linear(x, w, b), "tanh") (values and
// gradients bit for bit), the tanh-form GELU checked against an independent double formula,
// gradcheck in f64, and the composition's errors. (The fused CUDA path: tests/cuda/test_cuda_fused.cpp.)
#include "test_util.hpp"

namespace ember {
namespace {

namespace F = nn::functional;
using test::random_tensor;

// Bitwise equality of two tensors (same shape and dtype, NaN rejected first).
void expect_bitwise_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  const std::vector<double> va = a.contiguous().to_vector<double>(), vb = b.contiguous().to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    ASSERT_FALSE(std::isnan(va[i]) || std::isnan(vb[i])) << "NaN at " << i;
    ASSERT_EQ(va[i], vb[i]) << "element " << i;
  }
}

TEST(LinearGelu, EqualsCompositionF32) {
  const Tensor x = random_tensor({6, 5}, 1, kFloat32, 2.0), w = random_tensor({4, 5}, 2, kFloat32),
               b = random_tensor({4}, 3, kFloat32);
  expect_bitwise_equal(F::linear_gelu(x, w, b), F::gelu(F::linear(x, w, b), "tanh"));
}

TEST(LinearGelu, EqualsCompositionBatchedInput) {
  const Tensor x = random_tensor({2, 3, 5}, 4, kFloat32, 3.0), w = random_tensor({7, 5}, 5, kFloat32),
               b = random_tensor({7}, 6, kFloat32);
  const Tensor y = F::linear_gelu(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 7}));
  expect_bitwise_equal(y, F::gelu(F::linear(x, w, b), "tanh"));
}

TEST(LinearGelu, GradientsEqualComposition) {
  Tensor x1 = random_tensor({4, 6}, 7, kFloat32, 2.0), w1 = random_tensor({3, 6}, 8, kFloat32),
         b1 = random_tensor({3}, 9, kFloat32);
  Tensor x2 = x1.detach().clone(), w2 = w1.detach().clone(), b2 = b1.detach().clone();
  for (Tensor* t : {&x1, &w1, &b1, &x2, &w2, &b2}) t->requires_grad_(true);
  const Tensor gy = random_tensor({4, 3}, 10, kFloat32);
  (F::linear_gelu(x1, w1, b1) * gy).sum().backward();
  (F::gelu(F::linear(x2, w2, b2), "tanh") * gy).sum().backward();
  expect_bitwise_equal(x1.grad(), x2.grad());
  expect_bitwise_equal(w1.grad(), w2.grad());
  expect_bitwise_equal(b1.grad(), b2.grad());
}

// Independent truth: z = x·wᵀ + b and 0.5·z·(1 + tanh(√(2/π)(z + 0.044715 z³))) in double.
TEST(LinearGelu, MatchesTanhFormulaF64) {
  const int64_t m = 5, k = 4, n = 3;
  const Tensor x = random_tensor({m, k}, 11, kFloat64, 3.0), w = random_tensor({n, k}, 12), b = random_tensor({n}, 13);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  const std::vector<double> y = F::linear_gelu(x, w, b).to_vector<double>();
  ASSERT_EQ(y.size(), static_cast<size_t>(m * n));
  const double c = std::sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double z = bv[j];
      for (int64_t t = 0; t < k; ++t) z += xv[i * k + t] * wv[j * k + t];
      const double want = 0.5 * z * (1.0 + std::tanh(c * (z + 0.044715 * z * z * z)));
      const double got = y[i * n + j];
      ASSERT_FALSE(std::isnan(got));
      EXPECT_NEAR(got, want, 1e-12 + 1e-12 * std::abs(want)) << i << "," << j;
    }
  }
}

TEST(LinearGelu, GradcheckF64) {
  test::expect_gradcheck([](const std::vector<Tensor>& in) { return F::linear_gelu(in[0], in[1], in[2]); },
                         {random_tensor({3, 4}, 14, kFloat64, 2.0), random_tensor({5, 4}, 15), random_tensor({5}, 16)});
}

TEST(LinearGelu, GradcheckF64Batched) {
  test::expect_gradcheck(
      [](const std::vector<Tensor>& in) { return F::linear_gelu(in[0], in[1], in[2]); },
      {random_tensor({2, 2, 3}, 17, kFloat64, 2.0), random_tensor({2, 3}, 18), random_tensor({2}, 19)});
}

TEST(LinearGelu, WithoutBiasIsTheComposition) {
  const Tensor x = random_tensor({3, 4}, 20, kFloat32), w = random_tensor({2, 4}, 21, kFloat32);
  expect_bitwise_equal(F::linear_gelu(x, w, Tensor()), F::gelu(F::linear(x, w), "tanh"));
}

TEST(LinearGelu, ShapeErrors) {
  const Tensor x = random_tensor({3, 4}, 22, kFloat32), w = random_tensor({2, 5}, 23, kFloat32),
               b = random_tensor({2}, 24, kFloat32);
  EXPECT_THROW(F::linear_gelu(x, w, b), ShapeError);
  test::expect_throw_containing([&] { F::linear_gelu(x, w, b); }, "do not align: 4 != 5");
  const Tensor w2 = random_tensor({2, 4}, 25, kFloat32), b3 = random_tensor({3}, 26, kFloat32);
  EXPECT_THROW(F::linear_gelu(x, w2, b3), ShapeError);
  test::expect_throw_containing([&] { F::linear_gelu(x, w2, b3); }, "bias must have shape (2,)");
}

TEST(LinearGelu, DTypeError) {
  const Tensor x = random_tensor({3, 4}, 27, kFloat32), w = random_tensor({2, 4}, 28, kFloat64),
               b = random_tensor({2}, 29, kFloat32);
  EXPECT_THROW(F::linear_gelu(x, w, b), DTypeError);
  test::expect_throw_containing([&] { F::linear_gelu(x, w, b); }, "same dtype");
}

}  // namespace
}  // namespace ember
