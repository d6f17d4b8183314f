// Per-sample random augmentations, applied by the DataLoader to each batch's x. Randomness
// comes from Philox keyed by (seed, epoch, sample index, stream), never from a shared
// generator, so an augmented batch is the same whatever the number of workers.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::data {

/// Where a sample's random numbers come from: Philox words for (seed, epoch, index, stream).
struct SampleKey {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t index = 0;  // the example's index in the dataset (not its position in the batch)
};

/// Four random words for `key` and `stream` (one stream per transform in a pipeline).
EMBER_API void sample_random_words(const SampleKey& key, uint32_t stream, uint32_t out[4]);

/// An in-place augmentation of one sample.
class EMBER_API Transform {
 public:
  virtual ~Transform() = default;
  /// Modifies `x`, a float32 sample (..., H, W) stored contiguously, using randomness drawn only
  /// from (key, stream).
  virtual void apply(float* x, const Shape& sample_shape, const SampleKey& key, uint32_t stream) const = 0;
};

/// Pads H and W by `padding` zeros (or `fill`) on each side and crops back a random H×W
/// window: a shift by up to ±padding pixels (the standard CIFAR/MNIST augmentation).
/// With normalised inputs pass fill = -mean/std to pad with black.
class EMBER_API RandomCrop : public Transform {
 public:
  /// Throws ValueError for padding < 0.
  explicit RandomCrop(int64_t padding = 4, float fill = 0.0f);
  void apply(float* x, const Shape& sample_shape, const SampleKey& key, uint32_t stream) const override;

 private:
  int64_t padding_;
  float fill_;
};

/// Mirrors W with probability p.
class EMBER_API RandomHorizontalFlip : public Transform {
 public:
  /// Throws ValueError unless 0 <= p <= 1.
  explicit RandomHorizontalFlip(double p = 0.5);
  void apply(float* x, const Shape& sample_shape, const SampleKey& key, uint32_t stream) const override;

 private:
  double p_;
};

using TransformList = std::vector<std::shared_ptr<const Transform>>;

/// Applies `transforms` in order to every sample of a float32 CPU batch x (B, ..., H, W), in
/// place. indices[b] is the dataset index of sample b. Transform t uses stream t. Throws
/// DTypeError (not float32), ShapeError (fewer than 3 dims or indices.size() != B).
EMBER_API void apply_transforms(Tensor& x, const std::vector<int64_t>& indices, const TransformList& transforms,
                                uint64_t seed, int64_t epoch);

}  // namespace ember::data
