// The CUDA runtime glue: device discovery (a machine without a driver or GPU has 0 devices,
// never a crash), the status-check functions behind EMBER_CUDA_CHECK / EMBER_CUBLAS_CHECK, a
// per-device caching allocator, and copy/fill between and on devices.
#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/check.hpp"
#include "cuda/kernels.hpp"
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

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so that later checks do not report it again
  std::string msg =
      ember::detail::str_cat("CUDA error: ", call, " failed at ", file, ":", line, " on ", current_device_str(), ": ",
                             cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
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

// Makes `index` the current device for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != index) EMBER_CUDA_CHECK(cudaSetDevice(index));
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);  // never throws
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

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

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}

  DataPtr allocate(size_t nbytes) override {
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_requests;
    void* p = nullptr;
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    } else {
      p = device_malloc_locked(nbytes, cls);
    }
    stats_.allocated_bytes += static_cast<int64_t>(cls);
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return DataPtr{p, [this, cls](void* q) { release(q, cls); }, Device::cuda(device_)};
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
                  stats_.reserved_bytes, " bytes reserved; the device has ", free_b, " of ", total_b, " bytes free");
    }
    EMBER_CUDA_CHECK(st);
    ++stats_.num_allocs;
    stats_.reserved_bytes += static_cast<int64_t>(cls);
    return p;
  }

  // Called from Storage's destructor: no CUDA call, nothing that throws.
  void release(void* p, size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated_bytes -= static_cast<int64_t>(cls);
    free_[cls].push_back(p);
  }

  void release_cached_locked() {
    for (auto& [cls, list] : free_) {
      for (void* p : list) EMBER_CUDA_CHECK(cudaFree(p));
      stats_.reserved_bytes -= static_cast<int64_t>(cls * list.size());
      list.clear();
    }
  }

  const int device_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

Allocator* device_allocator(int index) {
  const DeviceInfo& info = device_info();
  EMBER_CHECK(info.count > 0, DeviceError, "cannot allocate on cuda:", index, ": no CUDA device is usable (",
              info.reason, ")");
  EMBER_CHECK(index >= 0 && index < info.count, DeviceError, "cannot allocate on cuda:", index, ": this machine has ",
              info.count, " CUDA device(s), cuda:0 to cuda:", info.count - 1);
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

}  // namespace

// ------------------------------------------------------------------ entry points
bool available() { return device_info().count > 0; }

int device_count() { return device_info().count; }

void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking) {
  (void)non_blocking;  // pageable host memory: cudaMemcpy is synchronous either way
  EMBER_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel() && dst.is_contiguous() && src.is_contiguous(),
              NotImplemented, "copy between ", src.device().str(), " and ", dst.device().str(),
              ": only contiguous tensors of one dtype and size are copied across devices (got ",
              dtype_name(src.dtype()), " ", shape_str(src.shape()), " to ", dtype_name(dst.dtype()), " ",
              shape_str(dst.shape()), ")");
  const size_t bytes = static_cast<size_t>(dst.nbytes());
  if (bytes == 0) return;
  if (dst.is_cuda() && src.is_cpu()) {
    DeviceGuard guard(dst.device().index);
    EMBER_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyHostToDevice));
  } else if (dst.is_cpu() && src.is_cuda()) {
    DeviceGuard guard(src.device().index);
    EMBER_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToHost));
  } else if (dst.is_cuda() && src.is_cuda()) {
    if (dst.device() == src.device()) {
      DeviceGuard guard(dst.device().index);
      EMBER_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToDevice));
    } else {
      EMBER_CUDA_CHECK(cudaMemcpyPeer(dst.data_ptr(), dst.device().index, src.data_ptr(), src.device().index, bytes));
    }
  } else {
    std::memcpy(dst.data_ptr(), src.data_ptr(), bytes);
  }
}

void copy(const Tensor& dst, const Tensor& src) {
  EMBER_CHECK(dst.dtype() == src.dtype(), NotImplemented, "copy on CUDA from ", dtype_name(src.dtype()), " to ",
              dtype_name(dst.dtype()),
              ": dtype conversion on the device is not implemented yet (convert on the CPU, then move)");
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  if (dst.is_contiguous() && src.is_contiguous() && src.numel() == n) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), static_cast<size_t>(dst.nbytes()),
                                     cudaMemcpyDeviceToDevice, nullptr));
    return;
  }
  const kernels::StridedGeometry g = geometry(dst, &src, "copy");
  EMBER_CUDA_CHECK(
      kernels::strided_copy(dst.data_ptr(), src.data_ptr(), static_cast<int>(dst.element_size()), n, g, nullptr));
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
  EMBER_CUDA_CHECK(kernels::fill(dst.data_ptr(), static_cast<int>(dst.element_size()), pattern, n, g, nullptr));
}

}  // namespace ember::cuda_backend
