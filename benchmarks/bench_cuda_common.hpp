// Shared by the CUDA benchmarks: device report, a custom main that exits 0 without a device,
// CUDA-event timing of one benchmark iteration, and bandwidth beside a device-to-device copy.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdio>

#include <ember/ember.hpp>

namespace ember_bench {

/// Prints the GPU, its clocks and memory (cudaDeviceGetAttribute: CUDA 13 removed the clock
/// fields of cudaDeviceProp).
inline void print_device() {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return;
  int sm_clock_khz = 0, mem_clock_khz = 0, bus_bits = 0, sms = 0;
  cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  // DDR: two transfers per clock.
  const double peak_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8) / 1e9;
  std::printf(
      "device: %s, sm_%d%d, %d SMs, SM clock %.0f MHz, memory clock %.0f MHz, bus %d bit (%.0f GB/s peak), "
      "%.1f GiB; driver %d, runtime %d\n",
      p.name, p.major, p.minor, sms, sm_clock_khz / 1e3, mem_clock_khz / 1e3, bus_bits, peak_gbs,
      static_cast<double>(p.totalGlobalMem) / (1 << 30), driver, runtime);
}

/// Times `fn` (which enqueues work on the current stream) with CUDA events, one manual-time
/// iteration per benchmark iteration. Returns the total seconds of the timed iterations.
template <class F>
double time_with_events(benchmark::State& state, F&& fn) {
  fn();  // warm-up (cuBLASLt heuristics, allocator)
  cudaDeviceSynchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double total = 0;
  for (auto _ : state) {
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
    total += ms / 1e3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return total;
}

/// Bandwidth of a device-to-device cudaMemcpyAsync that moves `bytes_moved` bytes (half read,
/// half written) on the current stream, in bytes per second: the mean of 10 timed copies after a
/// warm-up one. The buffers come from Ember's caching allocator.
inline double d2d_copy_bandwidth(int64_t bytes_moved) {
  const int64_t half = bytes_moved / 2;
  const ember::Tensor src = ember::empty({half}, {.dtype = ember::kUInt8, .device = ember::Device::cuda(0)});
  const ember::Tensor dst = ember::empty({half}, {.dtype = ember::kUInt8, .device = ember::Device::cuda(0)});
  const auto n = static_cast<size_t>(half);
  cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), n, cudaMemcpyDeviceToDevice);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  constexpr int kReps = 10;
  cudaEventRecord(start);
  for (int i = 0; i < kReps; ++i) cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), n, cudaMemcpyDeviceToDevice);
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms > 0 ? 2.0 * static_cast<double>(half) * kReps / (ms / 1e3) : 0.0;
}

/// Sets GBps (bytes read + written per second of event-timed GPU time), copy_GBps (a
/// device-to-device copy moving the same bytes, measured right after) and pct_of_copy.
inline void report_bandwidth(benchmark::State& state, int64_t bytes_per_iter, double seconds) {
  if (seconds <= 0 || state.iterations() == 0) return;
  const double rate = static_cast<double>(bytes_per_iter) * static_cast<double>(state.iterations()) / seconds;
  const double copy = d2d_copy_bandwidth(bytes_per_iter);
  state.counters["GBps"] = rate / 1e9;
  state.counters["copy_GBps"] = copy / 1e9;
  state.counters["pct_of_copy"] = copy > 0 ? 100.0 * rate / copy : 0.0;
}

}  // namespace ember_bench

/// main(): "no CUDA device" and exit 0 without one; otherwise the device line, then the benchmarks.
#define EMBER_CUDA_BENCHMARK_MAIN()                                   \
  int main(int argc, char** argv) {                                   \
    if (ember::cuda::device_count() == 0) {                           \
      std::printf("no CUDA device: CUDA benchmarks skipped\n");       \
      return 0;                                                       \
    }                                                                 \
    ember_bench::print_device();                                      \
    benchmark::Initialize(&argc, argv);                               \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                              \
    benchmark::Shutdown();                                            \
    return 0;                                                         \
  }
