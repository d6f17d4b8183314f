// Random tensors and ranges. Draws use a Philox generator (the default one unless given), so
// the same seed gives the same numbers on every thread count and device.
#pragma once

#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"

namespace ember {

/// [start, end) in steps of `step`; int64 when all arguments are integers, else opts.dtype.
EMBER_API Tensor arange(const Scalar& end, const TensorOptions& opts = {.dtype = kInt64});
EMBER_API Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = 1,
                        const TensorOptions& opts = {.dtype = kInt64});
/// `steps` evenly spaced values from start to end inclusive.
EMBER_API Tensor linspace(double start, double end, int64_t steps, const TensorOptions& opts = {});
/// Identity matrix n×m (m = n when negative).
EMBER_API Tensor eye(int64_t n, int64_t m = -1, const TensorOptions& opts = {});

/// Uniform on [0, 1).
EMBER_API Tensor rand(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);
/// Standard normal (Box–Muller over Philox uniforms).
EMBER_API Tensor randn(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);
/// Integers uniform on [low, high).
EMBER_API Tensor randint(int64_t low, int64_t high, const Shape& shape, const TensorOptions& opts = {.dtype = kInt64},
                         Generator* gen = nullptr);
EMBER_API Tensor rand_like(const Tensor& t, Generator* gen = nullptr);
EMBER_API Tensor randn_like(const Tensor& t, Generator* gen = nullptr);
/// A random permutation of 0..n-1 (int64).
EMBER_API Tensor randperm(int64_t n, Generator* gen = nullptr);

/// In-place fills (no autograd; for initialisation).
EMBER_API Tensor& uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
EMBER_API Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
/// 1 with probability p, else 0, in t's dtype.
EMBER_API Tensor& bernoulli_(Tensor& t, double p, Generator* gen = nullptr);

/// Zeroes each element with probability p and scales the rest by 1/(1-p) when `train`;
/// the identity otherwise. The mask comes from the generator's Philox stream.
EMBER_API Tensor dropout(const Tensor& x, double p, bool train = true, Generator* gen = nullptr);

}  // namespace ember
