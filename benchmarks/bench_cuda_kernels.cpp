// Memory-bound CUDA kernels against a device-to-device copy of the same bytes: softmax and
// log_softmax over rows, LayerNorm forward / backward / both, cross-entropy forward / forward +
// backward. 64M elements per tensor (rows × cols = 2^26) and, for cross-entropy, an LLM head
// (8192 tokens × 50304 classes, 412M logits). Each reports GBps (bytes read + written per second
// of GPU time, CUDA events), copy_GBps (cudaMemcpyAsync D2D moving the same bytes, measured in
// this binary right after) and pct_of_copy; the issue asks for >= 80% at >= 64M elements.
//
// Bytes counted (n = rows·cols, s = element size; per-row statistics and per-channel parameters
// are below 0.1% and left out): softmax n·s read + n·s written; LayerNorm forward x read, y
// written (2ns), backward x and dy read, dx written (3ns); cross-entropy forward the logits read
// once (ns; 4 bytes per row of lse/nll out), backward logits read and the gradient written (2ns).
// Results are sanity-checked on a host copy of row 0 after the warm-up call.
//
//   bench_cuda_kernels --benchmark_filter=CrossEntropy --benchmark_counters_tabular=true
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bench_cuda_common.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;

namespace {

constexpr int64_t kElems = int64_t{64} << 20;
const Device kGpu = Device::cuda(0);

DType dtype_of(int64_t i) { return i == 0 ? kFloat32 : kBFloat16; }

/// A (rows, cols) tensor on the device whose rows repeat 64 random CPU rows in N(0, 1) (filling
/// hundreds of millions of elements on the host would dominate the run).
Tensor device_input(int64_t rows, int64_t cols, DType dt, uint64_t seed) {
  const int64_t block = std::min<int64_t>(64, rows);
  Generator gen(seed);
  Tensor small = randn({1, block, cols}, {}, &gen).to(dt).to(kGpu);
  return small.expand({rows / block, block, cols}).contiguous().view({rows, cols});
}

/// Row 0 of t as doubles (one D2H copy, outside the timed loop).
std::vector<double> row0(const Tensor& t) { return t.select(0, 0).cpu().to(kFloat64).to_vector<double>(); }

std::string label(DType dt, int64_t rows, int64_t cols) {
  return std::string(dtype_name(dt)) + " " + std::to_string(rows) + "x" + std::to_string(cols);
}

// Runs body(); an ember::Error (an op or dtype the backend lacks) skips the benchmark with its text.
template <class F>
void guarded(benchmark::State& state, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// ---- softmax / log_softmax over the last dim: args cols, dtype (0 f32, 1 bf16), log.
void BM_Softmax(benchmark::State& state) {
  guarded(state, [&] {
    const int64_t cols = state.range(0), rows = kElems / cols;
    const DType dt = dtype_of(state.range(1));
    const bool log = state.range(2) != 0;
    const Tensor x = device_input(rows, cols, dt, 1);
    const Tensor y = empty({rows, cols}, {.dtype = dt, .device = kGpu});
    const cpu::ReduceGeom g{.outer = rows, .size = cols, .inner = 1};
    cuda_backend::softmax(y, x, g, log);
    double sum = 0;
    for (double v : row0(y)) sum += log ? std::exp(v) : v;
    if (!(std::abs(sum - 1.0) < 0.02)) {
      state.SkipWithError(("row 0 of the result sums to " + std::to_string(sum) + ", not 1").c_str());
      return;
    }
    const double s = ember_bench::time_with_events(state, [&] { cuda_backend::softmax(y, x, g, log); });
    ember_bench::report_bandwidth(state, 2 * kElems * static_cast<int64_t>(itemsize(dt)), s);
    state.SetLabel(std::string(log ? "log_softmax " : "softmax ") + label(dt, rows, cols));
  });
}

// ---- LayerNorm over the last dim with weight and bias: args cols, dtype, mode (0 forward,
// 1 backward, 2 forward + backward).
void BM_LayerNorm(benchmark::State& state) {
  guarded(state, [&] {
    const int64_t cols = state.range(0), rows = kElems / cols;
    const DType dt = dtype_of(state.range(1));
    const int64_t mode = state.range(2);
    const TensorOptions o{.dtype = dt, .device = kGpu};
    const Tensor x = device_input(rows, cols, dt, 2);
    const Tensor dy = device_input(rows, cols, dt, 3);
    const Tensor w = full({cols}, 1.0, o), b = zeros({cols}, o);
    const Tensor y = empty({rows, cols}, o), dx = empty({rows, cols}, o);
    const Tensor dw = empty({cols}, o), db = empty({cols}, o);
    const Tensor mean = empty({rows}, {.dtype = kFloat32, .device = kGpu});
    const Tensor rstd = empty({rows}, {.dtype = kFloat32, .device = kGpu});
    cuda_backend::layer_norm_forward(y, mean, rstd, x, w, b, 1e-5);
    cuda_backend::layer_norm_backward(dx, dw, db, dy, x, w, mean, rstd);
    // Row 0 of y: mean 0 and variance 1 (weight 1, bias 0).
    const std::vector<double> r = row0(y);
    double m = 0, v = 0;
    for (double e : r) m += e;
    m /= static_cast<double>(r.size());
    for (double e : r) v += (e - m) * (e - m);
    v /= static_cast<double>(r.size());
    if (!(std::abs(m) < 0.02 && std::abs(v - 1.0) < 0.05)) {
      state.SkipWithError(
          ("row 0 of layer_norm has mean " + std::to_string(m) + ", variance " + std::to_string(v)).c_str());
      return;
    }
    const int64_t n = kElems * static_cast<int64_t>(itemsize(dt));
    double s = 0;
    if (mode == 0) {
      s = ember_bench::time_with_events(state, [&] { cuda_backend::layer_norm_forward(y, mean, rstd, x, w, b, 1e-5); });
      ember_bench::report_bandwidth(state, 2 * n, s);
    } else if (mode == 1) {
      s = ember_bench::time_with_events(state,
                                        [&] { cuda_backend::layer_norm_backward(dx, dw, db, dy, x, w, mean, rstd); });
      ember_bench::report_bandwidth(state, 3 * n, s);
    } else {
      s = ember_bench::time_with_events(state, [&] {
        cuda_backend::layer_norm_forward(y, mean, rstd, x, w, b, 1e-5);
        cuda_backend::layer_norm_backward(dx, dw, db, dy, x, w, mean, rstd);
      });
      ember_bench::report_bandwidth(state, 5 * n, s);
    }
    static const char* kModes[] = {"forward ", "backward ", "forward+backward "};
    state.SetLabel(kModes[mode] + label(dt, rows, cols));
  });
}

// ---- cross-entropy (f32 logits, int64 targets, mean reduction's row scale): args rows, cols,
// mode (0 forward, 1 forward + backward).
void BM_CrossEntropy(benchmark::State& state) {
  guarded(state, [&] {
    const int64_t rows = state.range(0), cols = state.range(1);
    const bool backward = state.range(2) != 0;
    const TensorOptions o{.dtype = kFloat32, .device = kGpu};
    const Tensor x = device_input(rows, cols, kFloat32, 4);
    Generator gen(5);
    const Tensor target = randint(0, cols, {rows}, {.dtype = kInt64}, &gen).to(kGpu);
    const Tensor lse = empty({rows}, o), nll = empty({rows}, o), smooth = empty({rows}, o), wt = empty({rows}, o);
    const Tensor scale = full({rows}, 1.0 / static_cast<double>(rows), o);
    const Tensor grad = empty({rows, cols}, o);
    cuda_backend::cross_entropy_forward(x, target, Tensor(), -100, lse, nll, smooth, wt);
    cuda_backend::cross_entropy_backward(x, target, Tensor(), -100, 0.0, lse, scale, grad);
    // Row 0: lse against a host log-sum-exp; the gradient row sums to 0.
    const std::vector<double> xr = row0(x), gr = row0(grad);
    const double mx = *std::max_element(xr.begin(), xr.end());
    double se = 0, gs = 0;
    for (double v : xr) se += std::exp(v - mx);
    for (double v : gr) gs += v;
    const double want = mx + std::log(se), got = lse.select(0, 0).item<double>();
    if (!(std::abs(got - want) < 1e-3 * (1 + std::abs(want)) && std::abs(gs) < 1e-6)) {
      state.SkipWithError(("row 0: lse " + std::to_string(got) + " (host " + std::to_string(want) + "), gradient sum " +
                           std::to_string(gs))
                              .c_str());
      return;
    }
    const int64_t n = rows * cols * 4;
    double s = 0;
    if (!backward) {
      s = ember_bench::time_with_events(
          state, [&] { cuda_backend::cross_entropy_forward(x, target, Tensor(), -100, lse, nll, smooth, wt); });
      ember_bench::report_bandwidth(state, n, s);
    } else {
      s = ember_bench::time_with_events(state, [&] {
        cuda_backend::cross_entropy_forward(x, target, Tensor(), -100, lse, nll, smooth, wt);
        cuda_backend::cross_entropy_backward(x, target, Tensor(), -100, 0.0, lse, scale, grad);
      });
      ember_bench::report_bandwidth(state, 3 * n, s);
    }
    state.SetLabel(std::string(backward ? "forward+backward " : "forward ") + label(kFloat32, rows, cols));
  });
}

// ---- the reference: a D2D copy of a 64M-element f32 tensor (pct_of_copy ~100 by construction).
void BM_CopyD2D(benchmark::State& state) {
  const Tensor x = zeros({kElems}, {.device = kGpu});
  const Tensor y = empty({kElems}, {.device = kGpu});
  const auto bytes = static_cast<size_t>(x.nbytes());
  const double s = ember_bench::time_with_events(
      state, [&] { cudaMemcpyAsync(y.data_ptr(), x.data_ptr(), bytes, cudaMemcpyDeviceToDevice); });
  ember_bench::report_bandwidth(state, 2 * static_cast<int64_t>(bytes), s);
  state.SetLabel("f32 64M");
}

void softmax_args(benchmark::internal::Benchmark* b) {
  for (int64_t log : {0, 1})
    for (int64_t dt : {0, 1})
      for (int64_t cols : {1024, 8192}) b->Args({cols, dt, log});
}

void layer_norm_args(benchmark::internal::Benchmark* b) {
  for (int64_t mode : {0, 1, 2})
    for (int64_t dt : {0, 1})
      for (int64_t cols : {1024, 8192}) b->Args({cols, dt, mode});
}

void cross_entropy_args(benchmark::internal::Benchmark* b) {
  for (int64_t mode : {0, 1}) {
    b->Args({65536, 1024, mode});  // 64M logits
    b->Args({8192, 50304, mode});  // an LLM head: 8192 tokens, GPT-2's padded vocabulary
  }
}

}  // namespace

BENCHMARK(BM_CopyD2D)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Softmax)->Apply(softmax_args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LayerNorm)->Apply(layer_norm_args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CrossEntropy)->Apply(cross_entropy_args)->UseManualTime()->Unit(benchmark::kMicrosecond);

EMBER_CUDA_BENCHMARK_MAIN()
