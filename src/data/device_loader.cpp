// DeviceLoader: one batch of lookahead over a DataLoader, with the host-to-device copies on a
// private CUDA stream.
//
// Why the CUDA path is correct without host synchronisation and without record_stream. Let S be
// the caller's current stream (the one its training step runs on) and C the DeviceLoader's copy
// stream. For each batch (stage()):
//
//  1. The device tensors are allocated while S is current, so the caching allocator tags their
//     blocks with S. Such a block may be one that S freed a moment ago while kernels queued on
//     S still read it (the previous batch, a temporary of the previous step): the allocator hands
//     it out at once because, for S, later work is ordered after those kernels. C is not.
//  2. So an event `input` is recorded on S after the allocation and C waits for it
//     (Event::block: a device-side wait). Every kernel queued on S so far, including all the
//     previous users of the new blocks, finishes before C writes to them.
//  3. Under StreamGuard(C) the copies are queued with copy_across(non_blocking): from a pinned
//     batch (the loader's pin_memory) directly, with pinned_record_use keeping the pinned block
//     out of reuse until the copy has run on C, so the CPU batch may be dropped at once; from
//     pageable memory through Ember's pinned staging buffers (memcpy on the host, then an async
//     copy; the buffer is reused after an event on C). Nothing is allocated on the device while
//     C is current. Then the slot's `ready` event is recorded on C.
//  4. Handing the batch over (hand_over()), S waits for `ready` (Event::block). Everything the
//     caller queues on S from then on, reads of the batch included, runs after the copies.
//  5. When the caller drops the batch its blocks go back to the cache tagged with S: S may reuse
//     them at once, which is safe because all of S's uses, and the copies (step 4), are ordered
//     before on S; another stream takes them only after an event on S has completed (the
//     allocator's rule). A batch that was copied but never handed over (the loop was left while
//     it was in flight) is dropped only after its allocating stream waits for its `ready` event
//     (discard()), so that stream cannot reuse the blocks while C still writes to them.
//
// Events: `input` is recorded and waited for at once (cudaStreamWaitEvent takes the event's
// state at the call), so one suffices. `ready` has two slots used alternately: batch j uses slot
// j % 2 and is waited for (handed over or discarded) before batch j + 2 is staged, because that
// happens when batch j + 1 is handed over. The host only blocks when the DeviceLoader is destroyed
// (the copy stream's destructor waits for it).
#include "ember/data/device_loader.hpp"

#include <cstdio>
#include <string>

#include "ember/backend/cuda.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/cuda.hpp"

namespace ember::data {

struct DeviceLoader::Cuda {
  explicit Cuda(cuda::Stream s) : stream(std::move(s)) {}
  cuda::Stream stream;  // the copy stream (owned)
  std::optional<cuda::Event> input;
  std::optional<cuda::Event> ready[2];
};

namespace {

std::string where(const Tensor& t) { return t.defined() ? "on " + t.device().str() : std::string("undefined"); }

}  // namespace

DeviceLoader::DeviceLoader(DataLoader& loader, Device device, DeviceLoaderOptions options)
    : loader_(&loader), device_(device), lookahead_(options.lookahead.value_or(device.is_cuda())) {
  if (device_.is_cuda()) {
    EMBER_CHECK(device_.index >= 0, DeviceError, "DeviceLoader: expected a CUDA device index >= 0, found ",
                device_.str());
    // DeviceError here when the build has no CUDA, there is no usable GPU or the index is out
    // of range (the backend's message).
    cuda_ = std::make_unique<Cuda>(cuda::Stream::create(device_.index, /*non_blocking=*/true));
    cuda::StreamGuard guard(cuda_->stream);  // events belong to the current device
    cuda_->input.emplace();
    cuda_->ready[0].emplace();
    cuda_->ready[1].emplace();
  }
}

DeviceLoader::~DeviceLoader() { finish(); }

LoaderState DeviceLoader::state() const { return current_ ? current_->state : loader_->state(); }

void DeviceLoader::load_state(const LoaderState& state) {
  finish();
  loader_->load_state(state);
}

DeviceLoader::Iterator DeviceLoader::begin() {
  finish();
  loader_done_ = false;
  started_ = false;
  std::optional<Slot> first = pull();
  if (first && first->error) fail(*first);
  current_ = std::move(first);
  if (!current_) {
    finish();  // an empty epoch (the loader had already delivered its last batch)
    return Iterator(this, generation_);
  }
  hand_over(*current_);
  if (lookahead_) next_ = pull();
  return Iterator(this, generation_);
}

std::optional<DeviceLoader::Slot> DeviceLoader::pull() {
  if (loader_done_) return std::nullopt;
  Slot slot;
  try {
    if (!started_) {
      it_ = loader_->begin();
      started_ = true;
    } else {
      ++it_;
    }
    if (it_ == std::default_sentinel) {
      loader_done_ = true;
      return std::nullopt;
    }
    slot.batch = std::move(*it_);
    slot.state = loader_->state();
  } catch (...) {
    // The loader stays at the failed batch (its position is the caller's): nothing to rewind.
    slot.error = std::current_exception();
    loader_done_ = true;
    return slot;
  }
  try {
    stage(slot);
  } catch (...) {
    slot.error = std::current_exception();
    slot.batch = Example{};
    slot.rewind_to = LoaderState{slot.state.epoch, slot.state.batch - 1};  // before this batch
    loader_done_ = true;
  }
  return slot;
}

void DeviceLoader::stage(Slot& slot) {
  Example& b = slot.batch;
  EMBER_CHECK(b.x.defined() && b.x.is_cpu() && (!b.y.defined() || b.y.is_cpu()), DeviceError,
              "DeviceLoader: expected the loader's batches on the CPU, found x ", where(b.x), " and y ", where(b.y),
              " (batch ", slot.state.batch - 1, " of epoch ", slot.state.epoch, ")");
  if (!cuda_) return;  // CPU: the loader's batch as it is

  const int dev = device_.index;
  NoGradGuard no_grad;
  // (1) Allocated while the caller's stream is current: the blocks belong to it.
  cuda::Stream caller = cuda::current_stream(dev);
  Tensor x = empty(b.x.shape(), {.dtype = b.x.dtype(), .device = device_});
  Tensor y = b.y.defined() ? empty(b.y.shape(), {.dtype = b.y.dtype(), .device = device_}) : Tensor();
  // (2) The copy stream waits for everything queued on the caller's stream so far.
  cuda_->input->record(caller);
  cuda_->input->block(cuda_->stream);
  // (3) The copies, then the ready event, on the copy stream.
  const int e = next_event_;
  {
    cuda::StreamGuard guard(cuda_->stream);
    cuda_backend::copy_across(x, b.x.contiguous(), /*non_blocking=*/true);
    if (y.defined()) cuda_backend::copy_across(y, b.y.contiguous(), /*non_blocking=*/true);
    cuda_->ready[e]->record(cuda_->stream);
  }
  next_event_ = 1 - e;
  slot.event = e;
  slot.alloc_stream = caller.handle();
  b = Example{std::move(x), std::move(y)};  // the CPU batch is released (pinned: after the copy)
}

void DeviceLoader::hand_over(Slot& slot) {
  if (!cuda_ || slot.event < 0) return;
  // (4) The caller's stream waits for the batch's copies.
  cuda_->ready[slot.event]->block(cuda::current_stream(device_.index));
  slot.event = -1;  // handed over: nothing left to wait for when it is dropped
}

void DeviceLoader::discard(std::optional<Slot>& slot) noexcept {
  if (!slot) return;
  if (cuda_ && slot->event >= 0) {
    // (5) Copied but never handed over: its allocating stream waits for the copies before the
    // blocks can be reused there.
    try {
      cuda_->ready[slot->event]->block(cuda::Stream::wrap(slot->alloc_stream, device_.index));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ember: DeviceLoader: %s\n", e.what());
    }
  }
  slot.reset();
}

void DeviceLoader::advance() {
  std::optional<Slot> slot;
  if (lookahead_) {
    slot = std::move(next_);
    next_.reset();
  } else {
    slot = pull();
  }
  if (slot && slot->error) fail(*slot);
  current_ = std::move(slot);  // releases the previous batch
  if (!current_) {
    finish();  // the end of the epoch: the loader is already at {epoch + 1, 0}
    return;
  }
  hand_over(*current_);
  if (lookahead_) next_ = pull();
}

void DeviceLoader::fail(Slot& slot) {
  const std::exception_ptr error = slot.error;
  const std::optional<LoaderState> back = slot.rewind_to;
  discard(next_);
  current_.reset();
  finish();
  // A batch that could not be copied stays the loader's next one (as a failed batch of the loader).
  if (back && loader_->state() != *back) loader_->load_state(*back);
  std::rethrow_exception(error);
}

void DeviceLoader::finish() noexcept {
  discard(next_);
  try {
    // The loader may be a batch ahead of what the caller received: move it back.
    if (current_ && loader_->state() != current_->state) loader_->load_state(current_->state);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember: DeviceLoader: cannot move the loader back: %s\n", e.what());
  }
  discard(current_);
  it_ = DataLoader::Iterator();
  started_ = false;
  loader_done_ = true;
  ++generation_;
}

Example& DeviceLoader::current(uint64_t generation) {
  EMBER_CHECK(running(generation), ValueError,
              "DeviceLoader: expected a running iteration, found an iterator that is no longer valid (the loop ended, "
              "or begin() or load_state() was called since)");
  return current_->batch;
}

// ------------------------------------------------------------------ Iterator
DeviceLoader::Iterator::Iterator(Iterator&& other) noexcept : owner_(other.owner_), generation_(other.generation_) {
  other.owner_ = nullptr;
}

DeviceLoader::Iterator& DeviceLoader::Iterator::operator=(Iterator&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr && owner_->generation_ == generation_) owner_->finish();
    owner_ = other.owner_;
    generation_ = other.generation_;
    other.owner_ = nullptr;
  }
  return *this;
}

DeviceLoader::Iterator::~Iterator() {
  if (owner_ != nullptr && owner_->generation_ == generation_) owner_->finish();
}

Example& DeviceLoader::Iterator::operator*() const {
  EMBER_CHECK(owner_ != nullptr, ValueError,
              "DeviceLoader: expected an iterator from begin(), found a default-constructed or moved-from one");
  return owner_->current(generation_);
}

DeviceLoader::Iterator& DeviceLoader::Iterator::operator++() {
  EMBER_CHECK(owner_ != nullptr, ValueError,
              "DeviceLoader: expected an iterator from begin(), found a default-constructed or moved-from one");
  owner_->current(generation_);  // validates
  owner_->advance();
  return *this;
}

bool DeviceLoader::Iterator::operator==(std::default_sentinel_t) const {
  return owner_ == nullptr || !owner_->running(generation_);
}

}  // namespace ember::data
