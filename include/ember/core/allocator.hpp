// Memory for tensors. The CPU allocator caches freed blocks by size class, because on this
// class of machine a freshly touched page costs ~1.5 us (MACHINE.md): reusing buffers across
// training steps avoids page faults. Blocks are 64-byte aligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "ember/core/device.hpp"
#include "ember/core/macros.hpp"

namespace ember {

/// Owning pointer to a block of device or host memory plus how to release it.
struct DataPtr {
  void* ptr = nullptr;
  std::function<void(void*)> deleter;  // may be empty for non-owning memory
  Device device = Device::cpu();
};

struct AllocatorStats {
  int64_t allocated_bytes = 0;       // held by live tensors (rounded to the size class)
  int64_t reserved_bytes = 0;        // allocated + cached free blocks
  int64_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes
  int64_t num_allocs = 0;            // calls that reached the system allocator
  int64_t num_requests = 0;          // all allocate() calls
};

class EMBER_API Allocator {
 public:
  virtual ~Allocator() = default;
  virtual DataPtr allocate(size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  /// Returns cached, unused blocks to the system.
  virtual void empty_cache() = 0;
  virtual void reset_peak_stats() = 0;
};

/// The process-wide caching allocator for CPU tensors.
EMBER_API Allocator& cpu_allocator();
/// The allocator for a device; throws DeviceError when the build has no backend for it.
EMBER_API Allocator& allocator_for(Device device);
/// Called by a device backend at load time to provide its allocators.
EMBER_API void register_allocator(DeviceType type, Allocator* (*get)(int index));

}  // namespace ember
