// DataLoader. Workers claim batch numbers in order from a window of at most
// prefetch * num_workers batches past the one the consumer waits for, build them, and park
// them in a map; the consumer takes them out in order. Everything waits on condition
// variables, and an exception from the dataset travels in the batch's slot to the consumer.
#include "ember/data/dataloader.hpp"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "ember/backend/cuda.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/grad_mode.hpp"

namespace ember::data {
namespace {

// High counter word of the shuffle's Philox draws; transforms use another domain bit.
constexpr uint64_t kShuffleDomain = uint64_t{1} << 63;

}  // namespace

struct DataLoader::Run {
  int64_t epoch = 0;
  std::vector<int64_t> order;  // the epoch's example order
  int64_t end = 0;             // batches in the epoch

  // Worker state, guarded by mu.
  std::mutex mu;
  std::condition_variable work_cv;   // workers wait for room in the window
  std::condition_variable ready_cv;  // the consumer waits for its batch
  int64_t next_claim = 0;
  int64_t next_deliver = 0;
  int64_t window = 0;
  bool stop = false;
  struct Slot {
    Example batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  ~Run() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (std::thread& t : workers) t.join();
  }
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  EMBER_CHECK(dataset_ != nullptr, ValueError, "DataLoader: the dataset is null");
  EMBER_CHECK(options_.batch_size >= 1, ValueError, "DataLoader: batch_size must be >= 1, got ", options_.batch_size);
  EMBER_CHECK(options_.num_workers >= 0, ValueError, "DataLoader: num_workers must be >= 0, got ",
              options_.num_workers);
  EMBER_CHECK(options_.prefetch >= 1, ValueError, "DataLoader: prefetch must be >= 1, got ", options_.prefetch);
  for (const auto& t : options_.transforms) EMBER_CHECK(t != nullptr, ValueError, "DataLoader: a transform is null");
  seed_ = options_.seed.value_or(default_generator().seed());
}

DataLoader::~DataLoader() { stop_run(); }

int64_t DataLoader::size() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop_run() {
  run_.reset();
  exhausted_ = true;
  current_ = Example{};
  ++generation_;
}

void DataLoader::set_epoch(int64_t epoch) { load_state({epoch, 0}); }

void DataLoader::load_state(const LoaderState& state) {
  EMBER_CHECK(state.epoch >= 0, ValueError, "DataLoader::load_state: negative epoch ", state.epoch);
  EMBER_CHECK(state.batch >= 0 && state.batch <= size(), ValueError, "DataLoader::load_state: batch ", state.batch,
              " is outside [0, ", size(), "] for this loader (", dataset_->size(), " examples, batch_size ",
              options_.batch_size, options_.drop_last ? ", drop_last" : "", ")");
  stop_run();
  state_ = state;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!options_.shuffle || n < 2) return order;
  // Fisher–Yates from the back; step k uses two 32-bit words of Philox block k / 2, and
  // j = floor(r * (i + 1) / 2^64) for a 64-bit r (bias below 2^-20 for any n < 2^44).
  const uint64_t hi = kShuffleDomain | static_cast<uint64_t>(epoch);
  uint32_t words[4];
  for (int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    if (k % 2 == 0) Philox::generate(seed_, static_cast<uint64_t>(k / 2), hi, words);
    const int w = static_cast<int>(k % 2) * 2;
    const uint64_t r = (static_cast<uint64_t>(words[w]) << 32) | words[w + 1];
    const auto j = static_cast<int64_t>((static_cast<unsigned __int128>(r) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<int64_t> DataLoader::batch_indices(int64_t epoch, int64_t batch) const {
  EMBER_CHECK(batch >= 0 && batch < size(), IndexError, "DataLoader::batch_indices: batch ", batch,
              " is out of range for ", size(), " batches");
  std::vector<int64_t> order = epoch_order(epoch);
  const int64_t b = options_.batch_size;
  const int64_t last = std::min<int64_t>((batch + 1) * b, static_cast<int64_t>(order.size()));
  return {order.begin() + batch * b, order.begin() + last};
}

Example DataLoader::build_batch(int64_t epoch, const std::vector<int64_t>& order, int64_t batch) const {
  NoGradGuard no_grad;  // batches are data, never part of a graph
  const int64_t b = options_.batch_size;
  const int64_t last = std::min<int64_t>((batch + 1) * b, static_cast<int64_t>(order.size()));
  std::vector<int64_t> indices(order.begin() + batch * b, order.begin() + last);
  Example e = dataset_->get_batch(indices);
  EMBER_CHECK(e.x.defined() && e.x.dim() >= 1 && e.x.size(0) == static_cast<int64_t>(indices.size()), ShapeError,
              "DataLoader: get_batch of ", indices.size(), " indices returned x of shape ",
              e.x.defined() ? shape_str(e.x.shape()) : std::string("<undefined>"), "; expected a first dimension of ",
              indices.size());
  apply_transforms(e.x, indices, options_.transforms, seed_, epoch);
  if (options_.pin_memory) {
    e.x = cuda_backend::pin_memory(e.x);
    if (e.y.defined()) e.y = cuda_backend::pin_memory(e.y);
  }
  return e;
}

DataLoader::Iterator DataLoader::begin() {
  const bool resume = run_ && run_->epoch == state_.epoch && run_->next_deliver == state_.batch;
  if (!resume) {
    stop_run();
    auto run = std::make_unique<Run>();
    run->epoch = state_.epoch;
    run->order = epoch_order(state_.epoch);
    run->end = size();
    run->next_claim = run->next_deliver = state_.batch;
    run->window = static_cast<int64_t>(options_.prefetch) * options_.num_workers;
    Run* r = run.get();
    for (int w = 0; w < options_.num_workers; ++w) {
      r->workers.emplace_back([this, r] {
        std::unique_lock<std::mutex> lock(r->mu);
        while (true) {
          r->work_cv.wait(
              lock, [&] { return r->stop || r->next_claim >= r->end || r->next_claim < r->next_deliver + r->window; });
          if (r->stop || r->next_claim >= r->end) return;
          const int64_t b = r->next_claim++;
          lock.unlock();
          Run::Slot slot;
          try {
            slot.batch = build_batch(r->epoch, r->order, b);
          } catch (...) {
            slot.error = std::current_exception();
          }
          lock.lock();
          r->ready.emplace(b, std::move(slot));
          r->ready_cv.notify_all();
        }
      });
    }
    run_ = std::move(run);
  }
  ++generation_;
  advance();
  return Iterator(this, generation_);
}

void DataLoader::advance() {
  Run& r = *run_;
  if (state_.batch >= r.end) {
    // Epoch complete: the next loop starts the next epoch.
    stop_run();
    state_ = {state_.epoch + 1, 0};
    return;
  }
  const int64_t b = state_.batch;
  Run::Slot slot;
  if (options_.num_workers == 0) {
    try {
      slot.batch = build_batch(r.epoch, r.order, b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    r.next_deliver = b + 1;
  } else {
    std::unique_lock<std::mutex> lock(r.mu);
    r.ready_cv.wait(lock, [&] { return r.ready.count(b) > 0; });
    auto it = r.ready.find(b);
    slot = std::move(it->second);
    r.ready.erase(it);
    r.next_deliver = b + 1;
    lock.unlock();
    r.work_cv.notify_all();
  }
  if (slot.error) {
    // The position stays at the failed batch; the workers are stopped before the throw.
    stop_run();
    std::rethrow_exception(slot.error);
  }
  current_ = std::move(slot.batch);
  exhausted_ = false;
  state_.batch = b + 1;
}

Example& DataLoader::current(uint64_t generation) {
  EMBER_CHECK(generation == generation_ && !exhausted_, ValueError,
              "DataLoader: this iterator is no longer valid (the loop ended, or begin(), set_epoch() or load_state() "
              "was called since)");
  return current_;
}

Example& DataLoader::Iterator::operator*() const {
  EMBER_CHECK(loader_ != nullptr, ValueError, "DataLoader: dereferencing a default-constructed iterator");
  return loader_->current(generation_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  EMBER_CHECK(loader_ != nullptr, ValueError, "DataLoader: incrementing a default-constructed iterator");
  loader_->current(generation_);  // validates
  loader_->advance();
  return *this;
}

bool DataLoader::Iterator::operator==(std::default_sentinel_t) const {
  return loader_ == nullptr || generation_ != loader_->generation_ || loader_->exhausted_;
}

}  // namespace ember::data
