// softmax / log_softmax over the rows of an f32 matrix, forward and backward, at 1 and 2 threads.
//
// Shapes: 4096 x 1000 (classifier logits) and 65536 x 128 (attention rows, B*H*T x T).
// Bytes counted per iteration: forward reads x and writes y (2 * numel * 4); backward reads
// gy and y and writes gx (3 * numel * 4). Counter pct_of_stream: GB/s over MACHINE.md's STREAM
// copy bandwidth (31 GB/s on 1 thread, 35 on 2). Each configuration is validated against a
// double-precision reference on sampled rows before it is timed.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>

#include "ember/ember.hpp"

namespace {

double stream_gbs(int threads) { return threads == 1 ? 31.0 : 35.0; }

ember::Tensor random_matrix(int64_t rows, int64_t cols) {
  ember::Tensor t = ember::empty({rows, cols});
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> u(-8.f, 8.f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(gen);
  return t;
}

/// Compares sampled rows of y = (log_)softmax(x) with a double-precision reference.
bool validate(const ember::Tensor& x, const ember::Tensor& y, bool log, std::string* why) {
  const int64_t rows = x.size(0), cols = x.size(1);
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  for (int64_t r = 0; r < rows; r += std::max<int64_t>(1, rows / 64)) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(px[r * cols + j]));
    for (int64_t j = 0; j < cols; ++j) s += std::exp(px[r * cols + j] - m);
    for (int64_t j = 0; j < cols; ++j) {
      const double ref = log ? px[r * cols + j] - m - std::log(s) : std::exp(px[r * cols + j] - m) / s;
      const double got = py[r * cols + j];
      if (!(std::fabs(got - ref) <= 1e-5 * std::fabs(ref) + 1e-7)) {
        *why = "row " + std::to_string(r) + " col " + std::to_string(j) + ": got " + std::to_string(got) +
               ", expected " + std::to_string(ref);
        return false;
      }
    }
  }
  return true;
}

void set_rate_counters(benchmark::State& state, int64_t bytes_per_iter, int threads) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iter);
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(bytes_per_iter) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_of_stream"] =
      benchmark::Counter(100.0 * static_cast<double>(bytes_per_iter) * 1e-9 / stream_gbs(threads),
                         benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Softmax(benchmark::State& state, bool log) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  ember::set_num_threads(threads);
  ember::Tensor x = random_matrix(rows, cols);
  ember::Tensor y = log ? ember::log_softmax(x, 1) : ember::softmax(x, 1);
  std::string why;
  if (!validate(x, y, log, &why)) {
    state.SkipWithError(("wrong result: " + why).c_str());
    return;
  }
  for (auto _ : state) {
    y = log ? ember::log_softmax(x, 1) : ember::softmax(x, 1);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_rate_counters(state, 2 * rows * cols * 4, threads);
}

void BM_SoftmaxBackward(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  ember::set_num_threads(threads);
  ember::Tensor x = random_matrix(rows, cols).requires_grad_(true);
  ember::Tensor gy = random_matrix(rows, cols);
  for (auto _ : state) {
    ember::Tensor y = ember::softmax(x, 1);
    y.backward(gy);
    benchmark::DoNotOptimize(x.grad().data_ptr());
    state.PauseTiming();
    x.set_grad(ember::Tensor());
    state.ResumeTiming();
  }
  // forward (2 passes of bytes) + backward (3)
  set_rate_counters(state, 5 * rows * cols * 4, threads);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2}) {
    b->Args({4096, 1000, t});
    b->Args({65536, 128, t});
  }
  b->ArgNames({"rows", "cols", "threads"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_Softmax, softmax, false)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Softmax, log_softmax, true)->Apply(shapes);
BENCHMARK(BM_SoftmaxBackward)->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
