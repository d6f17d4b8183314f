// Datasets, transforms and the DataLoader: coverage of every example, order independent of the
// worker count, resumable positions, exceptions from workers, clean shutdown.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ember/core/generator.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/data/fashion_mnist.hpp"
#include "ember/data/idx.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace ember;
using data::DataLoader;
using data::DataLoaderOptions;
using data::Example;
using test::indexed_dataset;

namespace {

// The y values of every batch of one pass, checking that x agrees with y.
std::vector<std::vector<int64_t>> run_epoch(DataLoader& loader) {
  std::vector<std::vector<int64_t>> batches;
  for (auto& [x, y] : loader) {
    std::vector<int64_t> ids = y.to_vector<int64_t>();
    std::vector<float> xv = x.to_vector<float>();
    EXPECT_EQ(xv.size(), 2 * ids.size());
    for (size_t i = 0; i < ids.size() && 2 * i + 1 < xv.size(); ++i) {
      EXPECT_EQ(xv[2 * i], static_cast<float>(ids[i]));
      EXPECT_EQ(xv[2 * i + 1], static_cast<float>(ids[i]) + 0.5f);
    }
    batches.push_back(ids);
  }
  return batches;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

// Only get() is implemented: exercises the default get_batch. Throws at `fail_at`, sleeps
// `delay_ms` per example.
class SlowDataset : public data::Dataset {
 public:
  SlowDataset(int64_t n, int64_t fail_at = -1, int delay_ms = 0) : n_(n), fail_at_(fail_at), delay_ms_(delay_ms) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    ++calls;
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (i == fail_at_) throw ValueError("SlowDataset: example " + std::to_string(i) + " is broken");
    return {tensor<float>({static_cast<float>(i), 1.0f}), scalar_tensor(i, {.dtype = kInt64})};
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, fail_at_;
  int delay_ms_;
};

}  // namespace

// ------------------------------------------------------------------ datasets
TEST(TensorDataset, GetAndGetBatch) {
  auto ds = indexed_dataset(10);
  EXPECT_EQ(ds.size(), 10);
  Example e = ds.get(3);
  EXPECT_EQ(e.x.shape(), (Shape{2}));
  EXPECT_EQ(e.x.to_vector<float>(), (std::vector<float>{3.0f, 3.5f}));
  EXPECT_EQ(e.y.item<int64_t>(), 3);
  Example b = ds.get_batch({7, 0, 7});
  EXPECT_EQ(b.x.shape(), (Shape{3, 2}));
  EXPECT_EQ(b.y.to_vector<int64_t>(), (std::vector<int64_t>{7, 0, 7}));
  EXPECT_EQ(b.x.to_vector<float>(), (std::vector<float>{7, 7.5f, 0, 0.5f, 7, 7.5f}));
  EXPECT_FALSE(b.x.shares_storage(ds.x()));  // a copy: transforms may modify it
}

TEST(TensorDataset, XOnlyAndNonContiguousInput) {
  Tensor x = tensor<float>({0, 1, 2, 3, 4, 5}, {2, 3}).t();  // (3, 2), not contiguous
  data::TensorDataset ds(x);
  EXPECT_EQ(ds.size(), 3);
  Example b = ds.get_batch({2, 0});
  EXPECT_FALSE(b.y.defined());
  EXPECT_EQ(b.x.to_vector<float>(), (std::vector<float>{2, 5, 0, 3}));
}

TEST(TensorDataset, Errors) {
  EXPECT_THROW(data::TensorDataset(tensor<float>({1, 2, 3}), tensor<int64_t>({1, 2})), ShapeError);
  EXPECT_THROW(data::TensorDataset(scalar_tensor(1.0)), ShapeError);
  EXPECT_THROW(data::TensorDataset{Tensor()}, ValueError);
  auto ds = indexed_dataset(4);
  EXPECT_THROW(ds.get(4), IndexError);
  EXPECT_THROW(ds.get(-1), IndexError);
  EXPECT_THROW(ds.get_batch({0, 4}), IndexError);
}

TEST(Dataset, DefaultGetBatchStacks) {
  SlowDataset ds(5);
  Example b = ds.get_batch({4, 1});
  EXPECT_EQ(b.x.shape(), (Shape{2, 2}));
  EXPECT_EQ(b.x.to_vector<float>(), (std::vector<float>{4, 1, 1, 1}));
  EXPECT_EQ(b.y.shape(), (Shape{2}));
  EXPECT_EQ(b.y.to_vector<int64_t>(), (std::vector<int64_t>{4, 1}));
  EXPECT_THROW(ds.get_batch({}), ValueError);
}

TEST(Dataset, StackRowsChecksShapesAndDtypes) {
  EXPECT_THROW(data::stack_rows({}), ValueError);
  EXPECT_THROW(data::stack_rows({tensor<float>({1, 2}), tensor<float>({1, 2, 3})}), ShapeError);
  EXPECT_THROW(data::stack_rows({tensor<float>({1, 2}), tensor<int64_t>({1, 2})}), DTypeError);
  EXPECT_THROW(data::gather_rows(scalar_tensor(1.0), {0}), ShapeError);
}

// ------------------------------------------------------------------ loader basics
TEST(DataLoader, SizeAndDropLast) {
  auto ds = indexed_dataset(10);
  DataLoader keep(ds, {.batch_size = 4});
  EXPECT_EQ(keep.size(), 3);
  auto batches = run_epoch(keep);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2], (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(flatten(batches), ([] {
              std::vector<int64_t> v(10);
              std::iota(v.begin(), v.end(), 0);
              return v;
            }()));

  DataLoader drop(ds, {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(drop.size(), 2);
  batches = run_epoch(drop);
  ASSERT_EQ(batches.size(), 2u);
  for (const auto& b : batches) EXPECT_EQ(b.size(), 4u);

  DataLoader tiny(ds, {.batch_size = 32, .drop_last = true});
  EXPECT_EQ(tiny.size(), 0);
  EXPECT_TRUE(run_epoch(tiny).empty());
}

TEST(DataLoader, EveryExampleOncePerEpochForAnyWorkerCount) {
  auto ds = indexed_dataset(103);
  for (int workers : {0, 1, 3}) {
    DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .num_workers = workers, .seed = 42});
    for (int epoch = 0; epoch < 3; ++epoch) {
      std::vector<int64_t> all = flatten(run_epoch(loader));
      ASSERT_EQ(all.size(), 103u) << "workers " << workers;
      std::sort(all.begin(), all.end());
      for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(all[i], i) << "workers " << workers << " epoch " << epoch;
    }
  }
}

TEST(DataLoader, ShuffleDiffersAcrossEpochsAndEqualsAcrossWorkerCounts) {
  auto ds = indexed_dataset(200);
  std::vector<std::vector<std::vector<int64_t>>> reference;  // [epoch][batch]
  for (int workers : {0, 1, 3}) {
    DataLoader loader(ds, {.batch_size = 16, .shuffle = true, .num_workers = workers, .prefetch = 1, .seed = 7});
    std::vector<std::vector<std::vector<int64_t>>> epochs;
    for (int e = 0; e < 3; ++e) epochs.push_back(run_epoch(loader));
    EXPECT_EQ(loader.epoch(), 3);
    if (reference.empty()) {
      reference = epochs;
      EXPECT_NE(flatten(epochs[0]), flatten(epochs[1]));
      EXPECT_NE(flatten(epochs[1]), flatten(epochs[2]));
      std::vector<int64_t> identity(200);
      std::iota(identity.begin(), identity.end(), 0);
      EXPECT_NE(flatten(epochs[0]), identity);
    } else {
      EXPECT_EQ(epochs, reference) << "workers " << workers;
    }
  }
  // Another seed, another order; the same seed, the same order.
  DataLoader other(ds, {.batch_size = 16, .shuffle = true, .seed = 8});
  EXPECT_NE(run_epoch(other), reference[0]);
  DataLoader same(ds, {.batch_size = 16, .shuffle = true, .seed = 7});
  EXPECT_EQ(run_epoch(same), reference[0]);
  EXPECT_EQ(same.batch_indices(0, 3), reference[0][3]);
}

TEST(DataLoader, ShuffleIsUniform) {
  // Position of each element over many epochs of a 5-element shuffle: about n/5 each. A
  // Fisher–Yates off by one (Sattolo's algorithm) never leaves an element in place.
  auto ds = indexed_dataset(5);
  DataLoader loader(ds, {.batch_size = 5, .shuffle = true, .seed = 3});
  const int kEpochs = 5000;
  int count[5][5] = {};
  for (int e = 0; e < kEpochs; ++e) {
    std::vector<int64_t> order = loader.epoch_order(e);
    for (int p = 0; p < 5; ++p) ++count[order[p]][p];
  }
  for (int v = 0; v < 5; ++v)
    for (int p = 0; p < 5; ++p) EXPECT_NEAR(count[v][p], kEpochs / 5, 150) << "value " << v << " position " << p;
}

TEST(DataLoader, NoShuffleIsSequentialAndSeedDefaultsToManualSeed) {
  auto ds = indexed_dataset(6);
  DataLoader loader(ds, {.batch_size = 4});
  EXPECT_EQ(run_epoch(loader), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5}}));
  manual_seed(1234);
  DataLoader seeded(ds, {.shuffle = true});
  EXPECT_EQ(seeded.seed(), 1234u);
}

TEST(DataLoader, StateInsideTheLoopAndEpochAdvance) {
  auto ds = indexed_dataset(10);
  DataLoader loader(ds, {.batch_size = 3, .shuffle = true, .seed = 1});
  int64_t k = 0;
  for (auto& batch : loader) {
    (void)batch;
    ++k;
    EXPECT_EQ(loader.state(), (data::LoaderState{0, k}));
  }
  EXPECT_EQ(k, 4);
  EXPECT_EQ(loader.state(), (data::LoaderState{1, 0}));
  loader.set_epoch(5);
  EXPECT_EQ(loader.state(), (data::LoaderState{5, 0}));
  EXPECT_EQ(flatten(run_epoch(loader)), loader.epoch_order(5));
}

TEST(DataLoader, ResumeFromStateGivesTheSameRemainingBatches) {
  auto ds = indexed_dataset(50);
  for (int workers : {0, 2}) {
    DataLoaderOptions opts{.batch_size = 4, .shuffle = true, .num_workers = workers, .seed = 99};
    DataLoader full(ds, opts);
    full.set_epoch(2);
    auto expected = run_epoch(full);  // 13 batches

    // A run that stops after 5 batches of epoch 2 and saves its position...
    DataLoader first(ds, opts);
    first.set_epoch(2);
    data::LoaderState saved;
    int seen = 0;
    for (auto& [x, y] : first) {
      EXPECT_EQ(y.to_vector<int64_t>(), expected[seen]);
      if (++seen == 5) {
        saved = first.state();
        break;
      }
    }
    EXPECT_EQ(saved, (data::LoaderState{2, 5}));
    // ...and a new process that loads it continues with batch 5.
    DataLoader resumed(ds, opts);
    resumed.load_state(saved);
    auto rest = run_epoch(resumed);
    ASSERT_EQ(rest.size(), expected.size() - 5) << "workers " << workers;
    for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(rest[i], expected[5 + i]);
    EXPECT_EQ(resumed.state(), (data::LoaderState{3, 0}));

    // The same loader continues after a break as well.
    auto tail = run_epoch(first);
    EXPECT_EQ(tail, rest);
  }
}

TEST(DataLoader, ResumeAtTheEndOfAnEpochStartsTheNext) {
  auto ds = indexed_dataset(8);
  DataLoader loader(ds, {.batch_size = 4, .shuffle = true, .seed = 5});
  loader.load_state({3, 2});
  EXPECT_TRUE(run_epoch(loader).empty());
  EXPECT_EQ(loader.state(), (data::LoaderState{4, 0}));
  EXPECT_EQ(flatten(run_epoch(loader)), loader.epoch_order(4));
}

TEST(DataLoader, OptionAndStateErrors) {
  auto ds = indexed_dataset(8);
  EXPECT_THROW(DataLoader(ds, {.batch_size = 0}), ValueError);
  EXPECT_THROW(DataLoader(ds, {.num_workers = -1}), ValueError);
  EXPECT_THROW(DataLoader(ds, {.num_workers = 1, .prefetch = 0}), ValueError);
  EXPECT_THROW(DataLoader(std::shared_ptr<const data::Dataset>(), {}), ValueError);
  EXPECT_THROW(DataLoader(ds, {.transforms = {nullptr}}), ValueError);
  DataLoader loader(ds, {.batch_size = 4});
  EXPECT_THROW(loader.load_state({0, 3}), ValueError);
  EXPECT_THROW(loader.load_state({-1, 0}), ValueError);
  EXPECT_THROW(loader.batch_indices(0, 2), IndexError);
}

TEST(DataLoader, StaleIteratorIsAnError) {
  auto ds = indexed_dataset(8);
  DataLoader loader(ds, {.batch_size = 2});
  auto it = loader.begin();
  EXPECT_EQ((*it).y.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  loader.set_epoch(1);
  EXPECT_THROW(*it, ValueError);
  EXPECT_THROW(++it, ValueError);
  EXPECT_TRUE(it == loader.end());
}

// ------------------------------------------------------------------ workers
TEST(DataLoader, DatasetExceptionReachesTheConsumer) {
  for (int workers : {0, 1, 3}) {
    SlowDataset ds(40, /*fail_at=*/21);
    DataLoader loader(std::shared_ptr<const data::Dataset>(&ds, [](const data::Dataset*) {}),
                      {.batch_size = 4, .num_workers = workers});
    std::vector<int64_t> seen;
    try {
      for (auto& [x, y] : loader)
        for (int64_t v : y.to_vector<int64_t>()) seen.push_back(v);
      ADD_FAILURE() << "no exception, workers " << workers;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("example 21 is broken"), std::string::npos) << e.what();
    }
    // Batches 0..4 arrived, in order; the position points at the failed batch.
    ASSERT_EQ(seen.size(), 20u) << "workers " << workers;
    for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(seen[i], i);
    EXPECT_EQ(loader.state(), (data::LoaderState{0, 5}));
    // Retrying hits the same error again rather than skipping the batch.
    EXPECT_THROW(
        {
          for (auto& batch : loader) (void)batch;
        },
        ValueError);
  }
}

TEST(DataLoader, BreakEarlyThenDestroyDoesNotHang) {
  SlowDataset ds(10000, -1, /*delay_ms=*/1);
  auto ptr = std::shared_ptr<const data::Dataset>(&ds, [](const data::Dataset*) {});
  {
    DataLoader loader(ptr, {.batch_size = 8, .num_workers = 3, .prefetch = 2});
    int n = 0;
    for (auto& batch : loader) {
      (void)batch;
      if (++n == 2) break;
    }
    // Workers fill a bounded window and then sleep: far fewer examples than the dataset.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_LE(ds.calls.load(), 8 * (2 + 3 * 2 + 3));
  }  // joins here
  {
    // Destroyed while workers are in the middle of batches and without any batch consumed.
    DataLoader loader(ptr, {.batch_size = 64, .num_workers = 3});
    auto it = loader.begin();
    EXPECT_FALSE(it == loader.end());
  }
  SUCCEED();
}

TEST(DataLoader, WorkersOverlapTheConsumer) {
  // With a slow dataset, 3 workers deliver all batches; the delivered order is still batch order.
  SlowDataset ds(48, -1, 1);
  DataLoader loader(std::shared_ptr<const data::Dataset>(&ds, [](const data::Dataset*) {}),
                    {.batch_size = 4, .num_workers = 3, .prefetch = 1});
  std::vector<int64_t> all;
  for (auto& [x, y] : loader)
    for (int64_t v : y.to_vector<int64_t>()) all.push_back(v);
  ASSERT_EQ(all.size(), 48u);
  for (int64_t i = 0; i < 48; ++i) EXPECT_EQ(all[i], i);
}

// ------------------------------------------------------------------ transforms
namespace {

// (N, 1, 6, 5) images with distinct non-zero pixels: pixel (i, j) of image n = 1 + n*100 + i*10 + j.
data::TensorDataset image_dataset(int64_t n) {
  std::vector<float> xs;
  for (int64_t k = 0; k < n; ++k)
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 5; ++j) xs.push_back(static_cast<float>(1 + k * 100 + i * 10 + j));
  std::vector<int64_t> ys(static_cast<size_t>(n));
  std::iota(ys.begin(), ys.end(), 0);
  return data::TensorDataset(tensor(xs, {n, 1, 6, 5}), tensor(ys));
}

float pixel(int64_t n, int64_t i, int64_t j) { return static_cast<float>(1 + n * 100 + i * 10 + j); }

}  // namespace

TEST(Transforms, RandomCropIsAShiftWithZeroFill) {
  const int64_t kN = 64, kPad = 2;
  auto ds = image_dataset(kN);
  DataLoader loader(ds, {.batch_size = kN, .seed = 11, .transforms = {std::make_shared<data::RandomCrop>(kPad)}});
  std::set<std::pair<int64_t, int64_t>> shifts;
  for (auto& [x, y] : loader) {
    const float* p = x.data<float>();
    std::vector<int64_t> ids = y.to_vector<int64_t>();
    for (int64_t b = 0; b < kN; ++b) {
      const int64_t n = ids[b];
      bool found = false;
      for (int64_t dy = -kPad; dy <= kPad && !found; ++dy) {
        for (int64_t dx = -kPad; dx <= kPad && !found; ++dx) {
          bool ok = true;
          for (int64_t i = 0; i < 6 && ok; ++i)
            for (int64_t j = 0; j < 5 && ok; ++j) {
              const int64_t si = i + dy, sj = j + dx;
              const float want = (si >= 0 && si < 6 && sj >= 0 && sj < 5) ? pixel(n, si, sj) : 0.0f;
              ok = p[b * 30 + i * 5 + j] == want;
            }
          if (ok) {
            found = true;
            shifts.insert({dy, dx});
          }
        }
      }
      EXPECT_TRUE(found) << "sample " << n << " is not a shifted copy of its image";
    }
  }
  EXPECT_GT(shifts.size(), 10u);  // 25 possible shifts, 64 samples
}

TEST(Transforms, FlipProbabilityAndMirror) {
  auto ds = image_dataset(200);
  for (double prob : {0.0, 0.5, 1.0}) {
    DataLoader loader(
        ds, {.batch_size = 50, .seed = 2, .transforms = {std::make_shared<data::RandomHorizontalFlip>(prob)}});
    int flipped = 0, total = 0;
    for (auto& [x, y] : loader) {
      const float* p = x.data<float>();
      std::vector<int64_t> ids = y.to_vector<int64_t>();
      for (size_t b = 0; b < ids.size(); ++b, ++total) {
        bool same = true, mirror = true;
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 5; ++j) {
            same = same && p[b * 30 + i * 5 + j] == pixel(ids[b], i, j);
            mirror = mirror && p[b * 30 + i * 5 + j] == pixel(ids[b], i, 4 - j);
          }
        ASSERT_TRUE(same || mirror) << "sample " << ids[b];
        flipped += mirror;
      }
    }
    if (prob == 0.0) EXPECT_EQ(flipped, 0);
    if (prob == 1.0) EXPECT_EQ(flipped, total);
    if (prob == 0.5) EXPECT_NEAR(flipped, total / 2, 30);
  }
}

TEST(Transforms, SameAugmentationForAnyWorkerCountAndBatchSize) {
  auto ds = image_dataset(40);
  data::TransformList tf = {std::make_shared<data::RandomCrop>(2), std::make_shared<data::RandomHorizontalFlip>()};
  // Per example index: its augmented pixels in epoch 1.
  auto collect = [&](int workers, int64_t batch_size) {
    DataLoader loader(ds,
                      {.batch_size = batch_size, .shuffle = true, .num_workers = workers, .seed = 5, .transforms = tf});
    loader.set_epoch(1);
    std::vector<std::vector<float>> per_index(40);
    for (auto& [x, y] : loader) {
      std::vector<float> xv = x.to_vector<float>();
      std::vector<int64_t> ids = y.to_vector<int64_t>();
      for (size_t b = 0; b < ids.size(); ++b) per_index[ids[b]].assign(xv.begin() + b * 30, xv.begin() + (b + 1) * 30);
    }
    return per_index;
  };
  auto ref = collect(0, 8);
  EXPECT_EQ(collect(3, 8), ref);
  EXPECT_EQ(collect(2, 5), ref);  // different batches, same per-sample randomness
  // Another epoch draws different augmentations.
  DataLoader e2(ds, {.batch_size = 40, .seed = 5, .transforms = tf});
  e2.set_epoch(2);
  std::vector<float> epoch2 = (*e2.begin()).x.to_vector<float>();
  int differ = 0;
  for (int64_t n = 0; n < 40; ++n) differ += !std::equal(ref[n].begin(), ref[n].end(), epoch2.begin() + n * 30);
  EXPECT_GT(differ, 20);
}

TEST(Transforms, Errors) {
  EXPECT_THROW(data::RandomCrop(-1), ValueError);
  EXPECT_THROW(data::RandomHorizontalFlip(1.5), ValueError);
  data::TransformList tf = {std::make_shared<data::RandomHorizontalFlip>()};
  Tensor ints = zeros({2, 3, 3}, {.dtype = kInt64});
  EXPECT_THROW(data::apply_transforms(ints, {0, 1}, tf, 0, 0), DTypeError);
  Tensor flat = zeros({2, 3});
  EXPECT_THROW(data::apply_transforms(flat, {0, 1}, tf, 0, 0), ShapeError);
  Tensor img = zeros({2, 3, 3});
  EXPECT_THROW(data::apply_transforms(img, {0}, tf, 0, 0), ShapeError);
  // A loader over 2-d x with an image transform fails at the first batch, with the reason.
  auto ds = indexed_dataset(4);
  DataLoader loader(ds, {.batch_size = 2, .transforms = tf});
  EXPECT_THROW(loader.begin(), ShapeError);
}

// ------------------------------------------------------------------ MNIST format
namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// A directory with a 5-image MNIST-format set: image k has every pixel = 50 * k.
std::string write_small_mnist(const std::string& name, std::vector<uint8_t> labels) {
  fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::create_directories(dir);
  const int64_t n = 5;
  std::vector<uint8_t> pix;
  for (int64_t k = 0; k < n; ++k) pix.insert(pix.end(), 28 * 28, static_cast<uint8_t>(50 * k));
  data::write_idx((dir / "t10k-images-idx3-ubyte.gz").string(), tensor(pix, {n, 28, 28}), true);
  const auto nl = static_cast<int64_t>(labels.size());
  data::write_idx((dir / "t10k-labels-idx1-ubyte").string(), tensor(labels, {nl}), false);
  return dir.string();
}

}  // namespace

TEST(MNIST, SmallSetScalingAndNormalisation) {
  std::string dir = write_small_mnist("ember_mnist_small", {3, 1, 4, 1, 5});
  data::MNIST plain(dir, "t10k");
  EXPECT_EQ(plain.size(), 5);
  Example b = plain.get_batch({4, 0, 2});
  EXPECT_EQ(b.x.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(b.x.dtype(), kFloat32);
  EXPECT_EQ(b.y.dtype(), kInt64);
  EXPECT_EQ(b.y.to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 4}));
  std::vector<float> xv = b.x.to_vector<float>();
  EXPECT_FLOAT_EQ(xv[0], 200.0f / 255.0f);
  EXPECT_FLOAT_EQ(xv[783], 200.0f / 255.0f);
  EXPECT_EQ(xv[784], 0.0f);
  EXPECT_FLOAT_EQ(xv[2 * 784 + 17], 100.0f / 255.0f);
  Example one = plain.get(1);
  EXPECT_EQ(one.x.shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(one.y.item<int64_t>(), 1);
  EXPECT_THROW(plain.get(5), IndexError);

  data::MNIST norm(dir, "t10k", {.normalize = data::Normalize{0.5f, 0.25f}});
  EXPECT_NEAR(norm.get(3).x.to_vector<float>()[5], (150.0 / 255.0 - 0.5) / 0.25, 1e-6);
}

TEST(MNIST, Errors) {
  std::string dir = write_small_mnist("ember_mnist_count", {1, 2, 3});
  try {
    data::MNIST ds(dir, "t10k");
    ADD_FAILURE() << "label count mismatch accepted";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 5 images but"), std::string::npos) << e.what();
  }
  dir = write_small_mnist("ember_mnist_badlabel", {1, 2, 3, 10, 0});
  EXPECT_THROW(data::MNIST(dir, "t10k"), IOError);
  EXPECT_THROW(data::MNIST(dir, "validation"), ValueError);
  EXPECT_THROW(data::MNIST(dir, "t10k", {.normalize = data::Normalize{0.5f, 0.0f}}), ValueError);
  try {
    data::FashionMNIST::test("/nonexistent/fashion");
    ADD_FAILURE() << "missing directory accepted";
  } catch (const IOError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("/nonexistent/fashion/t10k-images-idx3-ubyte.gz not found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--data DIR"), std::string::npos) << msg;
  }
}

TEST(FashionMNIST, TestSetThroughTheLoader) {
  if (!fs::exists(std::string(kFashionDir) + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "no " << kFashionDir;
  auto test = data::FashionMNIST::test();
  EXPECT_EQ(test.size(), 10000);
  DataLoader loader(test, {.batch_size = 128, .num_workers = 2});
  EXPECT_EQ(loader.size(), 79);
  int64_t seen = 0, batches = 0;
  std::vector<int64_t> count(10, 0);
  for (auto& [x, y] : loader) {
    if (batches == 0) {
      EXPECT_EQ(x.shape(), (Shape{128, 1, 28, 28}));
      EXPECT_EQ(y.to_vector<int64_t>()[0], 9);
    }
    std::vector<float> xv = x.to_vector<float>();
    for (float v : xv) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v;
    for (int64_t c : y.to_vector<int64_t>()) ++count[c];
    seen += y.size(0);
    ++batches;
  }
  EXPECT_EQ(seen, 10000);
  EXPECT_EQ(batches, 79);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(count[c], 1000);

  // Normalised with the training statistics: the test set's mean is near 0 and std near 1.
  auto normed =
      data::FashionMNIST::test(data::FashionMNIST::kDefaultDir, {.normalize = data::FashionMNIST::kNormalize});
  std::vector<int64_t> all(10000);
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> v = normed.get_batch(all).x.to_vector<float>();
  double sum = 0, sq = 0;
  for (float f : v) sum += f, sq += static_cast<double>(f) * f;
  const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sd, 1.0, 0.02);
}
