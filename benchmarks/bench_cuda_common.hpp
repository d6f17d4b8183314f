// Shared by the CUDA benchmarks: device report, a custom main that exits 0 without a device,
// and CUDA-event timing of one benchmark iteration.
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
/// iteration per benchmark iteration.
template <class F>
void time_with_events(benchmark::State& state, F&& fn) {
  fn();  // warm-up (cuBLASLt heuristics, allocator)
  cudaDeviceSynchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (auto _ : state) {
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
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
