// Differential tests (CPU backend = truth) for the CUDA indexing, joining, sorting and
// sampling ops and the fused LayerNorm: index_select, gather, scatter_add, embedding (forward
// and the deterministic backward), cat, sort/argsort/topk (ties, NaN, -0), multinomial (same
// draws as the CPU from the same generator state), functional::layer_norm / nn::LayerNorm.
// Odd sizes, non-contiguous views made inside the function (both backends see the same view),
// every dtype, gradients where differentiable, and the error paths (CPU indices checked at
// once, device indices reported by check_index_errors). Every test skips without a device.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;
using namespace ember::cuda_test;
using Inputs = std::vector<Tensor>;

namespace {

/// Values of dtype dt with many ties (floats: halves in [-3, 3]; u8: 0..9; bool: 0/1).
Tensor tied_values(const Shape& shape, DType dt, uint32_t seed) {
  if (is_floating(dt)) return random_ints(shape, DType::i64, seed, -6, 6).to(dt) * 0.5;
  if (dt == DType::boolean) return ne(random_ints(shape, DType::i64, seed, 0, 1), 0);
  if (dt == DType::u8) return random_ints(shape, DType::i64, seed, 0, 9).to(dt);
  return random_ints(shape, DType::i64, seed, -9, 9).to(dt);
}

/// Gradient tolerance: f16/bf16 sums are accumulated in f32 and rounded once on CUDA, per
/// addition on the CPU.
Tol grad_tol(DType dt) {
  if (dt == DType::f16) return {1e-2, 1e-2};
  if (dt == DType::bf16) return {6e-2, 6e-2};
  return tol_for(dt);
}

}  // namespace

// ------------------------------------------------------------------ index_select, gather, scatter_add

TEST(CudaIndexing, IndexSelectMatchesCpuEveryDtype) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tied_values({7, 13, 5}, dt, 1);
    Tensor idx = random_ints({11}, DType::i64, 2, 0, 12);  // duplicates on purpose
    const bool grad = is_floating(dt);
    for (int64_t dim : {0, 1, -1}) {
      SCOPED_TRACE(dim);
      Tensor i = random_ints({9}, DType::i64, 3 + static_cast<uint32_t>(dim + 1), 0, x.size(dim) - 1);
      expect_same_on_cuda([&](const Inputs& v) { return index_select(v[0], dim, v[1]); }, {x, i}, grad_tol(dt), grad);
    }
    // Non-contiguous input and index, index still on the CPU (host-checked, copied over).
    expect_same_on_cuda([&](const Inputs& v) { return index_select(v[0].transpose(0, 1), 0, idx.slice(0, 0, 11, 2)); },
                        {x}, grad_tol(dt), grad);
  }
}

TEST(CudaIndexing, GatherMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tied_values({6, 9, 4}, dt, 5);
    const bool grad = is_floating(dt);
    Tensor i0 = random_ints({8, 9, 3}, DType::i64, 6, 0, 5);  // dim 0 may be larger than x's
    Tensor i1 = random_ints({5, 11, 4}, DType::i64, 7, 0, 8);
    expect_same_on_cuda([](const Inputs& v) { return gather(v[0], 0, v[1]); }, {x, i0}, grad_tol(dt), grad);
    expect_same_on_cuda([](const Inputs& v) { return gather(v[0], 1, v[1]); }, {x, i1}, grad_tol(dt), grad);
    // Transposed input and transposed index.
    Tensor i2 = random_ints({4, 9, 6}, DType::i64, 8, 0, 3);
    expect_same_on_cuda([](const Inputs& v) { return gather(v[0].transpose(0, 2), 0, v[1].transpose(1, 2)); }, {x, i2},
                        grad_tol(dt), grad);
  }
}

TEST(CudaIndexing, ScatterAddMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tied_values({5, 7}, dt, 9);
    Tensor src = tied_values({9, 7}, dt, 10);
    Tensor idx = random_ints({9, 6}, DType::i64, 11, 0, 4);  // many collisions
    const bool grad = is_floating(dt);
    // Integer sums are exact; float sums differ only by the order of the atomic additions.
    const Tol tol = is_floating(dt) ? grad_tol(dt) : kExact;
    expect_same_on_cuda([](const Inputs& v) { return scatter_add(v[0], 0, v[2], v[1]); }, {x, src, idx}, tol, grad);
    Tensor idx1 = random_ints({5, 4}, DType::i64, 12, 0, 6);
    expect_same_on_cuda([](const Inputs& v) { return scatter_add(v[0], 1, v[2], v[1].t().t()); }, {x, src, idx1}, tol,
                        grad);
  }
}

TEST(CudaIndexing, IndexOnCpuOutOfRangeThrowsAtOnce) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = zeros({3, 4}).to(kDev);
  try {
    index_select(x, 0, tensor<int64_t>({0, 3}, {2}));
    ADD_FAILURE() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("index 3 is out of bounds for dimension 0 with size 3"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(gather(x, 1, tensor<int64_t>({-1}, {1, 1})), IndexError);
  EXPECT_THROW(embedding(x, tensor<int64_t>({5}, {1})), IndexError);
}

TEST(CudaIndexing, DeviceIndexOutOfRangeIsReportedLazily) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda_backend::check_index_errors(0, true);  // nothing pending from earlier tests
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {3, 2}).to(kDev);
  Tensor bad = tensor<int64_t>({2, 7, 0}, {3}).to(kDev);
  Tensor y = index_select(x, 0, bad);  // no host synchronisation: no error yet
  try {
    cuda_backend::check_index_errors(0, true);
    ADD_FAILURE() << "expected IndexError";
  } catch (const IndexError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("index_select: index 7 is out of bounds for dimension 0 with size 3"), std::string::npos) << msg;
  }
  // The bad row was skipped (zeros), the others read; the record was cleared.
  EXPECT_EQ(y.cpu().to_vector<float>(), (std::vector<float>{5, 6, 0, 0, 1, 2}));
  EXPECT_NO_THROW(cuda_backend::check_index_errors(0, true));
  // The next indexing op reports a pending error too (here: after a synchronisation).
  Tensor g = scatter_add(zeros({3}).to(kDev), 0, tensor<int64_t>({-4}, {1}).to(kDev), ones({1}).to(kDev));
  cuda::synchronize(0);
  try {
    gather(x, 0, zeros({1, 2}, {.dtype = kInt64}).to(kDev));
    ADD_FAILURE() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("scatter_add: index -4"), std::string::npos) << e.what();
  }
  EXPECT_EQ(g.cpu().to_vector<float>(), (std::vector<float>{0, 0, 0}));
}

TEST(CudaIndexing, ErrorPaths) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor x = zeros({3, 4}).to(kDev);
  expect_error<Error>([&] { gather(x, 0, zeros({1, 4}).to(kDev)); }, "index must be an int32 or int64 tensor");
  EXPECT_THROW(gather(x, 0, zeros({1, 4}).to(kDev)), DTypeError);
  try {
    cat({x, zeros({3, 4})});
    ADD_FAILURE() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cat: expected all tensors on cuda:0, got tensor 1 on cpu"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(index_select(zeros({3}), 0, tensor<int64_t>({0}, {1}).to(kDev)), DeviceError);
  EXPECT_THROW(scatter_add(x, 0, zeros({1, 4}, {.dtype = kInt64}).to(kDev), zeros({1, 4})), DeviceError);
  expect_error<Error>([&] { multinomial(zeros({2, 3}).to(kDev), 1); }, "row 0 of probs sums to zero");
  expect_error<Error>(
      [&] {
        multinomial(tensor<float>({1, -1, 1}).to(kDev), 1);
      },
      "probabilities must be finite and non-negative, got -1 at row 0, category 1");
  expect_error<Error>(
      [&] {
        multinomial(tensor<float>({1, 0, 1}).to(kDev), 3);
      },
      "which has only 2 categories of non-zero probability");
  EXPECT_THROW(multinomial(zeros({2, 3}).to(kDev), 1), ValueError);
}

// ------------------------------------------------------------------ embedding

TEST(CudaIndexing, EmbeddingMatchesCpuWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor w = random_tensor({13, 7}, dt, 20);
    Tensor idx = random_ints({5, 9}, DType::i64, 21, 0, 12);  // repeated rows accumulate
    expect_same_on_cuda([](const Inputs& v) { return embedding(v[0], v[1]); }, {w, idx}, grad_tol(dt));
    // int32 indices, non-contiguous; index kept on the CPU.
    Tensor i32 = random_ints({9, 5}, DType::i64, 22, 0, 12).to(kInt32);
    expect_same_on_cuda([&](const Inputs& v) { return embedding(v[0], i32.t()); }, {w}, grad_tol(dt));
  }
}

TEST(CudaIndexing, EmbeddingBackwardIsDeterministic) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor w = random_tensor({50, 33}, kFloat32, 23).to(kDev).requires_grad_(true);
  Tensor idx = random_ints({4000}, DType::i64, 24, 0, 9).to(kDev);  // 400 hits per row
  Tensor gy = random_tensor({4000, 33}, kFloat32, 25).to(kDev);
  std::vector<float> first;
  for (int rep = 0; rep < 3; ++rep) {
    w.set_grad(Tensor());
    (embedding(w, idx) * gy).sum().backward();
    std::vector<float> g = w.grad().cpu().to_vector<float>();
    if (rep == 0)
      first = g;
    else
      EXPECT_EQ(g, first) << "repeat " << rep;
  }
  // The sums run in position order, as the CPU's index_add: bit-identical in f32.
  Tensor wc = w.detach().cpu().requires_grad_(true);
  (embedding(wc, idx.cpu()) * gy.cpu()).sum().backward();
  EXPECT_EQ(wc.grad().to_vector<float>(), first);
}

// ------------------------------------------------------------------ cat

TEST(CudaIndexing, CatMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = tied_values({3, 5, 2}, dt, 30), b = tied_values({3, 1, 2}, dt, 31), c = tied_values({2, 3, 5}, dt, 32);
    const bool grad = is_floating(dt);
    expect_same_on_cuda(
        [](const Inputs& v) {
          return cat({v[0], v[1], v[2].permute({2, 0, 1})}, 1);
        },
        {a, b, c}, kExact, grad);
    expect_same_on_cuda([](const Inputs& v) { return cat({v[0], v[0].slice(0, 0, 3, 2)}, 0); }, {a}, kExact, grad);
  }
  // Mixed dtypes promote; a 1-d empty tensor is skipped.
  expect_same_on_cuda(
      [](const Inputs& v) {
        return cat({v[0], v[1].to(kInt32), v[2]}, 0);
      },
      {random_tensor({4}, kFloat32, 33), random_ints({3}, DType::i64, 34, -5, 5), zeros({0})}, kExact);
}

// ------------------------------------------------------------------ sort, argsort, topk

TEST(CudaIndexing, SortMatchesCpuEveryDtypeWithTies) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kEveryType) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tied_values({7, 301}, dt, 40);
    for (bool desc : {false, true}) {
      SCOPED_TRACE(desc);
      expect_same_on_cuda([&](const Inputs& v) { return sort(v[0], -1, desc).first; }, {x}, kExact, false);
      expect_same_on_cuda([&](const Inputs& v) { return sort(v[0], -1, desc).second; }, {x}, kExact, false);
      expect_same_on_cuda([&](const Inputs& v) { return argsort(v[0], 0, desc); }, {x}, kExact, false);
      expect_same_on_cuda([&](const Inputs& v) { return sort(v[0].t().slice(0, 1, 301, 7), 0, desc).second; }, {x},
                          kExact, false);
    }
  }
}

TEST(CudaIndexing, SortNanAndSignedZeroOrderAsCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = tensor<double>({1, nan, -0.0, 0.0, -inf, nan, inf, -1, 0.0, -0.0, -nan, 2}, {2, 6}).to(dt);
    for (bool desc : {false, true}) {
      expect_same_on_cuda([&](const Inputs& v) { return sort(v[0], -1, desc).first; }, {x}, kExact, false);
      expect_same_on_cuda([&](const Inputs& v) { return sort(v[0], -1, desc).second; }, {x}, kExact, false);
      expect_same_on_cuda([&](const Inputs& v) { return topk(v[0], 4, -1, desc).second; }, {x}, kExact, false);
    }
  }
}

TEST(CudaIndexing, SortAndTopkLongAndOddRowsWithGradient) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (int64_t n : {1, 2, 31, 2047, 2048, 2049, 10007}) {
      SCOPED_TRACE(n);
      Tensor x = random_tensor({3, n}, dt, 41 + static_cast<uint32_t>(n));
      expect_same_on_cuda([](const Inputs& v) { return sort(v[0], -1, true).first; }, {x}, kExact);
      const int64_t k = std::min<int64_t>(n, 5);
      for (bool largest : {true, false}) {
        expect_same_on_cuda([&](const Inputs& v) { return topk(v[0], k, -1, largest).first; }, {x}, kExact);
        expect_same_on_cuda([&](const Inputs& v) { return topk(v[0], k, -1, largest).second; }, {x}, kExact, false);
      }
    }
  }
  // topk along dim 0 of a transposed view, integers; k = 0; a 0-d input.
  Tensor xi = tied_values({9, 6}, kInt32, 50);
  expect_same_on_cuda([](const Inputs& v) { return topk(v[0].t(), 3, 1).second; }, {xi}, kExact, false);
  expect_same_on_cuda([](const Inputs& v) { return topk(v[0], 0).first; }, {xi}, kExact, false);
  expect_same_on_cuda([](const Inputs& v) { return sort(v[0]).first; }, {scalar_tensor(3.5)}, kExact);
  expect_error<Error>([&] { topk(xi.to(kDev), 7); }, "topk: k = 7 is out of range");
}

// ------------------------------------------------------------------ multinomial

TEST(CudaIndexing, MultinomialDrawsAsCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Tensor p = random_tensor({4, 37}, kFloat32, 60, 0.0, 1.0);
  p = where(lt(p, 0.3), zeros_like(p), p);  // zero-probability categories
  for (bool replacement : {true, false}) {
    SCOPED_TRACE(replacement);
    const int64_t samples = replacement ? 200 : 9;
    Generator gc(7), gg(7);
    Tensor c = multinomial(p, samples, replacement, &gc);
    Tensor g = multinomial(p.to(kDev), samples, replacement, &gg);
    ASSERT_TRUE(g.is_cuda());
    EXPECT_EQ(g.cpu().to_vector<int64_t>(), c.to_vector<int64_t>());
    // Both generators advanced alike.
    EXPECT_EQ(gc.state().offset, gg.state().offset);
  }
  // 1-d probabilities in f64 and f16, from the default generator.
  for (DType dt : {kFloat64, kFloat16}) {
    Tensor q = random_tensor({50}, dt, 61, 0.0, 1.0);
    manual_seed(3);
    Tensor c = multinomial(q, 20, true);
    manual_seed(3);
    Tensor g = multinomial(q.to(kDev), 20, true);
    EXPECT_EQ(g.shape(), (Shape{20}));
    EXPECT_EQ(g.cpu().to_vector<int64_t>(), c.to_vector<int64_t>());
  }
}

// ------------------------------------------------------------------ layer norm

namespace {
/// layer_norm on the CPU in f32 from the (rounded) inputs, the reference for 16-bit CUDA data.
Tensor layer_norm_f32(const Tensor& x, const Shape& shape, const Tensor& w, const Tensor& b) {
  return nn::functional::layer_norm(x.to(kFloat32), shape, w.defined() ? w.to(kFloat32) : Tensor(),
                                    b.defined() ? b.to(kFloat32) : Tensor());
}
}  // namespace

TEST(CudaIndexing, LayerNormMatchesCpuWithGradients) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    for (const Shape& shape : std::vector<Shape>{{5, 7}, {3, 4, 33}, {2, 1031}, {130, 16}}) {
      SCOPED_TRACE(shape_str(shape));
      const Shape norm{shape.back()};
      Tensor x = random_tensor(shape, dt, 70, -3.0, 5.0);  // non-zero mean
      Tensor w = random_tensor(norm, dt, 71), b = random_tensor(norm, dt, 72);
      const Tol tol = dt == DType::f32 ? Tol{2e-5, 2e-5} : tol_for(dt);
      expect_same_on_cuda([&](const Inputs& v) { return nn::functional::layer_norm(v[0], norm, v[1], v[2]); },
                          {x, w, b}, tol);
      expect_same_on_cuda([&](const Inputs& v) { return nn::functional::layer_norm(v[0], norm); }, {x}, tol);
      // Non-contiguous input.
      expect_same_on_cuda(
          [&](const Inputs& v) {
            return nn::functional::layer_norm(v[0].transpose(0, -1), {shape.front()}, Tensor(), Tensor(), 1e-3);
          },
          {x}, tol);
    }
  }
  // Two normalized dims.
  Tensor x = random_tensor({6, 5, 9}, kFloat64, 73), w = random_tensor({5, 9}, kFloat64, 74);
  expect_same_on_cuda(
      [](const Inputs& v) {
        return nn::functional::layer_norm(v[0], {5, 9}, v[1]);
      },
      {x, w}, tol_for(kFloat64));
}

TEST(CudaIndexing, LayerNorm16BitMatchesF32Reference) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = dt == DType::f16 ? Tol{4e-3, 4e-3} : Tol{3e-2, 3e-2};
    Tensor x = random_tensor({37, 96}, dt, 80), w = random_tensor({96}, dt, 81), b = random_tensor({96}, dt, 82);
    Tensor gy = random_tensor({37, 96}, dt, 83);
    // Reference: the same rounded inputs in f32 on the CPU, gradients included.
    Tensor xr = x.to(kFloat32).requires_grad_(true), wr = w.to(kFloat32).requires_grad_(true),
           br = b.to(kFloat32).requires_grad_(true);
    Tensor yr = layer_norm_f32(xr, {96}, wr, br);
    (yr * gy.to(kFloat32)).sum().backward();
    Tensor xg = x.to(kDev).requires_grad_(true), wg = w.to(kDev).requires_grad_(true),
           bg = b.to(kDev).requires_grad_(true);
    Tensor yg = nn::functional::layer_norm(xg, {96}, wg, bg);
    ASSERT_EQ(yg.dtype(), dt);
    (yg * gy.to(kDev)).sum().backward();
    EXPECT_TRUE(close_to(yg.to(kFloat32), yr.detach(), tol)) << "forward";
    EXPECT_TRUE(close_to(xg.grad().to(kFloat32), xr.grad(), tol)) << "dx";
    EXPECT_TRUE(close_to(wg.grad().to(kFloat32), wr.grad(), {tol.atol * 10, tol.rtol})) << "dw (sum over 37 rows)";
    EXPECT_TRUE(close_to(bg.grad().to(kFloat32), br.grad(), {tol.atol * 10, tol.rtol})) << "db";
  }
}

TEST(CudaIndexing, LayerNormModuleUsesFusedKernel) {
  EMBER_REQUIRE_CUDA_DEVICE();
  nn::LayerNorm ln(Shape{24});
  ln.to(kDev);
  Tensor x = random_tensor({10, 24}, kFloat32, 90).to(kDev).requires_grad_(true);
  Tensor y = ln.forward(x);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name(), "LayerNormBackward");
  // A CPU module keeps the composed ops (its graph ends in an add for the bias).
  nn::LayerNorm lc(Shape{24});
  Tensor yc = lc.forward(x.detach().cpu().requires_grad_(true));
  ASSERT_TRUE(yc.grad_fn());
  EXPECT_NE(yc.grad_fn()->name(), "LayerNormBackward");
  EXPECT_TRUE(close_to(y, yc, {2e-5, 2e-5}));
}
