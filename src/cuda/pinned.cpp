// Page-locked (pinned) host memory for DataLoader batches: a caching allocator of cudaHostAlloc
// blocks by power-of-two size class. A block freed by its tensor goes back to the cache, and is
// handed out again only once every asynchronous copy recorded on it (pinned_record_use, from
// copy_across) has finished, so a batch's tensor may die right after a non-blocking copy.
#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/pinned.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"

namespace ember::cuda_backend {

namespace {

class PinnedHostAllocator {
 public:
  struct Block {
    char* ptr = nullptr;
    size_t bytes = 0;
    bool free = false;
    std::vector<cudaEvent_t> uses;  // recorded after copies that read the block
  };

  void* allocate(size_t bytes) {
    size_t cls = size_t{1} << 12;
    while (cls < bytes) cls <<= 1;
    std::lock_guard<std::mutex> lock(mu_);
    auto range = free_.equal_range(cls);
    for (auto it = range.first; it != range.second; ++it) {
      Block* b = it->second;
      if (!uses_done(b)) continue;
      free_.erase(it);
      b->free = false;
      return b->ptr;
    }
    void* p = nullptr;
    EMBER_CUDA_CHECK(cudaHostAlloc(&p, cls, cudaHostAllocDefault));
    auto* b = new Block();
    b->ptr = static_cast<char*>(p);
    b->bytes = cls;
    blocks_.emplace(b->ptr, b);
    return p;
  }

  void release(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(static_cast<char*>(p));
    if (it == blocks_.end()) return;
    it->second->free = true;
    free_.emplace(it->second->bytes, it->second);
  }

  bool owns(const void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    return find(p) != nullptr;
  }

  void record_use(const void* p, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    Block* b = find(p);
    if (b == nullptr) return;
    // A block that lives long (a pinned data set copied slice by slice every step) would
    // otherwise collect one event per copy until it is freed.
    drop_finished_uses(b);
    cudaEvent_t ev = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventRecord(ev, stream));
    b->uses.push_back(ev);
  }

 private:
  // The block containing p (blocks_ is ordered by start address).
  Block* find(const void* p) {
    const char* c = static_cast<const char*>(p);
    auto it = blocks_.upper_bound(const_cast<char*>(c));
    if (it == blocks_.begin()) return nullptr;
    --it;
    Block* b = it->second;
    return c < b->ptr + b->bytes ? b : nullptr;
  }

  // Destroys the events of the block's copies that have finished.
  static void drop_finished_uses(Block* b) {
    size_t kept = 0;
    for (cudaEvent_t ev : b->uses) {
      const cudaError_t st = cudaEventQuery(ev);
      if (st == cudaErrorNotReady) {
        b->uses[kept++] = ev;
        continue;
      }
      if (st != cudaSuccess) {  // keep it (and the block out of reuse); the next query reports it
        cudaGetLastError();
        b->uses[kept++] = ev;
        continue;
      }
      cudaEventDestroy(ev);
    }
    b->uses.resize(kept);
  }

  // Whether every recorded copy from the block has finished (finished events are destroyed).
  static bool uses_done(Block* b) {
    while (!b->uses.empty()) {
      const cudaError_t st = cudaEventQuery(b->uses.back());
      if (st == cudaErrorNotReady) return false;
      EMBER_CUDA_CHECK(st);
      cudaEventDestroy(b->uses.back());
      b->uses.pop_back();
    }
    return true;
  }

  std::mutex mu_;
  std::map<char*, Block*> blocks_;       // every block, by address (leaked at exit on purpose:
  std::multimap<size_t, Block*> free_;   // the CUDA context may be gone by then)
};

PinnedHostAllocator& pinned_allocator() {
  static auto* a = new PinnedHostAllocator();
  return *a;
}

}  // namespace

bool pinned_owns(const void* ptr) { return ptr != nullptr && pinned_allocator().owns(ptr); }

void pinned_record_use(const void* ptr, cudaStream_t stream) { pinned_allocator().record_use(ptr, stream); }

bool is_pinned(const Tensor& t) { return t.defined() && t.is_cpu() && t.numel() > 0 && pinned_owns(t.data_ptr()); }

Tensor pin_memory(const Tensor& t) {
  EMBER_CHECK(t.defined(), ValueError, "pin_memory: got an undefined tensor");
  EMBER_CHECK(t.is_cpu(), DeviceError, "pin_memory: expected a CPU tensor, got one on ", t.device().str());
  if (!available() || t.numel() == 0 || is_pinned(t)) return t;
  const size_t bytes = static_cast<size_t>(t.numel()) * itemsize(t.dtype());
  void* p = pinned_allocator().allocate(bytes);
  Tensor out = from_blob(p, t.shape(), {.dtype = t.dtype()}, [](void* q) { pinned_allocator().release(q); });
  NoGradGuard ng;
  out.copy_(t);
  return out;
}

}  // namespace ember::cuda_backend
