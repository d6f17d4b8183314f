// MNIST-format image classification sets (MNIST, Fashion-MNIST) read from their IDX files.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "ember/data/dataset.hpp"

namespace ember::data {

/// Per-pixel normalisation applied after scaling to [0, 1]: (p - mean) / std.
struct Normalize {
  float mean = 0.0f;
  float std = 1.0f;
};

struct MNISTOptions {
  /// Off by default: x stays in [0, 1].
  std::optional<Normalize> normalize;
};

/// An MNIST-format set: `<split>-images-idx3-ubyte[.gz]` and `<split>-labels-idx1-ubyte[.gz]`
/// in a directory, split "train" or "t10k". x of an example is float32 (1, 28, 28) = pixels
/// / 255 (then normalised when asked); y is an int64 class index (a 0-d tensor per example, a
/// 1-d (B) tensor per batch). The pixels are kept as uint8 and converted per batch, so the
/// training set takes 47 MB, not 188.
class EMBER_API MNIST : public Dataset {
 public:
  /// Reads `<dir>/<split>-{images-idx3,labels-idx1}-ubyte` (".gz" preferred when both exist).
  /// Throws IOError when a file is missing (naming it) or malformed, or when the image and
  /// label counts differ; ValueError for a bad split or std <= 0.
  MNIST(const std::string& dir, const std::string& split, MNISTOptions options = {});

  int64_t size() const override { return images_.size(0); }
  Example get(int64_t index) const override;
  Example get_batch(const std::vector<int64_t>& indices) const override;

  /// The raw pixels, uint8 (N, 28, 28), and labels, int64 (N).
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }
  int64_t num_classes() const { return 10; }

 protected:
  /// As above; `missing_hint` is appended to "not found" messages (what to install).
  MNIST(const std::string& dir, const std::string& split, MNISTOptions options, const std::string& missing_hint);

 private:
  void fill_x(float* out, const std::vector<int64_t>& indices) const;

  Tensor images_;                 // uint8 (N, H, W)
  Tensor labels_;                 // int64 (N)
  std::array<float, 256> lut_{};  // pixel value -> float
};

/// Fashion-MNIST (Zalando): 60,000 training and 10,000 test 28×28 grey images of clothes in
/// 10 classes. Debian ships it in the package dataset-fashion-mnist.
class EMBER_API FashionMNIST : public MNIST {
 public:
  static constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";
  /// Mean and standard deviation of the training pixels in [0, 1].
  static constexpr Normalize kNormalize{0.2860f, 0.3530f};

  FashionMNIST(const std::string& dir, const std::string& split, MNISTOptions options = {});
  /// The 60,000 training images.
  static FashionMNIST train(const std::string& dir = kDefaultDir, MNISTOptions options = {});
  /// The 10,000 test images.
  static FashionMNIST test(const std::string& dir = kDefaultDir, MNISTOptions options = {});
  /// "T-shirt/top", "Trouser", ..., "Ankle boot", indexed by label.
  static const std::array<const char*, 10>& class_names();
};

}  // namespace ember::data
