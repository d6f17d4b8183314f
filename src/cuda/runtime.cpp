// The CUDA runtime glue: device discovery (a machine without a driver or GPU has 0 devices,
// never a crash), the status-check functions behind EMBER_CUDA_CHECK / EMBER_CUBLAS_CHECK, a
// per-device caching allocator, and copy/fill between and on devices.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
#include "cuda/pinned.hpp"
#include "cuda/runtime.hpp"
#include "ember/backend/cuda.hpp"
#include "ember/core/allocator.hpp"
#include "ember/core/dispatch.hpp"
#include "ember/core/error.hpp"

namespace ember::cuda_backend {

// ------------------------------------------------------------------ status checks
namespace detail {
namespace {
std::string current_device_str() {
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return "unknown device";
  }
  return "cuda:" + std::to_string(dev);
}
}  // namespace

namespace {
// Errors that leave the CUDA context unusable (a kernel fault): every later call of the process
// fails with the same status, so the first report is the one that matters.
bool is_sticky(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable: return true;
    default: return false;
  }
}
}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so that later checks do not report it again
  std::string msg =
      ember::detail::str_cat("CUDA error: ", call, " failed at ", file, ":", line, " on ", current_device_str(), ": ",
                             cudaGetErrorString(status), " (", cudaGetErrorName(status), ")",
                             is_sticky(status) ? "; a kernel fault earlier in the stream (possibly in an unrelated "
                                                 "op: launches are asynchronous) left the CUDA context unusable, and "
                                                 "every later CUDA call of this process fails"
                                               : "");
  if (status == cudaErrorMemoryAllocation) throw OutOfMemory(msg);
  throw DeviceError(msg);
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw DeviceError(ember::detail::str_cat("cuBLAS error: ", call, " failed at ", file, ":", line, " on ",
                                           current_device_str(), ": ", cublasGetStatusString(status), " (",
                                           cublasGetStatusName(status), ")"));
}
}  // namespace detail

namespace {

// ------------------------------------------------------------------ devices
struct DeviceInfo {
  int count = 0;
  std::string reason;  // why there are none, for messages
};

// Asked once: without a driver cudaGetDeviceCount fails ("CUDA driver version is
// insufficient for CUDA runtime version"), which means "no GPU" here, not an error.
const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    cudaError_t st = cudaGetDeviceCount(&d.count);
    if (st != cudaSuccess) {
      cudaGetLastError();
      d.count = 0;
      d.reason = ember::detail::str_cat("cudaGetDeviceCount: ", cudaGetErrorString(st));
    } else if (d.count == 0) {
      d.reason = "the CUDA driver reports no devices";
    }
    return d;
  }();
  return info;
}

}  // namespace

// ------------------------------------------------------------------ host synchronisations
namespace {
std::atomic<uint64_t> g_host_syncs{0};
}  // namespace

void count_host_sync() noexcept { g_host_syncs.fetch_add(1, std::memory_order_relaxed); }

uint64_t host_syncs() noexcept { return g_host_syncs.load(std::memory_order_relaxed); }

// ------------------------------------------------------------------ devices, streams
namespace {
// The calling thread's current stream per device; nullptr = the legacy default stream.
thread_local cudaStream_t tl_streams[kMaxDevices] = {};
}  // namespace

void check_device(int index, const char* what) {
  const DeviceInfo& info = device_info();
  EMBER_CHECK(info.count > 0, DeviceError, what, " on cuda:", index, ": no CUDA device is usable (", info.reason, ")");
  EMBER_CHECK(index >= 0 && index < info.count, DeviceError, what, " on cuda:", index, ": this machine has ",
              info.count, " CUDA device(s), cuda:0 to cuda:", info.count - 1);
  EMBER_CHECK(index < kMaxDevices, NotImplemented, what, ": at most ", kMaxDevices, " devices are supported");
}

cudaStream_t current_stream(int device) { return device >= 0 && device < kMaxDevices ? tl_streams[device] : nullptr; }

void clear_current_stream(int device) noexcept {
  if (device >= 0 && device < kMaxDevices) tl_streams[device] = nullptr;
}

void set_current_stream(int device, cudaStream_t stream) {
  check_device(device, "set_current_stream");
  tl_streams[device] = stream;
}

DeviceGuard::DeviceGuard(int index) {
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index) EMBER_CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::~DeviceGuard() {
  int now = previous_;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);  // never throws
}

namespace {

// ------------------------------------------------------------------ allocator
// Rounds requests to 512 B below 1 MiB and to 8 classes per power of two above (at most 12.5%
// waste), so that the blocks of one training step are found again in the next one without
// cudaMalloc (which synchronises the device).
size_t size_class(size_t n) {
  constexpr size_t kSmall = 512;
  if (n == 0) return kSmall;
  if (n <= (size_t{1} << 20)) return (n + kSmall - 1) / kSmall * kSmall;
  size_t p = size_t{1} << 20;
  while (p * 2 < n) p *= 2;
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

// Stream-ordered caching: a block remembers the stream that allocated it. Freed, it is reused
// at once by that stream (its kernels are ordered after the last use). Another stream takes it
// only after an event recorded on the owning stream has completed, so no kernel can still be
// touching it. Storage's deleter (release) makes no CUDA call and never throws.
class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}

  DataPtr allocate(size_t nbytes) override {
    const size_t cls = size_class(nbytes);
    const cudaStream_t stream = current_stream(device_);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_requests;
    void* p = take_cached_locked(cls, stream);
    if (p == nullptr) p = device_malloc_locked(nbytes, cls);
    stats_.allocated_bytes += static_cast<int64_t>(cls);
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return DataPtr{p, [this, cls, stream](void* q) { release(q, cls, stream); }, Device::cuda(device_)};
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceGuard guard(device_);
    release_cached_locked();
  }

  void reset_peak_stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

 private:
  struct Block {
    void* ptr = nullptr;
    cudaStream_t stream = nullptr;
    bool any_stream = false;  // its owning stream's event completed: free for every stream
  };
  struct Pending {
    Block block;
    size_t cls = 0;
    cudaEvent_t event = nullptr;
  };

  void* take_cached_locked(size_t cls, cudaStream_t stream) {
    auto it = free_.find(cls);
    if (it == free_.end()) return nullptr;
    std::vector<Block>& list = it->second;
    for (size_t i = list.size(); i-- > 0;) {
      if (list[i].stream == stream || list[i].any_stream) return pop_locked(list, i);
    }
    // The stream's own blocks that another stream's request sent to pending_ are still safe for
    // it (its later work is ordered after their last use): take one back rather than cudaMalloc.
    for (size_t i = pending_.size(); i-- > 0;) {
      if (pending_[i].cls != cls || pending_[i].block.stream != stream) continue;
      void* p = pending_[i].block.ptr;
      events_.push_back(pending_[i].event);  // may be re-recorded before it completes
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
      return p;
    }
    // Blocks of other streams whose events have completed become free for everyone.
    poll_pending_locked();
    for (size_t i = list.size(); i-- > 0;) {
      if (list[i].any_stream) return pop_locked(list, i);
    }
    // Mark the other streams' blocks of this class so that a later request can take them.
    DeviceGuard guard(device_);
    for (size_t i = list.size(); i-- > 0;) {
      Pending pd{list[i], cls, new_event_locked()};
      EMBER_CUDA_CHECK(cudaEventRecord(pd.event, pd.block.stream));
      pending_.push_back(pd);
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return nullptr;
  }

  static void* pop_locked(std::vector<Block>& list, size_t i) {
    void* p = list[i].ptr;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    return p;
  }

  void poll_pending_locked() {
    for (size_t i = pending_.size(); i-- > 0;) {
      const cudaError_t st = cudaEventQuery(pending_[i].event);
      if (st == cudaErrorNotReady) continue;
      EMBER_CUDA_CHECK(st);
      Block b = pending_[i].block;
      b.any_stream = true;
      free_[pending_[i].cls].push_back(b);
      events_.push_back(pending_[i].event);
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  cudaEvent_t new_event_locked() {
    if (!events_.empty()) {
      cudaEvent_t e = events_.back();
      events_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }

  void* device_malloc_locked(size_t nbytes, size_t cls) {
    DeviceGuard guard(device_);
    void* p = nullptr;
    cudaError_t st = cudaMalloc(&p, cls);
    if (st == cudaErrorMemoryAllocation) {
      // Give the cached blocks back and try once more before reporting.
      cudaGetLastError();
      release_cached_locked();
      st = cudaMalloc(&p, cls);
    }
    if (st == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
      EMBER_THROW(OutOfMemory, "CUDA allocator: could not allocate ", nbytes, " bytes (size class ", cls,
                  ") on cuda:", device_, "; Ember holds ", stats_.allocated_bytes, " bytes in tensors and ",
                  stats_.reserved_bytes, " bytes reserved (peak ", stats_.peak_allocated_bytes, ", ", stats_.num_allocs,
                  " device allocations); the device has ", free_b, " of ", total_b, " bytes free");
    }
    EMBER_CUDA_CHECK(st);
    ++stats_.num_allocs;
    stats_.reserved_bytes += static_cast<int64_t>(cls);
    return p;
  }

  // Called from Storage's destructor: no CUDA call, nothing that throws (push_back may throw
  // bad_alloc only when the host is out of memory).
  void release(void* p, size_t cls, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated_bytes -= static_cast<int64_t>(cls);
    free_[cls].push_back(Block{p, stream, false});
  }

  void release_cached_locked() {
    for (Pending& pd : pending_) {
      EMBER_CUDA_HOST_SYNC(cudaEventSynchronize(pd.event));
      free_[pd.cls].push_back(pd.block);
      events_.push_back(pd.event);
    }
    pending_.clear();
    for (auto& [cls, list] : free_) {
      for (const Block& b : list) EMBER_CUDA_HOST_SYNC(cudaFree(b.ptr));  // cudaFree waits for the device
      stats_.reserved_bytes -= static_cast<int64_t>(cls * list.size());
      list.clear();
    }
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    events_.clear();
  }

  const int device_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<Block>> free_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> events_;  // idle events for reuse
  AllocatorStats stats_;
};

Allocator* device_allocator(int index) {
  check_device(index, "cannot allocate");
  const DeviceInfo& info = device_info();
  // Leaked on purpose: tensors in static objects may be freed after main returns, and the CUDA
  // context may already be gone by then.
  static std::vector<CudaCachingAllocator*>* allocators = [&] {
    auto* v = new std::vector<CudaCachingAllocator*>();
    for (int i = 0; i < info.count; ++i) v->push_back(new CudaCachingAllocator(i));
    return v;
  }();
  return (*allocators)[static_cast<size_t>(index)];
}

// Registered when libember is loaded; asks nothing of the driver until the first allocation.
const bool kAllocatorRegistered = [] {
  register_allocator(DeviceType::cuda, &device_allocator);
  return true;
}();

// ------------------------------------------------------------------ pinned staging buffers
// Page-locked host buffers for asynchronous host-to-device copies: the source is copied into
// one, the transfer is queued on the stream, and the buffer is reused once an event recorded
// after the transfer has completed.
class PinnedPool {
 public:
  struct Buffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    cudaEvent_t event = nullptr;  // recorded after the last transfer from this buffer
    int event_device = -1;        // the device `event` was created on
    bool busy = false;
  };

  // A free buffer of at least `bytes` (allocating one if none is idle).
  Buffer* acquire(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Buffer* b : buffers_) {
      if (b->busy || b->bytes < bytes) continue;
      const cudaError_t st = b->event ? cudaEventQuery(b->event) : cudaSuccess;
      if (st == cudaErrorNotReady) continue;
      EMBER_CUDA_CHECK(st);
      b->busy = true;
      return b;
    }
    auto* b = new Buffer();
    b->bytes = std::max<size_t>(bytes, size_t{1} << 16);
    EMBER_CUDA_CHECK(cudaHostAlloc(&b->ptr, b->bytes, cudaHostAllocDefault));
    b->busy = true;
    buffers_.push_back(b);
    return b;
  }

  // Marks the buffer reusable after the work queued on `stream` (of `device`, the current
  // device) so far: the transfer. An event must be recorded on a stream of the device it was
  // created on, and the pool serves every device: a buffer that moves to another device gets a
  // new event (the old one has completed: acquire() checked it).
  void release_after(Buffer* b, cudaStream_t stream, int device) {
    std::lock_guard<std::mutex> lock(mu_);
    if (b->event != nullptr && b->event_device != device) {
      cudaEventDestroy(b->event);
      b->event = nullptr;
    }
    if (b->event == nullptr) {
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&b->event, cudaEventDisableTiming));
      b->event_device = device;
    }
    EMBER_CUDA_CHECK(cudaEventRecord(b->event, stream));
    b->busy = false;
  }

 private:
  std::mutex mu_;
  std::vector<Buffer*> buffers_;  // leaked at exit on purpose (the CUDA context may be gone)
};

PinnedPool& pinned_pool() {
  static auto* pool = new PinnedPool();
  return *pool;
}

// Buffers above this size are copied straight from pageable memory (staging would double the
// host traffic for little gain).
constexpr size_t kMaxStagedBytes = size_t{64} << 20;

// ------------------------------------------------------------------ geometry
kernels::StridedGeometry geometry(const Tensor& dst, const Tensor* src, const char* op) {
  const int64_t nd = dst.dim();
  EMBER_CHECK(nd <= kernels::kMaxDims, NotImplemented, op, " on CUDA: tensors of ", nd, " dimensions (at most ",
              kernels::kMaxDims, " are supported)");
  kernels::StridedGeometry g;
  g.ndim = static_cast<int32_t>(nd);
  for (int64_t d = 0; d < nd; ++d) {
    g.sizes[d] = dst.size(d);
    g.dst_strides[d] = dst.stride(d);
  }
  if (src != nullptr) {
    // src broadcasts to dst: align trailing dimensions, stride 0 where src has size 1 or no dim.
    const int64_t lead = nd - src->dim();
    for (int64_t d = 0; d < nd; ++d) {
      const int64_t sd = d - lead;
      g.src_strides[d] = (sd < 0 || src->size(sd) == 1) ? 0 : src->stride(sd);
    }
  }
  return g;
}

// A device-owned event for one cross-device hand-over, destroyed on scope exit (a recorded event
// may be destroyed before it completes: the driver releases it afterwards).
struct ScopedEvent {
  cudaEvent_t e = nullptr;
  explicit ScopedEvent(int device) {
    DeviceGuard guard(device);
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~ScopedEvent() {
    if (e != nullptr) cudaEventDestroy(e);
  }
  ScopedEvent(const ScopedEvent&) = delete;
  ScopedEvent& operator=(const ScopedEvent&) = delete;
};

// Copies between two devices in stream order, without blocking the host: the destination's
// current stream waits for the work queued so far on the source's current stream (the producers
// of src), the copy runs on the destination's stream, and the source's stream then waits for the
// copy, so that src's block (tied to the source's stream by the caching allocator) is not reused
// before the copy has read it. (cudaMemcpyPeer would not block the host either, but it
// serialises with all work on both devices.)
void copy_peer(const Tensor& dst, const Tensor& src, size_t bytes) {
  const int sd = src.device().index, dd = dst.device().index;
  const cudaStream_t ss = current_stream(sd), ds = current_stream(dd);
  ScopedEvent src_ready(sd), copied(dd);
  {
    DeviceGuard guard(sd);
    EMBER_CUDA_CHECK(cudaEventRecord(src_ready.e, ss));
  }
  {
    DeviceGuard guard(dd);
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(ds, src_ready.e, 0));
    EMBER_CUDA_CHECK(cudaMemcpyPeerAsync(dst.data_ptr(), dd, src.data_ptr(), sd, bytes, ds));
    EMBER_CUDA_CHECK(cudaEventRecord(copied.e, ds));
  }
  DeviceGuard guard(sd);
  EMBER_CUDA_CHECK(cudaStreamWaitEvent(ss, copied.e, 0));
}

}  // namespace

// ------------------------------------------------------------------ entry points
bool available() { return device_info().count > 0; }

int device_count() { return device_info().count; }

Tensor scratch(int device, int64_t bytes) { return empty({bytes}, {.dtype = kUInt8, .device = Device::cuda(device)}); }

void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking) {
  EMBER_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel() && dst.is_contiguous() && src.is_contiguous(),
              NotImplemented, "copy between ", src.device().str(), " and ", dst.device().str(),
              ": only contiguous tensors of one dtype and size are copied across devices (got ",
              dtype_name(src.dtype()), " ", shape_str(src.shape()), " to ", dtype_name(dst.dtype()), " ",
              shape_str(dst.shape()), ")");
  const size_t bytes = static_cast<size_t>(dst.nbytes());
  if (bytes == 0) return;
  if (dst.is_cuda() && src.is_cpu()) {
    const int dev = dst.device().index;
    DeviceGuard guard(dev);
    const cudaStream_t stream = current_stream(dev);
    const bool pinned = pinned_owns(src.data_ptr());  // one lookup in the pinned allocator (it locks)
    if (non_blocking && pinned) {
      // Already page-locked (cuda_backend::pin_memory): copied straight from it; the allocator
      // keeps the block out of reuse until the copy has finished.
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyHostToDevice, stream));
      pinned_record_use(src.data_ptr(), stream);
    } else if (non_blocking && bytes <= kMaxStagedBytes) {
      PinnedPool::Buffer* buf = pinned_pool().acquire(bytes);
      std::memcpy(buf->ptr, src.data_ptr(), bytes);
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), buf->ptr, bytes, cudaMemcpyHostToDevice, stream));
      pinned_pool().release_after(buf, stream, dev);
    } else if (pinned) {
      // A blocking copy from page-locked memory: cudaMemcpyAsync would return at once, and the
      // caller may change or free the source as soon as this returns, so wait for the copy.
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyHostToDevice, stream));
      EMBER_CUDA_HOST_SYNC(cudaStreamSynchronize(stream));
    } else {
      // From pageable memory the call returns once the source has been read (into the driver's
      // staging buffers, waiting for earlier transfers when they are full), so the caller may
      // free or change it at once; ordering on the stream is kept. Counted as a host sync.
      EMBER_CUDA_HOST_SYNC(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyHostToDevice, stream));
    }
  } else if (dst.is_cpu() && src.is_cuda()) {
    // The host reads the result next: wait for the stream (and only that stream).
    const int dev = src.device().index;
    DeviceGuard guard(dev);
    const cudaStream_t stream = current_stream(dev);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToHost, stream));
    EMBER_CUDA_HOST_SYNC(cudaStreamSynchronize(stream));
  } else if (dst.is_cuda() && src.is_cuda()) {
    if (dst.device() == src.device()) {
      const int dev = dst.device().index;
      DeviceGuard guard(dev);
      EMBER_CUDA_CHECK(
          cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToDevice, current_stream(dev)));
    } else {
      copy_peer(dst, src, bytes);
    }
  } else {
    std::memcpy(dst.data_ptr(), src.data_ptr(), bytes);
  }
}

void copy(const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int dev = dst.device().index;
  check_device(dev, "copy");
  DeviceGuard guard(dev);
  const cudaStream_t stream = current_stream(dev);
  const bool flat = dst.is_contiguous() && src.is_contiguous() && src.numel() == n;
  kernels::StridedGeometry g;
  if (flat) {
    g.ndim = 1;
    g.sizes[0] = n;
    g.dst_strides[0] = g.src_strides[0] = 1;
  } else {
    g = geometry(dst, &src, "copy");
  }
  if (dst.dtype() != src.dtype()) {
    EMBER_CUDA_CHECK(kernels::convert(dst.data_ptr(), kernel_elem_type(dst.dtype()), src.data_ptr(),
                                      kernel_elem_type(src.dtype()), n, g, stream));
    return;
  }
  if (flat) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), static_cast<size_t>(dst.nbytes()),
                                     cudaMemcpyDeviceToDevice, stream));
    return;
  }
  EMBER_CUDA_CHECK(
      kernels::strided_copy(dst.data_ptr(), src.data_ptr(), static_cast<int>(dst.element_size()), n, g, stream));
}

void fill(const Tensor& dst, const Scalar& value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  uint64_t pattern = 0;
  dispatch(dst.dtype(), "fill", [&]<class T>() {
    const T v = value.to<T>();
    std::memcpy(&pattern, &v, sizeof(T));
  });
  DeviceGuard guard(dst.device().index);
  const kernels::StridedGeometry g = geometry(dst, nullptr, "fill");
  EMBER_CUDA_CHECK(kernels::fill(dst.data_ptr(), static_cast<int>(dst.element_size()), pattern, n, g,
                                 current_stream(dst.device().index)));
}

}  // namespace ember::cuda_backend
