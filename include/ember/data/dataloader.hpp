// DataLoader: batches of a Dataset in a (seed, epoch)-determined order, built ahead by worker
// threads and delivered in order, with a resumable position.
//
//   data::DataLoader loader(data::FashionMNIST::train(), {.batch_size = 128, .shuffle = true});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (auto& [x, y] : loader) { ... }   // each complete pass moves on to the next epoch
#pragma once

#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "ember/data/dataset.hpp"
#include "ember/data/transforms.hpp"

namespace ember::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  /// Visit the examples in a random order that depends only on (seed, epoch).
  bool shuffle = false;
  /// Skip the last, smaller batch of an epoch.
  bool drop_last = false;
  /// Threads that build batches ahead of the consumer; 0 builds them in the calling thread.
  /// The batches (and their order) are the same for every value.
  int num_workers = 0;
  /// Batches built ahead per worker (the queue holds at most prefetch * num_workers).
  int prefetch = 2;
  /// Seed of the shuffle and of the transforms; unset = the default generator's seed when the
  /// loader is made (so ember::manual_seed fixes it).
  std::optional<uint64_t> seed;
  /// Augmentations applied per sample to each batch's x (float32, (B, ..., H, W)).
  TransformList transforms;
  /// Deliver every batch's x and y in page-locked (pinned) host memory (cuda_backend::pin_memory,
  /// done by the thread that builds the batch), so that x.to(cuda, /*non_blocking=*/true) is a
  /// direct asynchronous copy. A no-op when no CUDA device is available.
  bool pin_memory = false;
};

/// A loader's position: the epoch and how many of its batches were already delivered.
struct LoaderState {
  int64_t epoch = 0;
  int64_t batch = 0;
  friend bool operator==(const LoaderState&, const LoaderState&) = default;
};

class EMBER_API DataLoader {
 public:
  /// Throws ValueError for batch_size < 1, num_workers < 0 or prefetch < 1, or a null dataset.
  /// The dataset's get()/get_batch() must be thread-safe when num_workers > 0, and get_batch()
  /// must return tensors the loader may modify in place (copies, not views of the dataset)
  /// when transforms are set.
  explicit DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  /// Takes a dataset by value (cheap for datasets that hold tensors, which are handles).
  template <class D>
  requires std::derived_from<std::remove_cvref_t<D>, Dataset>
  explicit DataLoader(D&& dataset, DataLoaderOptions options = {})
      : DataLoader(std::make_shared<const std::remove_cvref_t<D>>(std::forward<D>(dataset)), std::move(options)) {}
  /// Stops and joins the workers, whatever state the iteration is in.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch.
  int64_t size() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  uint64_t seed() const { return seed_; }

  /// Starts epoch `epoch` from its first batch (invalidates running iterators).
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return state_.epoch; }
  /// The position: inside a loop body for batch k of epoch e it is {e, k + 1}, so a
  /// checkpoint saved there resumes with batch k + 1.
  LoaderState state() const { return state_; }
  /// Moves to a saved position; the next iteration continues from it. Throws ValueError for a
  /// negative epoch or a batch outside [0, size()].
  void load_state(const LoaderState& state);

  /// Dataset indices of batch `batch` of epoch `epoch` (what the loader will deliver).
  std::vector<int64_t> batch_indices(int64_t epoch, int64_t batch) const;
  /// The example order of an epoch: a Fisher–Yates permutation driven by Philox keyed by
  /// (seed, epoch) when shuffling, 0..N-1 otherwise.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  class EMBER_API Iterator {
   public:
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::input_iterator_tag;
    Iterator() = default;
    /// The current batch; the caller may move from it.
    Example& operator*() const;
    Example* operator->() const { return &**this; }
    /// Fetches the next batch (rethrowing a dataset exception from a worker here).
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const;

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, uint64_t generation) : loader_(loader), generation_(generation) {}
    DataLoader* loader_ = nullptr;
    uint64_t generation_ = 0;
  };

  /// Continues the current epoch from state().batch (a new loop after a `break` picks up where
  /// it stopped). When the epoch's last batch has been consumed and the iterator advanced,
  /// the position moves to {epoch + 1, 0}. Only one iteration is active: calling begin()
  /// again invalidates older iterators.
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  struct Run;
  void advance();   // delivers the next batch into current_, or ends the epoch
  void stop_run();  // joins the workers of the active run
  Example build_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t batch) const;
  Example& current(uint64_t generation);

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  uint64_t seed_ = 0;
  LoaderState state_;
  std::unique_ptr<Run> run_;
  Example current_;
  bool exhausted_ = true;    // the active iteration has no current batch
  uint64_t generation_ = 0;  // bumped whenever iterators become invalid
};

}  // namespace ember::data
