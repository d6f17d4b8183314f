// data::DeviceLoader on a CUDA device: the batches equal the CPU loader's (pinned and pageable,
// with and without workers), the position is the plain loader's at every step and after a
// break, iterating an epoch of a pin_memory loader blocks the host 0 times, and kernels on the
// caller's own stream see each batch's data. Every test skips without a CUDA device.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda_diff.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/data/device_loader.hpp"

using namespace ember;
using namespace ember::cuda_test;
using data::DataLoader;
using data::DataLoaderOptions;
using data::DeviceLoader;
using data::Example;
using data::LoaderState;

namespace {

const Device kGpu = Device::cuda(0);

// x[i] = row i of `width` floats, i * width + j; y[i] = i (int64): each batch says which
// examples it holds.
data::TensorDataset indexed_dataset(int64_t n, int64_t width = 3) {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < width; ++j) xs.push_back(static_cast<float>(i * width + j));
    ys.push_back(i);
  }
  return data::TensorDataset(tensor(xs, {n, width}), tensor(ys));
}

// Returns its rows already on the GPU (not allowed for a DeviceLoader's loader).
class GpuDataset : public data::Dataset {
 public:
  int64_t size() const override { return 8; }
  Example get(int64_t) const override { return {zeros({2}), scalar_tensor(0, {.dtype = kInt64})}; }
  Example get_batch(const std::vector<int64_t>& idx) const override {
    const auto n = static_cast<int64_t>(idx.size());
    return {zeros({n, 2}, {.device = kGpu}), zeros({n}, {.dtype = kInt64})};
  }
};

struct Step {
  Tensor x, y;  // CPU copies
  LoaderState state;
};

std::vector<Step> plain_steps(DataLoader& loader, int64_t limit = -1) {
  std::vector<Step> steps;
  for (auto& [x, y] : loader) {
    steps.push_back({x.clone(), y.clone(), loader.state()});
    if (static_cast<int64_t>(steps.size()) == limit) break;
  }
  return steps;
}

std::vector<Step> device_steps(DeviceLoader& batches, int64_t limit = -1) {
  std::vector<Step> steps;
  for (auto& [x, y] : batches) {
    EXPECT_EQ(x.device(), kGpu);
    EXPECT_EQ(y.device(), kGpu);
    steps.push_back({x.cpu(), y.cpu(), batches.state()});
    if (static_cast<int64_t>(steps.size()) == limit) break;
  }
  return steps;
}

void expect_same(const std::vector<Step>& got, const std::vector<Step>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].state, want[i].state) << what << " batch " << i;
    ASSERT_EQ(got[i].x.shape(), want[i].x.shape()) << what << " batch " << i;
    EXPECT_EQ(got[i].x.to_vector<float>(), want[i].x.to_vector<float>()) << what << " batch " << i;
    EXPECT_EQ(got[i].y.to_vector<int64_t>(), want[i].y.to_vector<int64_t>()) << what << " batch " << i;
  }
}

}  // namespace

TEST(CudaDeviceLoader, BatchesEqualTheCpuLoadersPinnedAndPageable) {
  EMBER_REQUIRE_CUDA_DEVICE();
  auto ds = indexed_dataset(37);
  for (bool pinned : {true, false}) {
    for (int workers : {0, 2}) {
      const DataLoaderOptions opts{
          .batch_size = 8, .shuffle = true, .num_workers = workers, .seed = 5, .pin_memory = pinned};
      const std::string what = std::string(pinned ? "pinned" : "pageable") + " workers " + std::to_string(workers);
      DataLoader plain(ds, opts);
      DataLoader loader(ds, opts);
      DeviceLoader batches(loader, kGpu);
      EXPECT_TRUE(batches.lookahead());
      for (int epoch = 0; epoch < 2; ++epoch) {
        const std::vector<Step> want = plain_steps(plain);
        ASSERT_EQ(want.size(), 5u);
        expect_same(device_steps(batches), want, what);
        EXPECT_EQ(batches.state(), plain.state()) << what;
        EXPECT_EQ(loader.state(), plain.state()) << what;
      }
    }
  }
}

TEST(CudaDeviceLoader, WithoutLookaheadToo) {
  EMBER_REQUIRE_CUDA_DEVICE();
  auto ds = indexed_dataset(20);
  DataLoader plain(ds, {.batch_size = 6, .drop_last = true});
  DataLoader loader(ds, {.batch_size = 6, .drop_last = true, .pin_memory = true});
  DeviceLoader batches(loader, kGpu, {.lookahead = false});
  EXPECT_FALSE(batches.lookahead());
  expect_same(device_steps(batches), plain_steps(plain), "no lookahead");
}

TEST(CudaDeviceLoader, BreakMovesTheLoaderBackToWhatWasReceived) {
  EMBER_REQUIRE_CUDA_DEVICE();
  auto ds = indexed_dataset(37);
  const DataLoaderOptions opts{.batch_size = 8, .shuffle = true, .num_workers = 2, .seed = 9, .pin_memory = true};
  DataLoader plain(ds, opts);
  const std::vector<Step> want_first = plain_steps(plain, 2);
  const std::vector<Step> want_rest = plain_steps(plain);

  DataLoader loader(ds, opts);
  {
    DeviceLoader batches(loader, kGpu);
    expect_same(device_steps(batches, 2), want_first, "before the break");
    EXPECT_EQ(loader.state(), want_first.back().state);
    EXPECT_EQ(batches.state(), want_first.back().state);
  }
  // A new DeviceLoader continues with batch 2 (the one that was in flight at the break).
  DeviceLoader again(loader, kGpu);
  expect_same(device_steps(again), want_rest, "after the break");
}

TEST(CudaDeviceLoader, NoHostSyncOverAnEpochWithPinnedMemory) {
  EMBER_REQUIRE_CUDA_DEVICE();
  auto ds = indexed_dataset(256, 8);
  for (bool pinned : {true, false}) {
    DataLoader loader(ds, {.batch_size = 16, .shuffle = true, .num_workers = 2, .seed = 1, .pin_memory = pinned});
    DeviceLoader batches(loader, kGpu);
    // Warm-up epoch: the allocator and the pinned caches fill.
    for (auto& [x, y] : batches) (void)x.sum();
    cuda::synchronize();
    std::vector<Tensor> sums;
    const uint64_t before = cuda::host_sync_count();
    for (auto& [x, y] : batches) sums.push_back(x.sum());  // a kernel per batch, results stay on the device
    const uint64_t syncs = cuda::host_sync_count() - before;
    // Pinned batches are copied directly; pageable ones (512 B) are staged through Ember's
    // pinned buffers: neither waits for the device.
    EXPECT_EQ(syncs, 0u) << (pinned ? "pinned" : "pageable");
    ASSERT_EQ(sums.size(), 16u);
    double total = 0.0;
    for (const Tensor& s : sums) total += s.item<double>();  // after counting
    const double n = 256.0 * 8.0;                            // every x value 0..n-1 once, sums exact in f32
    EXPECT_EQ(total, n * (n - 1.0) / 2.0);
  }
}

TEST(CudaDeviceLoader, KernelsOnTheCallersStreamSeeTheData) {
  EMBER_REQUIRE_CUDA_DEVICE();
  // Large batches (4 MiB of x each), so a kernel that did not wait for its batch's copy would
  // read a previous batch's block or garbage; the caller works on its own stream.
  const int64_t width = 1 << 17;
  auto ds = indexed_dataset(64, width);
  for (bool pinned : {true, false}) {
    DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .num_workers = 2, .seed = 4, .pin_memory = pinned});
    DataLoader plain(ds, {.batch_size = 8, .shuffle = true, .seed = 4});
    const std::vector<Step> want = plain_steps(plain);
    cuda::Stream caller = cuda::Stream::create(0);
    std::vector<Tensor> doubled, labels;
    {
      cuda::StreamGuard guard(caller);
      DeviceLoader batches(loader, kGpu);
      for (auto& [x, y] : batches) {
        doubled.push_back(x * 2.0f);  // reads every element, on the caller's stream
        labels.push_back(y + 0);
      }
      caller.synchronize();
    }
    ASSERT_EQ(doubled.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const std::string what = std::string(pinned ? "pinned" : "pageable") + " batch " + std::to_string(i);
      EXPECT_TRUE(equal(doubled[i].cpu(), want[i].x * 2.0f)) << what;
      EXPECT_EQ(labels[i].cpu().to_vector<int64_t>(), want[i].y.to_vector<int64_t>()) << what;
    }
  }
}

TEST(CudaDeviceLoader, BatchesNotOnTheCpuAreADeviceError) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DataLoader loader(std::make_shared<GpuDataset>(), {.batch_size = 4});
  DeviceLoader batches(loader, kGpu);
  expect_error<DeviceError>([&] { batches.begin(); }, "expected the loader's batches on the CPU, found x on cuda:0");
  // The failed batch stays the loader's next one.
  EXPECT_EQ(loader.state(), (LoaderState{0, 0}));
  EXPECT_EQ(batches.state(), (LoaderState{0, 0}));
}

TEST(CudaDeviceLoader, DeviceOutOfRange) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DataLoader loader(indexed_dataset(4), {.batch_size = 2});
  expect_error<DeviceError>([&] { DeviceLoader batches(loader, Device::cuda(cuda::device_count())); }, "device(s)");
}
