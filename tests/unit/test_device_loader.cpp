// data::DeviceLoader on the CPU: the pass-through equals the loader, and the lookahead (forced on
// the CPU, where it only holds the next batch) delivers the same batches in the same order with
// the plain loader's position at every step, moves the loader back when a loop is left early,
// and raises a dataset error at the batch that failed. The reference is always a second
// DataLoader with the same options, iterated directly.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ember/cuda.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/data/device_loader.hpp"
#include "test_util.hpp"

using namespace ember;
using data::DataLoader;
using data::DataLoaderOptions;
using data::DeviceLoader;
using data::Example;
using data::LoaderState;
using test::expect_throw_containing;
using test::indexed_dataset;

namespace {

// An indexed dataset whose get_batch throws for a batch holding example `fail_at`.
class FailingDataset : public data::Dataset {
 public:
  FailingDataset(int64_t n, int64_t fail_at) : inner_(indexed_dataset(n)), fail_at_(fail_at) {}
  int64_t size() const override { return inner_.size(); }
  Example get(int64_t i) const override { return inner_.get(i); }
  Example get_batch(const std::vector<int64_t>& indices) const override {
    for (int64_t i : indices)
      if (i == fail_at_) throw std::runtime_error("FailingDataset: example " + std::to_string(i) + " is broken");
    return inner_.get_batch(indices);
  }

 private:
  data::TensorDataset inner_;
  int64_t fail_at_;
};

// Ten examples whose every batch of 5 is the same pair of tensors (no copy).
class FixedBatchDataset : public data::Dataset {
 public:
  int64_t size() const override { return 10; }
  Example get(int64_t) const override { throw std::logic_error("FixedBatchDataset::get"); }
  Example get_batch(const std::vector<int64_t>&) const override { return {x, y}; }
  Tensor x = zeros({5, 2});
  Tensor y = zeros({5}, {.dtype = kInt64});
};

// One delivered batch: its example ids and the position reported inside the loop body.
struct Step {
  std::vector<int64_t> ids;
  LoaderState state;
  friend bool operator==(const Step&, const Step&) = default;
};

std::ostream& operator<<(std::ostream& os, const Step& s) {
  os << "{ids";
  for (int64_t i : s.ids) os << ' ' << i;
  return os << ", state {" << s.state.epoch << ", " << s.state.batch << "}}";
}

// Checks that x agrees with y (both on the CPU) and returns the ids.
std::vector<int64_t> ids_of(const Example& b) {
  EXPECT_TRUE(b.x.is_cpu());
  EXPECT_TRUE(b.y.is_cpu());
  std::vector<int64_t> ids = b.y.to_vector<int64_t>();
  std::vector<float> xv = b.x.to_vector<float>();
  EXPECT_EQ(xv.size(), 2 * ids.size());
  for (size_t i = 0; i < ids.size() && 2 * i + 1 < xv.size(); ++i) {
    EXPECT_EQ(xv[2 * i], static_cast<float>(ids[i]));
    EXPECT_EQ(xv[2 * i + 1], static_cast<float>(ids[i]) + 0.5f);
  }
  return ids;
}

// A loop over `loader` (DataLoader or DeviceLoader), breaking after `limit` batches (-1: none).
template <class L>
std::vector<Step> steps_of(L& loader, int64_t limit = -1) {
  std::vector<Step> steps;
  for (auto& b : loader) {
    steps.push_back({ids_of(b), loader.state()});
    if (static_cast<int64_t>(steps.size()) == limit) break;
  }
  return steps;
}

struct Config {
  int workers;
  bool shuffle;
  bool drop_last;
};

std::string name(const Config& c) {
  return "workers " + std::to_string(c.workers) + (c.shuffle ? " shuffle" : "") + (c.drop_last ? " drop_last" : "");
}

// 23 examples in batches of 5: 5 batches (the last of 3), 4 with drop_last.
DataLoaderOptions options_of(const Config& c) {
  return {.batch_size = 5, .shuffle = c.shuffle, .drop_last = c.drop_last, .num_workers = c.workers, .seed = 11};
}

const std::vector<Config>& configs() {
  static const std::vector<Config> all = {{0, false, false}, {0, true, false}, {0, true, true},
                                          {2, false, false}, {2, true, false}, {2, true, true}};
  return all;
}

}  // namespace

// ------------------------------------------------------------------ pass-through
TEST(DeviceLoader, CpuIsAPassThroughWithoutLookahead) {
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    DataLoader plain(ds, options_of(c));
    DataLoader wrapped(ds, options_of(c));
    DeviceLoader batches(wrapped, Device::cpu());
    EXPECT_FALSE(batches.lookahead());
    EXPECT_EQ(batches.device(), Device::cpu());
    EXPECT_EQ(batches.size(), plain.size());
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::vector<Step> got;
      for (auto& b : batches) {
        got.push_back({ids_of(b), batches.state()});
        // No lookahead: the loader is exactly where the caller is.
        EXPECT_EQ(wrapped.state(), batches.state()) << name(c);
      }
      EXPECT_EQ(got, steps_of(plain)) << name(c) << " epoch " << epoch;
      EXPECT_EQ(batches.state(), plain.state()) << name(c);
      EXPECT_EQ(batches.state(), (LoaderState{epoch + 1, 0})) << name(c);
    }
  }
}

TEST(DeviceLoader, CpuPassThroughHandsOutTheDatasetsTensors) {
  // No copy on the CPU: the batch is the tensor the dataset returned, and the caller may move it.
  auto ds = std::make_shared<FixedBatchDataset>();
  DataLoader loader(ds, {.batch_size = 5});
  DeviceLoader batches(loader, Device::cpu());
  int64_t n = 0;
  for (auto& b : batches) {
    EXPECT_TRUE(b.x.shares_storage(ds->x));
    EXPECT_TRUE(b.y.shares_storage(ds->y));
    Example moved = std::move(b);
    EXPECT_TRUE(moved.x.shares_storage(ds->x));
    ++n;
  }
  EXPECT_EQ(n, 2);
}

// ------------------------------------------------------------------ forced lookahead
TEST(DeviceLoader, LookaheadSameBatchesAndStatesAsTheLoader) {
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    DataLoader plain(ds, options_of(c));
    DataLoader wrapped(ds, options_of(c));
    DeviceLoader batches(wrapped, Device::cpu(), {.lookahead = true});
    EXPECT_TRUE(batches.lookahead());
    for (int epoch = 0; epoch < 3; ++epoch) {
      const std::vector<Step> want = steps_of(plain);
      ASSERT_EQ(static_cast<int64_t>(want.size()), c.drop_last ? 4 : 5) << name(c);
      EXPECT_EQ(want.back().ids.size(), c.drop_last ? 5u : 3u);  // the last batch of the epoch
      EXPECT_EQ(steps_of(batches), want) << name(c) << " epoch " << epoch;
      EXPECT_EQ(batches.state(), plain.state()) << name(c);
      EXPECT_EQ(wrapped.state(), plain.state()) << name(c);
    }
  }
}

TEST(DeviceLoader, LookaheadKeepsTheLoaderOneBatchAhead) {
  // The lookahead is real: inside the body for batch k the loader has delivered batch k + 1
  // (except at the last batch, where it has ended its epoch), while state() says k + 1.
  auto ds = indexed_dataset(23);
  DataLoader loader(ds, {.batch_size = 5});
  DeviceLoader batches(loader, Device::cpu(), {.lookahead = true});
  int64_t k = 0;
  for (auto& b : batches) {
    (void)b;
    EXPECT_EQ(batches.state(), (LoaderState{0, k + 1}));
    EXPECT_EQ(loader.state(), (k + 1 < 5 ? LoaderState{0, k + 2} : LoaderState{1, 0})) << "batch " << k;
    ++k;
  }
  EXPECT_EQ(k, 5);
  EXPECT_EQ(loader.state(), (LoaderState{1, 0}));
}

TEST(DeviceLoader, BreakMidEpochThenTheLoaderContinues) {
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    for (int64_t stop : {1, 2, 3}) {
      DataLoader plain(ds, options_of(c));
      const std::vector<Step> want_first = steps_of(plain, stop);
      const std::vector<Step> want_rest = steps_of(plain);

      DataLoader wrapped(ds, options_of(c));
      {
        DeviceLoader batches(wrapped, Device::cpu(), {.lookahead = true});
        EXPECT_EQ(steps_of(batches, stop), want_first) << name(c) << " stop " << stop;
        // The loop is left: the loader is back where the caller stopped.
        EXPECT_EQ(batches.state(), want_first.back().state) << name(c);
        EXPECT_EQ(wrapped.state(), want_first.back().state) << name(c);
        // A plain loop over the loader continues with the right batch, the DeviceLoader still alive.
        EXPECT_EQ(steps_of(wrapped), want_rest) << name(c) << " stop " << stop;
      }
      EXPECT_EQ(wrapped.state(), plain.state());
    }
  }
}

TEST(DeviceLoader, BreakThenANewDeviceLoaderOrANewLoopContinues) {
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    DataLoader plain(ds, options_of(c));
    const std::vector<Step> want_a = steps_of(plain, 2);
    const std::vector<Step> want_b = steps_of(plain, 1);
    const std::vector<Step> want_c = steps_of(plain);
    const std::vector<Step> want_next_epoch = steps_of(plain);

    DataLoader wrapped(ds, options_of(c));
    {
      DeviceLoader first(wrapped, Device::cpu(), {.lookahead = true});
      EXPECT_EQ(steps_of(first, 2), want_a) << name(c);
    }  // destroyed after the break
    DeviceLoader second(wrapped, Device::cpu(), {.lookahead = true});
    EXPECT_EQ(steps_of(second, 1), want_b) << name(c);
    EXPECT_EQ(steps_of(second), want_c) << name(c);  // a new loop over the same DeviceLoader
    EXPECT_EQ(steps_of(second), want_next_epoch) << name(c);
  }
}

TEST(DeviceLoader, BeginAgainWhileRunningContinuesFromWhatWasReceived) {
  auto ds = indexed_dataset(23);
  DataLoader plain(ds, {.batch_size = 5, .shuffle = true, .seed = 3});
  const std::vector<Step> want = steps_of(plain);
  DataLoader loader(ds, {.batch_size = 5, .shuffle = true, .seed = 3});
  DeviceLoader batches(loader, Device::cpu(), {.lookahead = true});
  auto old = batches.begin();
  ++old;  // batch 1 received, batch 2 fetched ahead
  EXPECT_EQ(ids_of(*old), want[1].ids);
  auto it = batches.begin();  // ends the first iteration: continues with batch 2
  expect_throw_containing([&] { (void)*old; }, "no longer valid");
  EXPECT_THROW(++old, ValueError);
  EXPECT_TRUE(old == std::default_sentinel);
  ASSERT_FALSE(it == std::default_sentinel);
  EXPECT_EQ(ids_of(*it), want[2].ids);
  EXPECT_EQ(batches.state(), want[2].state);
}

TEST(DeviceLoader, MovingTheIteratorKeepsTheIterationRunning) {
  auto ds = indexed_dataset(12);
  DataLoader loader(ds, {.batch_size = 4});
  DeviceLoader batches(loader, Device::cpu(), {.lookahead = true});
  auto it = batches.begin();
  DeviceLoader::Iterator moved = std::move(it);  // the moved-from iterator ends nothing
  EXPECT_TRUE(it == std::default_sentinel);
  expect_throw_containing([&] { (void)*it; }, "default-constructed or moved-from");
  ASSERT_FALSE(moved == std::default_sentinel);
  ++moved;
  EXPECT_EQ(ids_of(*moved), (std::vector<int64_t>{4, 5, 6, 7}));
  moved = DeviceLoader::Iterator();  // dropping it leaves the loop: the loader moves back
  EXPECT_EQ(batches.state(), (LoaderState{0, 2}));
  EXPECT_EQ(loader.state(), (LoaderState{0, 2}));
}

TEST(DeviceLoader, BreakAtTheLastBatchOfAnEpoch) {
  // With lookahead the loader has already ended its epoch ({1, 0}); after the break it is moved
  // back to {0, 5} like a plain loader, and the next loop is empty and moves on to epoch 1.
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    DataLoader plain(ds, options_of(c));
    const int64_t n = plain.size();
    const std::vector<Step> want = steps_of(plain, n);
    EXPECT_EQ(plain.state(), (LoaderState{0, n}));
    EXPECT_TRUE(steps_of(plain).empty());
    EXPECT_EQ(plain.state(), (LoaderState{1, 0}));
    const std::vector<Step> want_next = steps_of(plain);

    DataLoader wrapped(ds, options_of(c));
    DeviceLoader batches(wrapped, Device::cpu(), {.lookahead = true});
    EXPECT_EQ(steps_of(batches, n), want) << name(c);
    EXPECT_EQ(batches.state(), (LoaderState{0, n})) << name(c);
    EXPECT_EQ(wrapped.state(), (LoaderState{0, n})) << name(c);
    EXPECT_TRUE(steps_of(batches).empty()) << name(c);
    EXPECT_EQ(batches.state(), (LoaderState{1, 0})) << name(c);
    EXPECT_EQ(steps_of(batches), want_next) << name(c);
  }
}

TEST(DeviceLoader, ResumeViaLoadState) {
  auto ds = indexed_dataset(23);
  for (const Config& c : configs()) {
    // A "checkpoint" saved inside the loop body of batch 1 of epoch 1.
    DataLoader plain(ds, options_of(c));
    steps_of(plain);
    const std::vector<Step> before = steps_of(plain, 2);
    const LoaderState saved = before.back().state;
    ASSERT_EQ(saved, (LoaderState{1, 2}));
    const std::vector<Step> want = steps_of(plain);

    // Through DeviceLoader::load_state...
    DataLoader a(ds, options_of(c));
    DeviceLoader da(a, Device::cpu(), {.lookahead = true});
    da.load_state(saved);
    EXPECT_EQ(da.state(), saved);
    EXPECT_EQ(steps_of(da), want) << name(c);
    // ... or the loader's, before the DeviceLoader is made.
    DataLoader b(ds, options_of(c));
    b.load_state(saved);
    DeviceLoader db(b, Device::cpu(), {.lookahead = true});
    EXPECT_EQ(steps_of(db), want) << name(c);
    // load_state during a loop ends it (the old iterator is invalid).
    DataLoader d(ds, options_of(c));
    DeviceLoader dd(d, Device::cpu(), {.lookahead = true});
    auto it = dd.begin();
    dd.load_state(saved);
    EXPECT_TRUE(it == std::default_sentinel);
    EXPECT_THROW(++it, ValueError);
    EXPECT_EQ(steps_of(dd), want) << name(c);
    // A position outside the loader: the loader's ValueError.
    EXPECT_THROW(dd.load_state({0, d.size() + 1}), ValueError);
  }
}

TEST(DeviceLoader, DatasetErrorRaisedAtTheBatchThatFailed) {
  // Example 12 is in batch 2 (no shuffle, batches of 5). With lookahead the loader fails while
  // batch 1 is being used; the error must come when batch 2 is asked for, with the plain
  // loader's position, and a later loop retries batch 2.
  for (int workers : {0, 2}) {
    auto ds = std::make_shared<FailingDataset>(23, 12);
    DataLoader plain(ds, {.batch_size = 5, .num_workers = workers});
    std::vector<Step> want;
    std::string want_error;
    try {
      for (auto& b : plain) want.push_back({ids_of(b), plain.state()});
    } catch (const std::runtime_error& e) {
      want_error = e.what();
    }
    ASSERT_EQ(want.size(), 2u);
    ASSERT_FALSE(want_error.empty());
    const LoaderState want_state = plain.state();

    for (bool lookahead : {false, true}) {
      DataLoader loader(ds, {.batch_size = 5, .num_workers = workers});
      DeviceLoader batches(loader, Device::cpu(), {.lookahead = lookahead});
      std::vector<Step> got;
      std::string got_error;
      try {
        for (auto& b : batches) got.push_back({ids_of(b), batches.state()});
      } catch (const std::runtime_error& e) {
        got_error = e.what();
      }
      EXPECT_EQ(got, want) << "workers " << workers << " lookahead " << lookahead;
      EXPECT_EQ(got_error, want_error);
      EXPECT_EQ(batches.state(), want_state);
      EXPECT_EQ(loader.state(), want_state);
      // The next loop fails again at once, on the same batch.
      EXPECT_THROW(steps_of(batches), std::runtime_error);
      EXPECT_EQ(batches.state(), want_state);
    }
  }
}

TEST(DeviceLoader, ErrorAtTheFirstBatchIsThrownByBegin) {
  auto ds = std::make_shared<FailingDataset>(10, 0);
  DataLoader loader(ds, {.batch_size = 5});
  DeviceLoader batches(loader, Device::cpu(), {.lookahead = true});
  EXPECT_THROW(batches.begin(), std::runtime_error);
  EXPECT_EQ(batches.state(), (LoaderState{0, 0}));
}

TEST(DeviceLoader, EmptyLoader) {
  auto ds = indexed_dataset(3);
  DataLoader loader(ds, {.batch_size = 5, .drop_last = true});  // no batch at all
  DeviceLoader batches(loader, Device::cpu(), {.lookahead = true});
  EXPECT_TRUE(steps_of(batches).empty());
  EXPECT_EQ(batches.state(), (LoaderState{1, 0}));
}

// ------------------------------------------------------------------ errors
TEST(DeviceLoader, IteratorMisuse) {
  auto ds = indexed_dataset(10);
  DataLoader loader(ds, {.batch_size = 5});
  DeviceLoader batches(loader, Device::cpu());
  DeviceLoader::Iterator none;
  EXPECT_TRUE(none == std::default_sentinel);
  expect_throw_containing([&] { (void)*none; }, "expected an iterator from begin()");
  EXPECT_THROW(++none, ValueError);
  auto it = batches.begin();
  ++it;
  ++it;  // past the last batch
  EXPECT_TRUE(it == std::default_sentinel);
  expect_throw_containing([&] { (void)*it; }, "expected a running iteration");
  try {
    ++it;
    ADD_FAILURE() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no longer valid"), std::string::npos) << e.what();
  }
}

TEST(DeviceLoader, UnusableCudaDeviceIsADeviceError) {
  auto ds = indexed_dataset(10);
  DataLoader loader(ds, {.batch_size = 5});
  try {
    DeviceLoader batches(loader, Device::cuda(-1));
    ADD_FAILURE() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("expected a CUDA device index >= 0, found cuda:-1"), std::string::npos)
        << e.what();
  }
  // An index this machine does not have (every index without CUDA or a GPU): the backend's
  // DeviceError, before anything is read from the loader.
  const int missing = cuda::device_count();
  try {
    DeviceLoader batches(loader, Device::cuda(missing));
    ADD_FAILURE() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Stream::create"), std::string::npos) << msg;
    if (missing > 0) EXPECT_NE(msg.find("cuda:" + std::to_string(missing)), std::string::npos) << msg;
  }
  EXPECT_EQ(loader.state(), (LoaderState{0, 0}));
}
