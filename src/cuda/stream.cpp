// The public CUDA runtime API of include/ember/cuda.hpp: device selection, Stream/Event RAII
// types, the current stream, memory statistics and the TF32 switch.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/allocator.hpp"
#include "ember/cuda.hpp"

namespace ember::cuda {
namespace {

std::atomic<bool> g_allow_tf32{false};

// Streams are recycled, never destroyed: the caching allocator tags freed blocks with the
// stream that used them and later records events on that stream, so every handle it may hold
// must stay valid. A stream comes back here after its owner has waited for its work.
struct StreamPool {
  std::mutex mu;
  std::vector<cudaStream_t> free[cuda_backend::kMaxDevices][2];  // [device][non_blocking]
};
StreamPool& stream_pool() {
  static auto* pool = new StreamPool();  // leaked on purpose (used from destructors at exit)
  return *pool;
}

int resolve(int device) { return device < 0 ? current_device() : device; }

// Destructors must not throw: report and carry on.
void log_error(const char* what, cudaError_t st) {
  cudaGetLastError();
  std::fprintf(stderr, "ember: %s failed: %s\n", what, cudaGetErrorString(st));
}

}  // namespace

void set_device(int index) {
  cuda_backend::check_device(index, "set_device");
  EMBER_CUDA_CHECK(cudaSetDevice(index));
}

int current_device() {
  cuda_backend::check_device(0, "current_device");
  int d = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void synchronize(int device) {
  const int d = resolve(device);
  cuda_backend::check_device(d, "synchronize");
  cuda_backend::DeviceGuard guard(d);
  EMBER_CUDA_HOST_SYNC(cudaDeviceSynchronize());
}

// ------------------------------------------------------------------ Stream
Stream Stream::create(int device, bool non_blocking) {
  const int d = resolve(device);
  cuda_backend::check_device(d, "Stream::create");
  cuda_backend::DeviceGuard guard(d);
  cudaStream_t s = nullptr;
  {
    StreamPool& pool = stream_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    auto& list = pool.free[d][non_blocking ? 1 : 0];
    if (!list.empty()) {
      s = list.back();
      list.pop_back();
    }
  }
  if (s == nullptr)
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault));
  Stream r;
  r.handle_ = s;
  r.device_ = d;
  r.owned_ = true;
  return r;
}

Stream Stream::wrap(void* handle, int device) {
  cuda_backend::check_device(device, "Stream::wrap");
  Stream r;
  r.handle_ = handle;
  r.device_ = device;
  return r;
}

Stream::~Stream() {
  if (!owned_ || handle_ == nullptr) return;
  auto s = static_cast<cudaStream_t>(handle_);
  // Wait for the stream's work, then recycle it (see StreamPool).
  cuda_backend::count_host_sync();
  if (cudaError_t st = cudaStreamSynchronize(s); st != cudaSuccess) log_error("cudaStreamSynchronize", st);
  if (cuda_backend::current_stream(device_) == s) cuda_backend::clear_current_stream(device_);
  unsigned flags = 0;
  if (cudaError_t st = cudaStreamGetFlags(s, &flags); st != cudaSuccess) log_error("cudaStreamGetFlags", st);
  try {
    StreamPool& pool = stream_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    pool.free[device_][(flags & cudaStreamNonBlocking) ? 1 : 0].push_back(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember: Stream: %s\n", e.what());  // the handle is leaked, never destroyed
  }
}

Stream::Stream(Stream&& o) noexcept : handle_(o.handle_), device_(o.device_), owned_(o.owned_) {
  o.handle_ = nullptr;
  o.owned_ = false;
}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    Stream old(std::move(*this));  // destroys the previous stream, if owned
    handle_ = o.handle_;
    device_ = o.device_;
    owned_ = o.owned_;
    o.handle_ = nullptr;
    o.owned_ = false;
  }
  return *this;
}

void Stream::synchronize() const {
  cuda_backend::DeviceGuard guard(device_);
  EMBER_CUDA_HOST_SYNC(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
}

bool Stream::query() const {
  cuda_backend::DeviceGuard guard(device_);
  const cudaError_t st = cudaStreamQuery(static_cast<cudaStream_t>(handle_));
  if (st == cudaErrorNotReady) return false;
  EMBER_CUDA_CHECK(st);
  return true;
}

// ------------------------------------------------------------------ Event
Event::Event(bool enable_timing) {
  device_ = current_device();
  cudaEvent_t e = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, enable_timing ? cudaEventDefault : cudaEventDisableTiming));
  handle_ = e;
}

Event::~Event() {
  if (handle_ == nullptr) return;
  if (cudaError_t st = cudaEventDestroy(static_cast<cudaEvent_t>(handle_)); st != cudaSuccess)
    log_error("cudaEventDestroy", st);
}

Event::Event(Event&& o) noexcept : handle_(o.handle_), device_(o.device_) { o.handle_ = nullptr; }

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    Event old(std::move(*this));
    handle_ = o.handle_;
    device_ = o.device_;
    o.handle_ = nullptr;
  }
  return *this;
}

void Event::record(const Stream& stream) {
  EMBER_CHECK(handle_ != nullptr, ValueError, "Event::record: the event was moved from");
  EMBER_CHECK(stream.device() == device_, DeviceError, "Event::record: the event belongs to cuda:", device_,
              " but the stream to cuda:", stream.device());
  cuda_backend::DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), static_cast<cudaStream_t>(stream.handle())));
}

void Event::record() { record(current_stream(device_)); }

void Event::synchronize() const {
  EMBER_CHECK(handle_ != nullptr, ValueError, "Event::synchronize: the event was moved from");
  EMBER_CUDA_HOST_SYNC(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)));
}

bool Event::query() const {
  EMBER_CHECK(handle_ != nullptr, ValueError, "Event::query: the event was moved from");
  const cudaError_t st = cudaEventQuery(static_cast<cudaEvent_t>(handle_));
  if (st == cudaErrorNotReady) return false;
  EMBER_CUDA_CHECK(st);
  return true;
}

void Event::block(const Stream& stream) const {
  EMBER_CHECK(handle_ != nullptr, ValueError, "Event::block: the event was moved from");
  cuda_backend::DeviceGuard guard(stream.device());
  EMBER_CUDA_CHECK(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream.handle()), static_cast<cudaEvent_t>(handle_), 0));
}

float Event::elapsed_ms(const Event& end) const {
  EMBER_CHECK(handle_ != nullptr && end.handle_ != nullptr, ValueError, "Event::elapsed_ms: an event was moved from");
  float ms = 0.f;
  EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(handle_), static_cast<cudaEvent_t>(end.handle_)));
  return ms;
}

// ------------------------------------------------------------------ current stream
Stream current_stream(int device) {
  const int d = resolve(device);
  cuda_backend::check_device(d, "current_stream");
  return Stream::wrap(cuda_backend::current_stream(d), d);
}

void set_current_stream(const Stream& stream) {
  cuda_backend::set_current_stream(stream.device(), static_cast<cudaStream_t>(stream.handle()));
}

StreamGuard::StreamGuard(const Stream& stream) : device_(stream.device()) {
  previous_device_ = current_device();
  previous_stream_ = cuda_backend::current_stream(device_);
  set_device(device_);
  set_current_stream(stream);
}

StreamGuard::~StreamGuard() {
  try {
    cuda_backend::set_current_stream(device_, static_cast<cudaStream_t>(previous_stream_));
    if (cudaError_t st = cudaSetDevice(previous_device_); st != cudaSuccess) log_error("cudaSetDevice", st);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember: StreamGuard: %s\n", e.what());
  }
}

// ------------------------------------------------------------------ memory, TF32
AllocatorStats memory_stats(int device) {
  const int d = resolve(device);
  return allocator_for(Device::cuda(d)).stats();
}

void empty_cache() {
  for (int d = 0; d < device_count(); ++d) allocator_for(Device::cuda(d)).empty_cache();
}

void reset_peak_memory_stats(int device) { allocator_for(Device::cuda(resolve(device))).reset_peak_stats(); }

uint64_t host_sync_count() { return cuda_backend::host_syncs(); }

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

}  // namespace ember::cuda
