// Random crop and flip on float samples: plain loops, run on loader workers.
#include "ember/data/transforms.hpp"

#include <algorithm>
#include <vector>

#include "ember/core/generator.hpp"

namespace ember::data {
namespace {

// Keeps augmentation counters apart from the shuffle's (see dataloader.cpp), which use a
// different top bit of the high counter word.
constexpr uint64_t kAugmentDomain = uint64_t{1} << 62;

struct Plane {
  int64_t planes, h, w;
};

Plane plane_of(const Shape& s) {
  const int64_t nd = static_cast<int64_t>(s.size());
  int64_t planes = 1;
  for (int64_t i = 0; i + 2 < nd; ++i) planes *= s[i];
  return {planes, s[nd - 2], s[nd - 1]};
}

}  // namespace

void sample_random_words(const SampleKey& key, uint32_t stream, uint32_t out[4]) {
  // Counter = (sample index, domain | epoch << 16 | stream): unique per (epoch, index, stream)
  // for epochs below 2^46 and 65536 streams.
  const uint64_t hi = kAugmentDomain | (static_cast<uint64_t>(key.epoch) << 16) | (stream & 0xFFFFu);
  Philox::generate(key.seed, static_cast<uint64_t>(key.index), hi, out);
}

RandomCrop::RandomCrop(int64_t padding, float fill) : padding_(padding), fill_(fill) {
  EMBER_CHECK(padding >= 0, ValueError, "RandomCrop: padding must be >= 0, got ", padding);
}

void RandomCrop::apply(float* x, const Shape& sample_shape, const SampleKey& key, uint32_t stream) const {
  if (padding_ == 0) return;
  uint32_t r[4];
  sample_random_words(key, stream, r);
  const uint64_t span = static_cast<uint64_t>(2 * padding_ + 1);
  // Shift of the window; the output pixel (i, j) reads input (i + dy, j + dx).
  const int64_t dy = static_cast<int64_t>(r[0] % span) - padding_;
  const int64_t dx = static_cast<int64_t>(r[1] % span) - padding_;
  if (dx == 0 && dy == 0) return;
  const Plane p = plane_of(sample_shape);
  std::vector<float> src(static_cast<size_t>(p.h * p.w));
  for (int64_t c = 0; c < p.planes; ++c) {
    float* plane = x + c * p.h * p.w;
    std::copy(plane, plane + p.h * p.w, src.begin());
    for (int64_t i = 0; i < p.h; ++i) {
      const int64_t si = i + dy;
      for (int64_t j = 0; j < p.w; ++j) {
        const int64_t sj = j + dx;
        const bool inside = si >= 0 && si < p.h && sj >= 0 && sj < p.w;
        plane[i * p.w + j] = inside ? src[si * p.w + sj] : fill_;
      }
    }
  }
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
}

void RandomHorizontalFlip::apply(float* x, const Shape& sample_shape, const SampleKey& key, uint32_t stream) const {
  uint32_t r[4];
  sample_random_words(key, stream, r);
  if (!(Philox::uniform_double(r[0], r[1]) < p_)) return;
  const Plane p = plane_of(sample_shape);
  for (int64_t row = 0; row < p.planes * p.h; ++row) std::reverse(x + row * p.w, x + (row + 1) * p.w);
}

void apply_transforms(Tensor& x, const std::vector<int64_t>& indices, const TransformList& transforms, uint64_t seed,
                      int64_t epoch) {
  if (transforms.empty()) return;
  EMBER_CHECK(x.dtype() == kFloat32, DTypeError, "apply_transforms: x must be float32, got ", dtype_name(x.dtype()));
  EMBER_CHECK(x.is_cpu(), NotImplemented, "apply_transforms: CUDA tensors are not supported yet");
  EMBER_CHECK(x.dim() >= 3, ShapeError, "apply_transforms: x must be (B, ..., H, W), got shape ", shape_str(x.shape()));
  EMBER_CHECK(x.size(0) == static_cast<int64_t>(indices.size()), ShapeError, "apply_transforms: x has ", x.size(0),
              " samples but ", indices.size(), " indices were given");
  EMBER_CHECK(x.is_contiguous(), ValueError, "apply_transforms: x must be contiguous");
  const Shape sample_shape(x.shape().begin() + 1, x.shape().end());
  const int64_t per_sample = numel_of(sample_shape);
  float* base = x.data<float>();
  for (size_t b = 0; b < indices.size(); ++b) {
    const SampleKey key{seed, epoch, indices[b]};
    for (size_t t = 0; t < transforms.size(); ++t)
      transforms[t]->apply(base + static_cast<int64_t>(b) * per_sample, sample_shape, key, static_cast<uint32_t>(t));
  }
}

}  // namespace ember::data
