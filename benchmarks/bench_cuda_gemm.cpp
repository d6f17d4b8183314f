// GEMM throughput on the GPU: Ember's matmul path (cuda_backend::gemm → cuBLASLt) beside a
// direct cublasGemmEx call, for fp32, TF32, fp16 and bf16 at 4096³ and 8192³, in TFLOP/s.
#include <cublas_v2.h>

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

void BM_EmberGemm(benchmark::State& state) {
  const int64_t n = state.range(0), mode = state.range(1);
  cuda::set_allow_tf32(mode == kTF32);
  Operands op(n, dtype_of(mode));
  ember_bench::time_with_events(state, [&] { cuda_backend::gemm(op.c, op.a, op.b); });
  set_counters(state, n);
  cuda::set_allow_tf32(false);
}

void BM_CublasGemmEx(benchmark::State& state) {
  const int64_t n = state.range(0), mode = state.range(1);
  Operands op(n, dtype_of(mode));
  cublasHandle_t h;
  cublasCreate(&h);
  cudaDataType_t t = mode == kF16 ? CUDA_R_16F : mode == kBF16 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t compute = mode == kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = 0.f;
  const int ni = static_cast<int>(n);
  ember_bench::time_with_events(state, [&] {
    // Row-major c = a·b is column-major cᵀ = bᵀ·aᵀ.
    cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &alpha, op.b.data_ptr(), t, ni, op.a.data_ptr(), t, ni, &beta,
                 op.c.data_ptr(), t, ni, compute, CUBLAS_GEMM_DEFAULT);
  });
  cublasDestroy(h);
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
