// A block of memory shared by a tensor and all of its views, with the version counter that
// autograd uses to detect in-place modification of saved tensors.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ember/core/allocator.hpp"

namespace ember {

class EMBER_API Storage {
 public:
  Storage(DataPtr ptr, size_t nbytes) : ptr_(std::move(ptr)), nbytes_(nbytes) {}
  ~Storage() {
    if (ptr_.deleter) ptr_.deleter(ptr_.ptr);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Allocates nbytes on `device` through that device's allocator.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

  void* data() const { return ptr_.ptr; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return ptr_.device; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  DataPtr ptr_;
  size_t nbytes_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace ember
