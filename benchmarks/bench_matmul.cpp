// f32 matmul: Ember (oneDNN / Eigen behind ember::matmul) against the machine's FP32 FMA peak
// and, when built with it, OpenBLAS's cblas_sgemm on the same shapes and thread counts.
//
// Shapes: square N = 256 ... 2048, and the Fashion-MNIST MLP's GEMMs (M×N×K, op(A)·op(B)) as
// they appear in its forward and backward passes, and the GPT's batched attention products.
// Every shape runs at 1 and 2 threads.
// Counters: GFLOP/s (2·M·N·K per iteration), pct_of_peak (of MACHINE.md's AVX-512 FMA peak:
// 246 GFLOP/s on 1 thread, 478 on 2), ratio_vs_openblas (Ember's rate over OpenBLAS's, measured
// by the OpenBLAS benchmark registered just before, interleaved so both see the same machine).
//
// OpenBLAS reads OPENBLAS_CORETYPE at load time: scripts/bench-gemm runs this binary with and
// without it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "ember/ember.hpp"

#if EMBER_BENCH_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace {

struct GemmShape {
  int64_t m, n, k;
  bool trans_a, trans_b;
  std::string label;
  int64_t batch = 1;  // > 1: a batched product (3-d operands), as attention's
};

double peak_gflops(int threads) { return threads == 1 ? 246.0 : 478.0; }

// Operands in the layout the shape names: op(A) is (m, k); with trans_a, A is stored (k, m).
// Batched shapes put `batch` such matrices one after another.
struct Operands {
  ember::Tensor a_stored, b_stored;  // contiguous storage
  ember::Tensor a, b;                // logical op(A) (m, k), op(B) (k, n): views, no copies
};

Operands make_operands(const GemmShape& s) {
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Operands o;
  ember::Shape sa = s.trans_a ? ember::Shape{s.k, s.m} : ember::Shape{s.m, s.k};
  ember::Shape sb = s.trans_b ? ember::Shape{s.n, s.k} : ember::Shape{s.k, s.n};
  if (s.batch > 1) {
    sa.insert(sa.begin(), s.batch);
    sb.insert(sb.begin(), s.batch);
  }
  o.a_stored = ember::empty(sa);
  o.b_stored = ember::empty(sb);
  for (ember::Tensor* t : {&o.a_stored, &o.b_stored}) {
    float* p = t->data<float>();
    for (int64_t i = 0; i < t->numel(); ++i) p[i] = u(gen);
  }
  o.a = s.trans_a ? o.a_stored.transpose(-1, -2) : o.a_stored;
  o.b = s.trans_b ? o.b_stored.transpose(-1, -2) : o.b_stored;
  return o;
}

// Checks a row-major (batch, m, n) result at sampled positions against a dot product in double.
bool validate(const GemmShape& s, const Operands& o, const float* c_all, std::string* why) {
  std::mt19937 gen(7);
  for (int t = 0; t < 256; ++t) {
    const int64_t bi = static_cast<int64_t>(gen() % static_cast<uint64_t>(s.batch));
    const float* a = o.a_stored.data<float>() + bi * s.m * s.k;
    const float* b = o.b_stored.data<float>() + bi * s.k * s.n;
    const float* c = c_all + bi * s.m * s.n;
    const int64_t i = static_cast<int64_t>(gen() % static_cast<uint64_t>(s.m));
    const int64_t j = static_cast<int64_t>(gen() % static_cast<uint64_t>(s.n));
    double ref = 0, mag = 0;
    for (int64_t p = 0; p < s.k; ++p) {
      const double x = s.trans_a ? a[p * s.m + i] : a[i * s.k + p];
      const double y = s.trans_b ? b[j * s.k + p] : b[p * s.n + j];
      ref += x * y;
      mag += std::abs(x * y);
    }
    const double got = c[i * s.n + j];
    if (!(std::abs(got - ref) <= 1e-5 * mag + 1e-6)) {
      *why = "mismatch at (" + std::to_string(i) + ", " + std::to_string(j) + "): got " + std::to_string(got) +
             ", expected " + std::to_string(ref);
      return false;
    }
  }
  return true;
}

// Lets the other library's idle worker threads (OpenBLAS spins for a while after each call)
// fall asleep before a measurement starts. Not timed.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

// OpenBLAS's measured rate (FLOP/s) per benchmark name suffix, for ratio_vs_openblas.
std::map<std::string, double>& openblas_rates() {
  static std::map<std::string, double> rates;
  return rates;
}

double flop_count(const GemmShape& s) {
  return 2.0 * static_cast<double>(s.batch) * static_cast<double>(s.m) * static_cast<double>(s.n) *
         static_cast<double>(s.k);
}

// Plain counters from our own wall-clock timing of the loop (rate counters would print "/s"
// after a unit that already is a rate). Returns the rate in FLOP/s.
double set_counters(benchmark::State& state, const GemmShape& s, int threads, double secs) {
  const double rate = secs > 0 ? flop_count(s) * static_cast<double>(state.iterations()) / secs : 0.0;
  state.counters["GFLOP/s"] = rate * 1e-9;
  state.counters["pct_of_peak"] = rate * 1e-9 / peak_gflops(threads) * 100.0;
  return rate;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void bench_ember(benchmark::State& state, GemmShape s, int threads, std::string key) {
  ember::set_num_threads(threads);
  Operands o = make_operands(s);
  ember::Tensor c = ember::matmul(o.a, o.b);  // also warms oneDNN's JIT kernels
  std::string why;
  if (!validate(s, o, c.data<float>(), &why)) {
    state.SkipWithError(("Ember result wrong: " + why).c_str());
    return;
  }
  settle();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ember::Tensor out = ember::matmul(o.a, o.b);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  const double rate = set_counters(state, s, threads, seconds_since(t0));
  const auto it = openblas_rates().find(key);
  if (it != openblas_rates().end() && it->second > 0) state.counters["ratio_vs_openblas"] = rate / it->second;
}

#if EMBER_BENCH_HAVE_OPENBLAS
void bench_openblas(benchmark::State& state, GemmShape s, int threads, std::string key) {
  openblas_set_num_threads(threads);
  Operands o = make_operands(s);
  ember::Tensor c = ember::empty({s.batch, s.m, s.n});
  auto run = [&] {
    // Batched: one call per matrix (cblas has no batched GEMM), each threaded by OpenBLAS.
    for (int64_t bi = 0; bi < s.batch; ++bi) {
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.0f,
                  o.a_stored.data<float>() + bi * s.m * s.k, static_cast<int>(s.trans_a ? s.m : s.k),
                  o.b_stored.data<float>() + bi * s.k * s.n, static_cast<int>(s.trans_b ? s.k : s.n), 0.0f,
                  c.data<float>() + bi * s.m * s.n, static_cast<int>(s.n));
    }
  };
  run();
  std::string why;
  if (!validate(s, o, c.data<float>(), &why)) {
    state.SkipWithError(("OpenBLAS result wrong: " + why).c_str());
    return;
  }
  settle();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data_ptr());
  }
  openblas_rates()[key] = set_counters(state, s, threads, seconds_since(t0));
  openblas_set_num_threads(1);  // park its pool while Ember runs
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::vector<GemmShape> shapes = {
      {256, 256, 256, false, false, "256x256x256_NN"},
      {512, 512, 512, false, false, "512x512x512_NN"},
      {1024, 1024, 1024, false, false, "1024x1024x1024_NN"},
      {2048, 2048, 2048, false, false, "2048x2048x2048_NN"},
      {128, 256, 784, false, true, "128x256x784_NT_fc1_fwd"},
      {128, 784, 256, false, false, "128x784x256_NN_fc1_dgrad"},
      {784, 256, 128, true, false, "784x256x128_TN_fc1_wgrad"},
      {128, 128, 256, false, true, "128x128x256_NT_fc2_fwd"},
      // The byte-level GPT's attention (B=32, H=4, T=128, head dim 32): scores q·kᵀ, then att·v.
      {128, 128, 32, false, true, "bmm128_128x128x32_NT_attn_qk", 128},
      {128, 32, 128, false, false, "bmm128_128x32x128_NN_attn_av", 128},
  };
  for (const GemmShape& s : shapes) {
    for (int threads : {1, 2}) {
      const std::string key = s.label + "/threads:" + std::to_string(threads);
#if EMBER_BENCH_HAVE_OPENBLAS
      benchmark::RegisterBenchmark(("openblas/" + key).c_str(), bench_openblas, s, threads, key)->UseRealTime();
#endif
      benchmark::RegisterBenchmark(("ember/" + key).c_str(), bench_ember, s, threads, key)->UseRealTime();
    }
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
#if EMBER_BENCH_HAVE_OPENBLAS
  benchmark::AddCustomContext("openblas", "linked");
#else
  benchmark::AddCustomContext("openblas", "not found at build time");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
