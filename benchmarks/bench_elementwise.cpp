// Large elementwise ops against this machine's copy bandwidth.
//
// Each op reports bytes/s (bytes read + written) and pct_of_copy = its bytes/s as a percentage
// of a parallel memcpy of 64 MiB measured in this binary with the same thread count (the
// "copy" benchmarks). Results are checked against std:: math before timing.
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
  ember::parallel_for(bytes, int64_t{1} << 20, [&](int64_t b, int64_t e) {
    std::memcpy(dst + b, src + b, static_cast<size_t>(e - b));
  });
}

/// Copy bandwidth (read + write bytes per second) with `threads` threads: best of 20 copies.
double copy_bandwidth(int threads) {
  static double cached[3] = {0, 0, 0};
  if (threads < 1 || threads > 2) threads = 2;
  if (cached[threads] > 0) return cached[threads];
  ember::set_num_threads(threads);
  std::vector<char> src(kCopyBytes, 1), dst(kCopyBytes, 0);
  double best = 0;
  for (int rep = 0; rep < 20; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_copy(dst.data(), src.data(), kCopyBytes);
    auto t1 = std::chrono::steady_clock::now();
    best = std::max(best, 2.0 * kCopyBytes / std::chrono::duration<double>(t1 - t0).count());
  }
  cached[threads] = best;
  return best;
}

void report(benchmark::State& state, int64_t bytes_per_iter, int threads) {
  const double total = static_cast<double>(bytes_per_iter) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(total));
  state.counters["pct_of_copy"] = benchmark::Counter(100.0 * total / copy_bandwidth(threads),
                                                     benchmark::Counter::kIsRate);
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
      state.SkipWithError(("wrong result at " + std::to_string(i) + ": " + std::to_string(o[i]) + " vs " +
                           std::to_string(want)).c_str());
      return false;
    }
  }
  return true;
}

void bm_copy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  copy_bandwidth(threads);
  ember::set_num_threads(threads);
  std::vector<char> src(kCopyBytes, 1), dst(kCopyBytes, 0);
  for (auto _ : state) {
    parallel_copy(dst.data(), src.data(), kCopyBytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  report(state, 2 * kCopyBytes, threads);
}

enum class Op { add, mul, gelu_erf, gelu_tanh };

void bm_op(benchmark::State& state, Op op, int64_t n) {
  const int threads = static_cast<int>(state.range(0));
  copy_bandwidth(threads);
  ember::set_num_threads(threads);
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
      case Op::add: ok = validate(state, out, a, b, [](float x, float y) { return double(x) + y; }, 1e-6); break;
      case Op::mul: ok = validate(state, out, a, b, [](float x, float y) { return double(x) * y; }, 1e-6); break;
      case Op::gelu_erf:
        ok = validate(state, out, a, Tensor(), [](float x, float) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
                      1e-5);
        break;
      case Op::gelu_tanh:
        ok = validate(state, out, a, Tensor(), [](float x, float) {
          return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * double(x) * x * x)));
        }, 1e-5);
        break;
    }
    if (!ok) return;
  }
  for (auto _ : state) {
    Tensor out = run();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  const int64_t operands = (op == Op::add || op == Op::mul) ? 3 : 2;
  report(state, operands * n * 4, threads);
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
