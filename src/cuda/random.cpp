// Host side of the random fills on CUDA (kernels/random.cu): the same counter reservation as the
// CPU fills of src/ops/random.cpp (words per element by dtype and range; nothing for an empty
// tensor), then one launch on the current stream. Nothing waits for the device.
#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"

namespace ember::cuda_backend {

void random_fill(const Tensor& out, const RandomSpec& spec, Generator& gen) {
  const char* op = spec.dist == RandomDist::uniform  ? "uniform"
                   : spec.dist == RandomDist::normal ? "normal"
                   : spec.dist == RandomDist::randint ? "randint"
                                                      : "bernoulli";
  const int dev = out.device().index;
  check_device(dev, op);
  EMBER_CHECK(out.is_contiguous(), ValueError, op, " on CUDA: expected a contiguous output");
  const DType dt = out.dtype();
  kernels::RandomParams p;
  p.a = spec.a;
  p.b = spec.b;
  switch (spec.dist) {
    case RandomDist::uniform:
    case RandomDist::normal:
      EMBER_CHECK(is_floating(dt), DTypeError, op, ": expected a floating-point dtype, got ", dtype_name(dt));
      p.op = spec.dist == RandomDist::uniform ? kernels::RandomOp::uniform : kernels::RandomOp::normal;
      break;
    case RandomDist::randint:
      EMBER_CHECK(dt != kBool, DTypeError, op, ": dtype bool is not supported");
      EMBER_CHECK(spec.low < spec.high, ValueError, op, ": expected low < high, got low = ", spec.low,
                  " and high = ", spec.high);
      p.op = kernels::RandomOp::randint;
      p.low = spec.low;
      p.range = static_cast<uint64_t>(spec.high) - static_cast<uint64_t>(spec.low);
      break;
    case RandomDist::bernoulli: p.op = kernels::RandomOp::bernoulli; break;
  }
  const int64_t n = out.numel();
  if (n == 0) return;  // the CPU fills reserve nothing either
  const auto t = kernel_elem_type(dt);
  const GeneratorState s =
      gen.reserve(static_cast<uint64_t>(kernels::random_words_per_element(t, p)) * static_cast<uint64_t>(n));
  DeviceGuard guard(dev);
  EMBER_CUDA_CHECK(kernels::random_fill(t, out.data_ptr(), n, p, s.seed, s.offset, current_stream(dev)));
}

}  // namespace ember::cuda_backend
