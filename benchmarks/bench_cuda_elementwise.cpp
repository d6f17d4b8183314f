// Elementwise bandwidth on the GPU: add, mul (16-byte vector path), gelu, a broadcast add
// (strided path), dropout, dtype conversion and a whole-tensor sum over 64M elements in f32 and
// bf16, beside a device-to-device cudaMemcpy of the same bytes, in GB/s
// (bytes read + written; GBps) and as pct_of_copy (the op's GBps over copy_GBps, a copy moving
// the same bytes measured right after the op's timed loop; BM_MemcpyD2D itself shows ~100).
#include <string>

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

// Bias-style broadcast: (8192, 8192) + a (8192) row, the strided (offset calculator) kernel.
void BM_BroadcastAdd(benchmark::State& state) {
  const DType dt = dtype_of(state.range(0));
  constexpr int64_t kCols = 8192, kRows = kN / kCols;
  Tensor a = full({kRows, kCols}, 1.5, {.dtype = dt, .device = Device::cuda(0)});
  Tensor b = full({kCols}, 0.5, {.dtype = dt, .device = Device::cuda(0)});
  Tensor c = empty({kRows, kCols}, {.dtype = dt, .device = Device::cuda(0)});
  const double s =
      ember_bench::time_with_events(state, [&] { cuda_backend::binary(cpu::BinaryOp::add, c, a, b); });
  ember_bench::report_bandwidth(state, 2 * kN * static_cast<int64_t>(itemsize(dt)), s);
  state.SetLabel(dtype_name(dt));
}

// Dropout p = 0.1 (x read; output and mask written), Philox included.
void BM_Dropout(benchmark::State& state) {
  const DType dt = dtype_of(state.range(0));
  Tensor x = full({kN}, 1.5, {.dtype = dt, .device = Device::cuda(0)});
  const double s = ember_bench::time_with_events(state, [&] { benchmark::DoNotOptimize(dropout(x, 0.1, true)); });
  ember_bench::report_bandwidth(state, 3 * kN * static_cast<int64_t>(itemsize(dt)), s);
  state.SetLabel(dtype_name(dt));
}

// Contiguous dtype conversion: f32 -> bf16 (arg 0) and bf16 -> f32 (arg 1).
void BM_Convert(benchmark::State& state) {
  const DType from = state.range(0) == 0 ? kFloat32 : kBFloat16, to = state.range(0) == 0 ? kBFloat16 : kFloat32;
  Tensor x = full({kN}, 1.5, {.dtype = from, .device = Device::cuda(0)});
  const double s = ember_bench::time_with_events(state, [&] { benchmark::DoNotOptimize(x.to(to)); });
  ember_bench::report_bandwidth(state, kN * static_cast<int64_t>(itemsize(from) + itemsize(to)), s);
  state.SetLabel(std::string(dtype_name(from)) + " -> " + dtype_name(to));
}

// Sum of every element (the split reduction; bytes read only).
void BM_Sum(benchmark::State& state) {
  const DType dt = dtype_of(state.range(0));
  Tensor x = full({kN}, 0.5, {.dtype = dt, .device = Device::cuda(0)});
  const double s = ember_bench::time_with_events(state, [&] { benchmark::DoNotOptimize(sum(x)); });
  ember_bench::report_bandwidth(state, kN * static_cast<int64_t>(itemsize(dt)), s);
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
BENCHMARK(BM_BroadcastAdd)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_Dropout)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_Convert)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_Sum)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_MemcpyD2D)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);

EMBER_CUDA_BENCHMARK_MAIN()
