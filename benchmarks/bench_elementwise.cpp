// Large elementwise ops against this machine's copy bandwidth.
//
// Each op reports bytes/s (bytes read + written; GBps) and pct_of_copy = its bytes/s as a
// percentage of a parallel memcpy of 64 MiB (copy_GBps, read + written) measured in this binary
// with the same thread count right before and after the op's timed loop. Results are checked
// against std:: math before timing.
//
//   ./build/benchmarks/bench_elementwise --benchmark_filter=16M
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <ember/ember.hpp>

namespace {

using ember::Tensor;

constexpr int64_t kCopyBytes = int64_t{64} << 20;

/// dst = src split over the thread pool (what STREAM copy measures).
void parallel_copy(char* dst, const char* src, int64_t bytes) {
  ember::parallel_for(bytes, int64_t{1} << 20,
                      [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, static_cast<size_t>(e - b)); });
}

/// Copy bandwidth (read + write bytes per second) with the current thread count: best of `reps`
/// copies of 64 MiB. Measured next to each benchmark, since the shared host drifts.
double copy_bandwidth(int reps = 8) {
  static std::vector<char> src(kCopyBytes, 1), dst(kCopyBytes, 0);
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_copy(dst.data(), src.data(), kCopyBytes);
    auto t1 = std::chrono::steady_clock::now();
    best = std::max(best, 2.0 * kCopyBytes / std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

/// Sets bytes/s and pct_of_copy: the op's bytes/s over the wall time of the timed loop, as a
/// percentage of the copy bandwidth measured right before and after it (the better of the two).
void report(benchmark::State& state, int64_t bytes_per_iter, double seconds, double copy_before) {
  const double total = static_cast<double>(bytes_per_iter) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(total));
  const double copy = std::max(copy_before, copy_bandwidth());
  state.counters["GBps"] = total / seconds / 1e9;
  state.counters["copy_GBps"] = copy / 1e9;
  state.counters["pct_of_copy"] = 100.0 * total / seconds / copy;
}

Tensor random_input(int64_t n, float lo, float hi, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = seed;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = lo + (hi - lo) * static_cast<float>((s >> 40) & 0xffffff) / 16777216.0f;
  }
  return ember::tensor<float>(v);
}

/// Checks out against ref(a, b) on a sample of elements; false (with a message) on mismatch.
template <class Ref>
bool validate(benchmark::State& state, const Tensor& out, const Tensor& a, const Tensor& b, Ref ref, double tol) {
  const float* o = out.data<float>();
  const float* x = a.data<float>();
  const float* y = b.defined() ? b.data<float>() : nullptr;
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 4099)) {
    const double want = ref(x[i], y ? y[i] : 0.0f);
    if (!(std::fabs(o[i] - want) <= tol * (1.0 + std::fabs(want)))) {
      state.SkipWithError(
          ("wrong result at " + std::to_string(i) + ": " + std::to_string(o[i]) + " vs " + std::to_string(want))
              .c_str());
      return false;
    }
  }
  return true;
}

void bm_copy(benchmark::State& state) {
  ember::set_num_threads(static_cast<int>(state.range(0)));
  const double before = copy_bandwidth();
  std::vector<char> src(kCopyBytes, 1), dst(kCopyBytes, 0);
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    parallel_copy(dst.data(), src.data(), kCopyBytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report(state, 2 * kCopyBytes, secs, before);
}

enum class Op { add, mul, gelu_erf, gelu_tanh };

void bm_op(benchmark::State& state, Op op, int64_t n) {
  ember::set_num_threads(static_cast<int>(state.range(0)));
  const Tensor a = random_input(n, -6.0f, 6.0f, 1);
  const Tensor b = random_input(n, -6.0f, 6.0f, 2);
  auto run = [&]() -> Tensor {
    switch (op) {
      case Op::add: return a + b;
      case Op::mul: return a * b;
      case Op::gelu_erf: return ember::gelu(a);
      case Op::gelu_tanh: return ember::gelu(a, "tanh");
    }
    return Tensor();
  };
  {
    const Tensor out = run();
    bool ok = true;
    switch (op) {
      case Op::add:
        ok = validate(
            state, out, a, b, [](float x, float y) { return double(x) + y; }, 1e-6);
        break;
      case Op::mul:
        ok = validate(
            state, out, a, b, [](float x, float y) { return double(x) * y; }, 1e-6);
        break;
      case Op::gelu_erf:
        ok = validate(
            state, out, a, Tensor(), [](float x, float) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, 1e-5);
        break;
      case Op::gelu_tanh:
        ok = validate(
            state, out, a, Tensor(),
            [](float x, float) {
              return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * double(x) * x * x)));
            },
            1e-5);
        break;
    }
    if (!ok) return;
  }
  const double before = copy_bandwidth();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Tensor out = run();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t operands = (op == Op::add || op == Op::mul) ? 3 : 2;
  report(state, operands * n * 4, secs, before);
}

void register_all() {
  benchmark::RegisterBenchmark("copy/64MiB", bm_copy)->Arg(2)->Arg(1)->ArgName("threads")->UseRealTime();
  const std::pair<const char*, Op> ops[] = {
      {"add", Op::add}, {"mul", Op::mul}, {"gelu_erf", Op::gelu_erf}, {"gelu_tanh", Op::gelu_tanh}};
  const std::pair<const char*, int64_t> sizes[] = {{"16M", int64_t{16} << 20}, {"1M", int64_t{1} << 20}};
  for (const auto& [sname, n] : sizes)
    for (const auto& [oname, op] : ops) {
      const std::string name = std::string(oname) + "/" + sname;
      benchmark::RegisterBenchmark(name.c_str(), [op = op, n = n](benchmark::State& s) { bm_op(s, op, n); })
          ->Arg(2)
          ->Arg(1)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
