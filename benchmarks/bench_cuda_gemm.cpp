// GEMM throughput on the GPU: Ember's matmul path (cuda_backend::gemm → cuBLASLt) beside a
// direct cublasGemmEx call, for fp32, TF32, fp16 and bf16 at 4096³ and 8192³, in TFLOP/s.
#include <cublas_v2.h>

#include <cmath>
#include <string>

#include "bench_cuda_common.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;

namespace {

enum Mode : int64_t { kF32, kTF32, kF16, kBF16 };

DType dtype_of(int64_t mode) { return mode == kF16 ? kFloat16 : mode == kBF16 ? kBFloat16 : kFloat32; }
const char* mode_name(int64_t mode) {
  static const char* names[] = {"fp32", "tf32", "fp16", "bf16"};
  return names[mode];
}

struct Operands {
  Tensor a, b, c;
  explicit Operands(int64_t n, DType dt) {
    NoGradGuard ng;
    a = randn({n, n}).to(dt).to(Device::cuda(0));
    b = randn({n, n}).to(dt).to(Device::cuda(0));
    c = empty({n, n}, {.dtype = dt, .device = Device::cuda(0)});
  }
};

void set_counters(benchmark::State& state, int64_t n) {
  state.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()) / 1e12, benchmark::Counter::kIsRate);
  state.SetLabel(mode_name(state.range(1)));
}

// Checks two elements of c (corners) against sums of products on the host; "" when they match
// (relative to the sum of |products|: 1e-5 for fp32, 1e-2 for TF32 and the 16-bit types).
std::string check_corners(const Operands& op, int64_t n, int64_t mode) {
  const Tensor a = op.a.to(Device::cpu(), kFloat64), b = op.b.to(Device::cpu(), kFloat64);
  const Tensor c = op.c.to(Device::cpu(), kFloat64);
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  const double* pc = c.data<double>();
  const double rel = mode == kF32 ? 1e-5 : 1e-2;
  for (int64_t i : {int64_t{0}, n - 1}) {
    double sum = 0, mag = 0;
    for (int64_t k = 0; k < n; ++k) {
      sum += pa[i * n + k] * pb[k * n + i];
      mag += std::abs(pa[i * n + k] * pb[k * n + i]);
    }
    const double got = pc[i * n + i];
    if (!(std::abs(got - sum) <= rel * mag))
      return "c[" + std::to_string(i) + "][" + std::to_string(i) + "] = " + std::to_string(got) + ", expected " +
             std::to_string(sum);
  }
  return "";
}

void BM_EmberGemm(benchmark::State& state) {
  const int64_t n = state.range(0), mode = state.range(1);
  cuda::set_allow_tf32(mode == kTF32);
  try {
    Operands op(n, dtype_of(mode));
    ember_bench::time_with_events(state, [&] { cuda_backend::gemm(op.c, op.a, op.b); });
    const std::string bad = check_corners(op, n, mode);
    if (!bad.empty()) state.SkipWithError(("wrong result: " + bad).c_str());
    else set_counters(state, n);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  cuda::set_allow_tf32(false);
}

void BM_CublasGemmEx(benchmark::State& state) {
  const int64_t n = state.range(0), mode = state.range(1);
  Operands op(n, dtype_of(mode));
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  cudaDataType_t t = mode == kF16 ? CUDA_R_16F : mode == kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t compute = mode == kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = 0.f;
  const int ni = static_cast<int>(n);
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  ember_bench::time_with_events(state, [&] {
    // Row-major c = a·b is column-major cᵀ = bᵀ·aᵀ.
    const cublasStatus_t s = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &alpha, op.b.data_ptr(), t, ni,
                                          op.a.data_ptr(), t, ni, &beta, op.c.data_ptr(), t, ni, compute,
                                          CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) st = s;
  });
  cublasDestroy(h);
  // A failed call times nothing: report it instead of a rate.
  if (st != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError((std::string("cublasGemmEx: ") + cublasGetStatusString(st)).c_str());
    return;
  }
  set_counters(state, n);
}

void gemm_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {4096, 8192})
    for (int64_t mode : {kF32, kTF32, kF16, kBF16}) b->Args({n, mode});
  b->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.2);
}

}  // namespace

BENCHMARK(BM_EmberGemm)->Apply(gemm_args);
BENCHMARK(BM_CublasGemmEx)->Apply(gemm_args);

EMBER_CUDA_BENCHMARK_MAIN()
