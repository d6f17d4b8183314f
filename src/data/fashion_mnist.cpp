// MNIST-format datasets. Pixels stay uint8; a 256-entry table turns them into floats per
// batch (exact: the table holds exactly what (p / 255 - mean) / std gives in float).
#include "ember/data/fashion_mnist.hpp"

#include <filesystem>

#include "ember/data/idx.hpp"

namespace ember::data {
namespace {

// `<dir>/<stem>.gz` or `<dir>/<stem>`; IOError with `hint` when neither exists.
std::string find_file(const std::string& dir, const std::string& stem, const std::string& hint) {
  namespace fs = std::filesystem;
  fs::path base = fs::path(dir) / stem;
  std::error_code ec;
  fs::path gz = base;
  gz += ".gz";
  if (fs::exists(gz, ec)) return gz.string();
  if (fs::exists(base, ec)) return base.string();
  EMBER_THROW(IOError, "MNIST: ", gz.string(), " not found", hint);
}

}  // namespace

MNIST::MNIST(const std::string& dir, const std::string& split, MNISTOptions options) : MNIST(dir, split, options, "") {}

MNIST::MNIST(const std::string& dir, const std::string& split, MNISTOptions options, const std::string& missing_hint) {
  EMBER_CHECK(split == "train" || split == "t10k", ValueError, "MNIST: split must be \"train\" or \"t10k\", got \"",
              split, "\"");
  Normalize norm = options.normalize.value_or(Normalize{});
  EMBER_CHECK(norm.std > 0.0f, ValueError, "MNIST: normalisation std must be positive, got ", norm.std);

  const std::string image_path = find_file(dir, split + "-images-idx3-ubyte", missing_hint);
  const std::string label_path = find_file(dir, split + "-labels-idx1-ubyte", missing_hint);
  images_ = read_idx(image_path);
  Tensor labels = read_idx(label_path);
  EMBER_CHECK(images_.dtype() == kUInt8 && images_.dim() == 3, IOError, "MNIST: ", image_path,
              " should hold uint8 images (N, H, W), found ", dtype_name(images_.dtype()), " ",
              shape_str(images_.shape()));
  EMBER_CHECK(labels.dtype() == kUInt8 && labels.dim() == 1, IOError, "MNIST: ", label_path,
              " should hold uint8 labels (N), found ", dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  EMBER_CHECK(labels.size(0) == images_.size(0), IOError, "MNIST: ", image_path, " holds ", images_.size(0),
              " images but ", label_path, " holds ", labels.size(0), " labels");

  labels_ = empty({labels.size(0)}, {.dtype = kInt64});
  const uint8_t* l = labels.data<uint8_t>();
  int64_t* out = labels_.data<int64_t>();
  for (int64_t i = 0; i < labels.size(0); ++i) {
    EMBER_CHECK(l[i] < 10, IOError, "MNIST: ", label_path, ": label ", int{l[i]}, " at index ", i,
                " is not a class in 0..9");
    out[i] = l[i];
  }
  for (int p = 0; p < 256; ++p) lut_[p] = (static_cast<float>(p) / 255.0f - norm.mean) / norm.std;
}

void MNIST::fill_x(float* out, const std::vector<int64_t>& indices) const {
  const int64_t n = images_.size(0);
  const int64_t pixels = images_.size(1) * images_.size(2);
  const uint8_t* src = images_.data<uint8_t>();
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t r = indices[i];
    EMBER_CHECK(r >= 0 && r < n, IndexError, "MNIST: index ", r, " is out of range for ", n, " examples");
    const uint8_t* s = src + r * pixels;
    float* d = out + static_cast<int64_t>(i) * pixels;
    for (int64_t k = 0; k < pixels; ++k) d[k] = lut_[s[k]];
  }
}

Example MNIST::get(int64_t index) const {
  Tensor x = empty({1, images_.size(1), images_.size(2)});
  fill_x(x.data<float>(), {index});
  return {x, scalar_tensor(labels_.data<int64_t>()[index], {.dtype = kInt64})};
}

Example MNIST::get_batch(const std::vector<int64_t>& indices) const {
  Tensor x = empty({static_cast<int64_t>(indices.size()), 1, images_.size(1), images_.size(2)});
  fill_x(x.data<float>(), indices);
  return {x, gather_rows(labels_, indices)};
}

FashionMNIST::FashionMNIST(const std::string& dir, const std::string& split, MNISTOptions options)
    : MNIST(dir, split, options, "; install the Debian package dataset-fashion-mnist or pass --data DIR") {}

FashionMNIST FashionMNIST::train(const std::string& dir, MNISTOptions options) {
  return FashionMNIST(dir, "train", options);
}

FashionMNIST FashionMNIST::test(const std::string& dir, MNISTOptions options) {
  return FashionMNIST(dir, "t10k", options);
}

const std::array<const char*, 10>& FashionMNIST::class_names() {
  static const std::array<const char*, 10> kNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kNames;
}

}  // namespace ember::data
