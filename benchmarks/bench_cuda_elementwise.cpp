// Elementwise bandwidth on the GPU: add, mul (16-byte vector path) and gelu over 64M elements
// in f32 and bf16, beside a device-to-device cudaMemcpy of the same bytes, in GB/s
// (bytes read + written; GBps) and as pct_of_copy (the op's GBps over copy_GBps, a copy moving
// the same bytes measured right after the op's timed loop; BM_MemcpyD2D itself shows ~100).
#include "bench_cuda_common.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;

namespace {

constexpr int64_t kN = int64_t{64} << 20;

DType dtype_of(int64_t i) { return i == 0 ? kFloat32 : kBFloat16; }

void BM_Binary(benchmark::State& state, cpu::BinaryOp op) {
  const DType dt = dtype_of(state.range(0));
  Tensor a = full({kN}, 1.5, {.dtype = dt, .device = Device::cuda(0)});
  Tensor b = full({kN}, 0.5, {.dtype = dt, .device = Device::cuda(0)});
  Tensor c = empty({kN}, {.dtype = dt, .device = Device::cuda(0)});
  const double s = ember_bench::time_with_events(state, [&] { cuda_backend::binary(op, c, a, b); });
  ember_bench::report_bandwidth(state, 3 * kN * static_cast<int64_t>(itemsize(dt)), s);
  state.SetLabel(dtype_name(dt));
}

void BM_Add(benchmark::State& state) { BM_Binary(state, cpu::BinaryOp::add); }
void BM_Mul(benchmark::State& state) { BM_Binary(state, cpu::BinaryOp::mul); }

void BM_Gelu(benchmark::State& state) {
  const DType dt = dtype_of(state.range(0));
  Tensor x = full({kN}, 0.25, {.dtype = dt, .device = Device::cuda(0)});
  Tensor y = empty({kN}, {.dtype = dt, .device = Device::cuda(0)});
  const double s = ember_bench::time_with_events(state, [&] { cuda_backend::unary(cpu::UnaryOp::gelu, y, x); });
  ember_bench::report_bandwidth(state, 2 * kN * static_cast<int64_t>(itemsize(dt)), s);
  state.SetLabel(dtype_name(dt));
}

void BM_MemcpyD2D(benchmark::State& state) {
  const DType dt = dtype_of(state.range(0));
  Tensor x = full({kN}, 1.0, {.dtype = dt, .device = Device::cuda(0)});
  Tensor y = empty({kN}, {.dtype = dt, .device = Device::cuda(0)});
  const size_t bytes = static_cast<size_t>(x.nbytes());
  const double s = ember_bench::time_with_events(
      state, [&] { cudaMemcpyAsync(y.data_ptr(), x.data_ptr(), bytes, cudaMemcpyDeviceToDevice); });
  ember_bench::report_bandwidth(state, 2 * static_cast<int64_t>(bytes), s);
  state.SetLabel(dtype_name(dt));
}

}  // namespace

BENCHMARK(BM_Add)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_Mul)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_Gelu)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_MemcpyD2D)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);

EMBER_CUDA_BENCHMARK_MAIN()
