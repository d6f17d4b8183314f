// The public CUDA runtime API: device queries and selection, streams and events, the current
// stream, synchronisation, memory statistics and the TF32 switch. Every function is safe to call
// in any build: device queries report no devices without CUDA (or without a driver or GPU);
// functions that need a device throw DeviceError then.
//
// Streams: each thread has a current stream per device. By default it is the legacy default
// stream (handle nullptr), which orders itself with all other blocking streams, so code that
// never touches streams sees the usual synchronous-looking CUDA semantics. StreamGuard makes
// another stream current for a scope; every Ember op on that device then enqueues its kernels
// there. The caching allocator ties a freed block to the stream that allocated it: the block is
// reused at once by that stream, and by another stream only after an event recorded on the
// first one has completed. A tensor allocated on one stream and used on another must be kept
// alive until that other stream has finished with it (or the stream synchronised).
#pragma once

#include <cstdint>

#include "ember/core/allocator.hpp"
#include "ember/core/macros.hpp"

namespace ember::cuda {

/// True when Ember was built with CUDA and at least one device can be used.
EMBER_API bool is_available();
/// Number of usable CUDA devices (0 without CUDA, driver or GPU).
EMBER_API int device_count();
/// Makes `index` the calling thread's current device; DeviceError when out of range.
EMBER_API void set_device(int index);
/// The calling thread's current device (0 unless set_device was called).
EMBER_API int current_device();
/// Waits for all work on `device` (-1: the current device) to finish.
EMBER_API void synchronize(int device = -1);

/// A CUDA stream. A Stream made by Stream::create owns its handle: its destructor waits for the
/// stream's work and hands the handle back to a per-device pool for the next create (handles
/// are never destroyed, because the caching allocator may still record events on them). Views
/// (the default Stream, wrap, current_stream()) own nothing; a wrapped foreign stream on which
/// Ember allocated must stay alive for the rest of the process. Move-only. Destructors never
/// throw (errors are logged to stderr).
class EMBER_API Stream {
 public:
  /// A view of the legacy default stream of cuda:0 (current_stream(d) gives other devices').
  Stream() = default;
  /// A new stream on `device` (-1: current device); non_blocking streams do not wait for the
  /// legacy default stream.
  static Stream create(int device = -1, bool non_blocking = true);
  /// A non-owning view of an existing cudaStream_t (nullptr: the legacy default stream).
  static Stream wrap(void* handle, int device);
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// The cudaStream_t (nullptr for the legacy default stream).
  void* handle() const { return handle_; }
  int device() const { return device_; }
  /// Blocks until all work queued so far on this stream has finished.
  void synchronize() const;
  /// True when all work queued so far has finished (does not block).
  bool query() const;

 private:
  void* handle_ = nullptr;
  int device_ = 0;
  bool owned_ = false;
};

/// A CUDA event (optionally with timing). Move-only; the destructor never throws.
class EMBER_API Event {
 public:
  explicit Event(bool enable_timing = false);
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Records the event on `stream` (its work so far).
  void record(const Stream& stream);
  /// Records the event on the current stream of the current device.
  void record();
  /// Blocks until the recorded work has finished.
  void synchronize() const;
  /// True when the recorded work has finished.
  bool query() const;
  /// Makes `stream` wait (on the device, without blocking the host) for this event.
  void block(const Stream& stream) const;
  /// Milliseconds between this event and `end` (both recorded with timing enabled).
  float elapsed_ms(const Event& end) const;
  void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;
  int device_ = 0;
};

/// A non-owning view of the calling thread's current stream on `device` (-1: current device).
EMBER_API Stream current_stream(int device = -1);
/// Makes `stream` the calling thread's current stream on its device (the stream must outlive
/// its use as the current stream; prefer StreamGuard).
EMBER_API void set_current_stream(const Stream& stream);

/// Makes a stream current (and its device the current device) for a scope, then restores both.
class EMBER_API StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  void* previous_stream_ = nullptr;
  int previous_device_ = 0;
  int device_ = 0;
};

/// The caching allocator's statistics for `device` (-1: current device).
EMBER_API AllocatorStats memory_stats(int device = -1);
/// Returns the allocator's cached free blocks on every device to the driver.
EMBER_API void empty_cache();
/// Sets peak_allocated_bytes to the current allocated_bytes on `device` (-1: current).
EMBER_API void reset_peak_memory_stats(int device = -1);

/// How many times Ember's CUDA runtime has blocked the host on a device since the process
/// started (all devices and threads; 0 without CUDA). Counted: cudaStreamSynchronize,
/// cudaDeviceSynchronize and cudaEventSynchronize (synchronize(), Stream::synchronize(), an owned
/// Stream's destructor, Event::synchronize(), empty_cache()), every device-to-host copy (item(),
/// to(cpu), to_vector: they wait for the stream), and host-to-device copies from pageable memory
/// that the driver may block on (a blocking to(cuda) of a CPU tensor that is not pinned; a
/// non_blocking copy of at most 64 MiB is staged and not counted). A copy between two devices is
/// ordered on both devices' current streams and does not block the host (not counted). A
/// training step that keeps its data and its bookkeeping on the device adds 0. Differences of
/// two reads are meaningful; the value itself only grows.
EMBER_API uint64_t host_sync_count();

/// Lets float32 matrix products use TF32 tensor cores (about 10 mantissa bits; off by default).
EMBER_API void set_allow_tf32(bool allow);
/// Whether float32 matrix products may use TF32.
EMBER_API bool allow_tf32();

}  // namespace ember::cuda
