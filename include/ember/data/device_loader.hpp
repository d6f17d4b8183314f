// DeviceLoader: a DataLoader's batches delivered on a device. On a CUDA device the copy of the
// next batch runs on a private copy stream while the caller's step runs, so the GPU does not
// wait for its input and the host never waits for the GPU.
//
//   data::DataLoader loader(data::FashionMNIST::train(), {.batch_size = 128, .pin_memory = true});
//   data::DeviceLoader batches(loader, Device::cuda(0));
//   for (auto& [x, y] : batches) { ... x, y are on cuda:0 ...; save(batches.state()); }
//
// On the CPU device it is a pass-through: the loader's batches, unchanged, with no lookahead.
#pragma once

#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>

#include "ember/core/device.hpp"
#include "ember/data/dataloader.hpp"

namespace ember::data {

struct DeviceLoaderOptions {
  /// Fetch (and on CUDA, start copying) batch k + 1 when the caller receives batch k. Unset:
  /// on for a CUDA device, off for the CPU. On the CPU a lookahead only holds the next batch
  /// (the "copy" is a no-op); it exists so that the position bookkeeping can be tested there.
  std::optional<bool> lookahead;
};

/// Iterates a DataLoader (which keeps its options: pin_memory, workers, shuffle...) and yields
/// each batch's x and y (y may be undefined) on `device`.
///
/// CUDA: when the caller receives batch k, the copies of batch k + 1 are already queued on the
/// DeviceLoader's own non-blocking stream, ordered after the caller's work so far; batch k is
/// handed over by making the caller's current stream wait (on the device) for its copies. Nothing
/// blocks the host: with a pin_memory loader a whole epoch adds 0 to cuda::host_sync_count()
/// (pageable batches are staged through Ember's pinned buffers, also without a sync, up to
/// 64 MiB per tensor). Keep one current stream for the whole loop: the batch tensors belong to
/// the stream that was current when they were allocated (see ember/cuda.hpp).
///
/// Position: state() is the position of what the caller has received, exactly the loader's own
/// state() without lookahead (inside the loop body for batch k of epoch e: {e, k + 1}; after the
/// loop ends: {e + 1, 0}). When an iteration is left early (break, an exception, a destroyed
/// DeviceLoader, or begin() called again) while the loader is a batch ahead, the loader is moved
/// back to that position, so a later loop over the loader or another DeviceLoader continues with
/// the right batch. A dataset error for batch k + 1 is raised when the caller asks for it, as
/// without lookahead.
///
/// Not thread-safe; the loader must outlive the DeviceLoader, and the DeviceLoader its iterators.
/// Don't move the loader (load_state, set_epoch) while a DeviceLoader loop is running over it.
class EMBER_API DeviceLoader {
 public:
  /// Throws DeviceError for a CUDA device that cannot be used (a build without CUDA, no GPU, an
  /// index out of range). Without lookahead on CUDA each batch is copied when it is asked for
  /// (on the copy stream all the same).
  DeviceLoader(DataLoader& loader, Device device, DeviceLoaderOptions options = {});
  /// Leaves a running iteration (moving the loader back, see above) and waits for the copy
  /// stream (one host synchronisation on CUDA).
  ~DeviceLoader();
  DeviceLoader(const DeviceLoader&) = delete;
  DeviceLoader& operator=(const DeviceLoader&) = delete;

  DataLoader& loader() const { return *loader_; }
  Device device() const { return device_; }
  bool lookahead() const { return lookahead_; }
  /// Batches per epoch (the loader's).
  int64_t size() const { return loader_->size(); }

  /// The position of what the caller has received (see the class comment); the LoaderState to
  /// save in a checkpoint.
  LoaderState state() const;
  /// Leaves a running iteration and moves the loader to `state` (DataLoader::load_state).
  void load_state(const LoaderState& state);

  /// A move-only input iterator; leaving the loop destroys it, which ends the iteration.
  class EMBER_API Iterator {
   public:
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    Iterator() = default;
    Iterator(Iterator&& other) noexcept;
    Iterator& operator=(Iterator&& other) noexcept;
    Iterator(const Iterator&) = delete;
    Iterator& operator=(const Iterator&) = delete;
    /// Ends the iteration it belongs to, if still running (moves the loader back when ahead).
    ~Iterator();
    /// The current batch, on the device; the caller may move from it.
    Example& operator*() const;
    Example* operator->() const { return &**this; }
    /// Hands over the next batch (and queues the copy of the one after it).
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const;

   private:
    friend class DeviceLoader;
    Iterator(DeviceLoader* owner, uint64_t generation) : owner_(owner), generation_(generation) {}
    DeviceLoader* owner_ = nullptr;
    uint64_t generation_ = 0;
  };

  /// Starts (or continues, after a break) the loader's epoch at the loader's position; ends a
  /// running iteration first. The first batch is waited for here.
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  struct Cuda;  // the copy stream and events (CUDA devices only)
  struct Slot {
    Example batch;                         // on the device (CPU: the loader's batch)
    LoaderState state;                     // loader.state() right after the loader delivered it
    std::exception_ptr error;              // fetching or copying it failed
    std::optional<LoaderState> rewind_to;  // after a failed copy: the position before it
    int event = -1;                        // CUDA: the ready event's slot
    void* alloc_stream = nullptr;          // CUDA: the stream current when the batch was allocated
  };

  std::optional<Slot> pull();                        // the loader's next batch, queued for the device; none at the end
  void stage(Slot& slot);                            // CUDA: allocate on the caller's stream, copy on the copy stream
  void hand_over(Slot& slot);                        // CUDA: the caller's stream waits for the slot's copies
  void discard(std::optional<Slot>& slot) noexcept;  // drops a batch the caller may not have used
  void advance();                                    // the next batch becomes current, or the iteration ends
  void fail(Slot& slot);                             // ends the iteration at a failed batch and rethrows its error
  void finish() noexcept;                            // ends the iteration, moving the loader back when it is ahead
  Example& current(uint64_t generation);
  bool running(uint64_t generation) const { return generation == generation_ && current_.has_value(); }

  DataLoader* loader_;
  Device device_;
  bool lookahead_;
  std::unique_ptr<Cuda> cuda_;
  DataLoader::Iterator it_;
  bool started_ = false;     // it_ is at a batch already taken (the next pull advances it)
  bool loader_done_ = true;  // the loader's iteration has ended (or failed): pull nothing more
  std::optional<Slot> current_, next_;
  uint64_t generation_ = 0;  // bumped whenever iterators become invalid
  int next_event_ = 0;
};

}  // namespace ember::data
