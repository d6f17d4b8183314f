// CPU caching allocator. Requests are rounded up to a size class (multiples of 64 B below
// 4 KiB, then 8 classes per power of two: at most 12.5% waste), freed blocks go to a per-class
// free list and are handed out again without touching the system allocator. Large cached
// memory would otherwise be returned to the kernel by glibc and cost a page fault per 4 KiB on
// reuse (MACHINE.md).
#include <array>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "ember/core/allocator.hpp"
#include "ember/core/error.hpp"
#include "ember/core/storage.hpp"

namespace ember {
namespace {

constexpr size_t kAlign = 64;

size_t size_class(size_t n) {
  if (n == 0) return kAlign;
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 4096;
  while (p * 2 < n) p *= 2;
  size_t step = p / 8;  // p < n <= 2p: classes p + k*step
  return (n + step - 1) / step * step;
}

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  DataPtr allocate(size_t nbytes) override {
    size_t cls = size_class(nbytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.num_requests;
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
      }
      if (p == nullptr) {
        p = std::aligned_alloc(kAlign, cls);
        if (p == nullptr) {
          // Give cached blocks back and retry once before failing.
          release_all_locked();
          p = std::aligned_alloc(kAlign, cls);
        }
        if (p == nullptr) {
          EMBER_THROW(OutOfMemory, "CPU allocator: could not allocate ", nbytes, " bytes (size class ", cls,
                      "); allocated ", stats_.allocated_bytes, " bytes, reserved ", stats_.reserved_bytes, " bytes");
        }
        ++stats_.num_allocs;
        stats_.reserved_bytes += static_cast<int64_t>(cls);
      }
      stats_.allocated_bytes += static_cast<int64_t>(cls);
      stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    }
    return DataPtr{p, [this, cls](void* q) { release(q, cls); }, Device::cpu()};
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_all_locked();
  }

  void reset_peak_stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

 private:
  void release(void* p, size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated_bytes -= static_cast<int64_t>(cls);
    free_[cls].push_back(p);
  }
  void release_all_locked() {
    for (auto& [cls, list] : free_) {
      for (void* p : list) std::free(p);
      stats_.reserved_bytes -= static_cast<int64_t>(cls * list.size());
      list.clear();
    }
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

}  // namespace

Allocator& cpu_allocator() {
  // Leaked on purpose: tensors held in static objects may be freed after main returns.
  static auto* a = new CpuCachingAllocator();
  return *a;
}

namespace {
std::array<Allocator* (*)(int), 2> g_allocators{};
}

void register_allocator(DeviceType type, Allocator* (*get)(int index)) {
  g_allocators[static_cast<size_t>(type)] = get;
}

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  auto get = g_allocators[static_cast<size_t>(device.type)];
  EMBER_CHECK(get != nullptr, DeviceError, "cannot allocate on ", device.str(),
              ": this build of Ember has no CUDA support (configure with -DEMBER_WITH_CUDA=ON)");
  return *get(device.index);
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  DataPtr p = allocator_for(device).allocate(nbytes);
  p.device = device;
  return std::make_shared<Storage>(std::move(p), nbytes);
}

}  // namespace ember
