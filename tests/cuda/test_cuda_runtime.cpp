// The CUDA runtime slice: check macros, device discovery, the caching allocator, transfers and
// on-device copy/fill. Tests that need a GPU skip themselves without one; the check-macro tests
// run everywhere (they need no device).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "cuda/check.hpp"
#include "ember/backend/cuda.hpp"

using namespace ember;

namespace {

#define EMBER_REQUIRE_CUDA_DEVICE() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

// Values that every dtype holds exactly (bool sees 0/1).
std::vector<double> sample_values(DType dt, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (dt == DType::boolean)
      v[i] = (i % 3 == 0) ? 1.0 : 0.0;
    else if (dt == DType::u8)
      v[i] = static_cast<double>((i * 7) % 251);
    else
      v[i] = static_cast<double>((i * 7) % 23) - 11.0;  // negatives, exact in f16/bf16
  }
  return v;
}

const std::vector<DType> kAllDTypes = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                       DType::i32, DType::i64, DType::u8,  DType::boolean};

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(CudaCheck, RuntimeErrorNamesCallFileAndStatus) {
  std::string msg;
  try {
    EMBER_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "EMBER_CUDA_CHECK did not throw";
  } catch (const DeviceError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test_cuda_runtime.cpp"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUDA error"), std::string::npos) << msg;
  EXPECT_THROW(EMBER_CUDA_CHECK(cudaErrorMemoryAllocation), OutOfMemory);
  EXPECT_NO_THROW(EMBER_CUDA_CHECK(cudaSuccess));
}

TEST(CudaCheck, CublasErrorNamesStatus) {
  std::string msg = error_message([] { EMBER_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED); });
  EXPECT_NE(msg.find("CUBLAS_STATUS_NOT_INITIALIZED"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuBLAS error"), std::string::npos) << msg;
  EXPECT_THROW(EMBER_CUBLAS_CHECK(CUBLAS_STATUS_EXECUTION_FAILED), DeviceError);
  EXPECT_NO_THROW(EMBER_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
}

TEST(CudaCheck, StickyErrorSaysTheContextIsUnusable) {
  // A kernel fault poisons the context: the message says so, so that the first failing test of
  // a run is read as the cause of the ones after it.
  const std::string msg = error_message([] { EMBER_CUDA_CHECK(cudaErrorIllegalAddress); });
  EXPECT_NE(msg.find("cudaErrorIllegalAddress"), std::string::npos) << msg;
  EXPECT_NE(msg.find("context unusable"), std::string::npos) << msg;
  EXPECT_EQ(error_message([] { EMBER_CUDA_CHECK(cudaErrorInvalidValue); }).find("unusable"), std::string::npos);
}

TEST(CudaRuntime, DeviceCountIsStableAndConsistent) {
  const int n = cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda::device_count(), n);
  EXPECT_EQ(cuda::is_available(), n > 0);
}

TEST(CudaRuntime, RoundTripEveryDType) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{4097}}) {
      std::vector<double> want = sample_values(dt, n);
      Tensor host = tensor<double>(want, {n}).to(dt);
      Tensor dev = host.to(Device::cuda(0));
      EXPECT_TRUE(dev.is_cuda());
      EXPECT_EQ(dev.dtype(), dt);
      EXPECT_EQ(dev.shape(), host.shape());
      EXPECT_EQ(dev.cpu().to_vector<double>(), want);
      // device to device (same device) keeps the values too
      EXPECT_EQ(dev.clone().cpu().to_vector<double>(), want);
    }
  }
}

TEST(CudaRuntime, NonContiguousSourcesAndBroadcast) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<float>(i);
  Tensor a = tensor<float>(v, {3, 4});
  Tensor da = a.cuda();
  // a transposed view copied on the device (strided kernel) matches the CPU
  EXPECT_EQ(da.t().contiguous().cpu().to_vector<float>(), a.t().contiguous().to_vector<float>());
  EXPECT_EQ(da.slice(1, 1, 4, 2).contiguous().cpu().to_vector<float>(),
            a.slice(1, 1, 4, 2).contiguous().to_vector<float>());
  // broadcast a row into a (3, 4) device tensor
  Tensor row = tensor<float>({1.f, 2.f, 3.f, 4.f}).cuda();
  Tensor dst = zeros({3, 4}, {.device = Device::cuda(0)});
  dst.copy_(row);
  EXPECT_EQ(dst.cpu().to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}));
  // a non-contiguous CPU source goes through a host-side contiguous copy
  EXPECT_EQ(a.t().cuda().cpu().to_vector<float>(), a.t().contiguous().to_vector<float>());
}

TEST(CudaRuntime, FillEveryDTypeAndStridedFill) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor t = full({5, 7}, 3, {.dtype = dt, .device = Device::cuda(0)});
    const double want = dt == DType::boolean ? 1.0 : 3.0;
    for (double x : t.cpu().to_vector<double>()) EXPECT_EQ(x, want);
  }
  Tensor t = zeros({4, 6}, {.device = Device::cuda(0)});
  t.t().select(0, 2).fill_(5.0);  // column 2: stride 6
  std::vector<float> got = t.cpu().to_vector<float>();
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 6; ++c) EXPECT_EQ(got[r * 6 + c], c == 2 ? 5.0f : 0.0f) << r << "," << c;
  }
  Tensor h = full({3}, 0.1, {.dtype = kFloat16, .device = Device::cuda(0)});
  for (float x : h.cpu().to_vector<float>()) EXPECT_EQ(x, static_cast<float>(Half(0.1f)));
}

TEST(CudaRuntime, DTypeConversionOnDeviceMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (DType from : kAllDTypes) {
    // Values every dtype holds after conversion (no negative to u8, which C++ leaves undefined).
    std::vector<double> v = sample_values(from == DType::u8 ? DType::u8 : DType::boolean, 37);
    if (from != DType::u8 && from != DType::boolean)
      for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 5) % 17) + (is_floating(from) ? 0.5 : 0.0);
    Tensor h = tensor<double>(v, {37}).to(from);
    Tensor d = h.cuda();
    for (DType to : kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      EXPECT_EQ(d.to(to).cpu().to_vector<double>(), h.to(to).to_vector<double>());
      // A strided (broadcast, transposed) source on the device.
      Tensor h2 = h.unsqueeze(1).expand({37, 2}).t();
      Tensor d2 = d.unsqueeze(1).expand({37, 2}).t();
      EXPECT_EQ(d2.to(to).cpu().to_vector<double>(), h2.to(to).to_vector<double>());
    }
  }
  // NaN to bool is true, as on the CPU.
  Tensor n = full({2}, NAN, {.device = Device::cuda(0)});
  EXPECT_EQ(n.to(kBool).cpu().to_vector<double>(), (std::vector<double>{1, 1}));
}

TEST(CudaRuntime, AllocatorCachesAndReportsStats) {
  EMBER_REQUIRE_CUDA_DEVICE();
  Allocator& alloc = allocator_for(Device::cuda(0));
  alloc.empty_cache();
  const AllocatorStats before = alloc.stats();
  constexpr int64_t kBytes = int64_t{3} << 20;
  {
    Tensor t = empty({kBytes / 4}, {.device = Device::cuda(0)});
    const AllocatorStats during = alloc.stats();
    EXPECT_GE(during.allocated_bytes - before.allocated_bytes, kBytes);
    EXPECT_GE(during.reserved_bytes, during.allocated_bytes);
    EXPECT_GE(during.peak_allocated_bytes, during.allocated_bytes);
    EXPECT_EQ(during.num_allocs, before.num_allocs + 1);
  }
  const AllocatorStats after_free = alloc.stats();
  EXPECT_EQ(after_free.allocated_bytes, before.allocated_bytes);
  EXPECT_GE(after_free.reserved_bytes - before.reserved_bytes, kBytes);  // cached, not returned
  {
    Tensor again = empty({kBytes / 4}, {.device = Device::cuda(0)});
    EXPECT_EQ(alloc.stats().num_allocs, after_free.num_allocs);  // served from the cache
  }
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().reserved_bytes, before.reserved_bytes);
  alloc.reset_peak_stats();
  EXPECT_EQ(alloc.stats().peak_allocated_bytes, alloc.stats().allocated_bytes);
}

TEST(CudaRuntime, OutOfRangeDeviceAndHugeAllocationAreErrors) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const int n = cuda::device_count();
  EXPECT_THROW(zeros({2}, {.device = Device::cuda(n)}), DeviceError);
  // More than any GPU holds: an OutOfMemory that says what was asked, not a crash.
  std::string msg = error_message([] { (void)empty({int64_t{1} << 48}, {.device = Device::cuda(0)}); });
  EXPECT_NE(msg.find("could not allocate"), std::string::npos) << msg;
  EXPECT_THROW(empty({int64_t{1} << 48}, {.device = Device::cuda(0)}), OutOfMemory);
  // The device still works afterwards.
  EXPECT_EQ(ones({3}, {.device = Device::cuda(0)}).cpu().to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(CudaRuntime, CopiesBetweenTwoDevicesAreStreamOrderedAndDoNotBlock) {
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two CUDA devices";
  const Device d0 = Device::cuda(0), d1 = Device::cuda(1);
  std::vector<float> v(100003);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 977) - 400.0f;
  const Tensor host = tensor<float>(v, {static_cast<int64_t>(v.size())});
  // Non-blocking staged uploads alternate between the devices: the staging pool's buffers move
  // from one device's stream to the other's.
  for (int rep = 0; rep < 4; ++rep) {
    const Device d = rep % 2 == 0 ? d0 : d1;
    EXPECT_EQ(host.to(d, /*non_blocking=*/true).cpu().to_vector<float>(), v) << "upload " << rep << " to " << d.str();
  }
  // Device to device, both ways, produced by work still queued on the source's stream: ordered on
  // the streams, no host wait.
  const Tensor a = host.to(d0) * 2.0f;
  Tensor b, c;
  const uint64_t before = cuda::host_sync_count();
  b = a.to(d1);
  c = (b + 1.0f).to(d0);
  EXPECT_EQ(cuda::host_sync_count() - before, 0u);
  ASSERT_EQ(b.device(), d1);
  ASSERT_EQ(c.device(), d0);
  std::vector<float> want(v.size());
  for (size_t i = 0; i < v.size(); ++i) want[i] = v[i] * 2.0f + 1.0f;
  EXPECT_EQ(c.cpu().to_vector<float>(), want);
  EXPECT_EQ(b.cpu().to_vector<float>(), (host * 2.0f).to_vector<float>());
}

TEST(CudaRuntime, PinnedBlockIsNotReusedBeforeItsCopiesFinish) {
  EMBER_REQUIRE_CUDA_DEVICE();
  constexpr int64_t kN = int64_t{4} << 20;  // 16 MiB of float: the copy takes a while
  std::vector<float> a(static_cast<size_t>(kN));
  for (int64_t i = 0; i < kN; ++i) a[static_cast<size_t>(i)] = static_cast<float>(i % 1000);
  // Many non-blocking copies of slices of one long-lived pinned tensor (each records a use of
  // its block), then the same from a block that is dropped at once and handed out again.
  Tensor pinned = cuda_backend::pin_memory(tensor<float>(a, {kN}));
  ASSERT_TRUE(cuda_backend::is_pinned(pinned));
  Tensor sums = zeros({1000}, {.device = Device::cuda(0)});
  for (int64_t i = 0; i < 200; ++i) sums += pinned.narrow(0, i * 1000, 1000).to(Device::cuda(0), /*non_blocking=*/true);
  std::vector<float> want(1000);
  for (int64_t j = 0; j < 1000; ++j) want[static_cast<size_t>(j)] = 200.0f * static_cast<float>(j);
  EXPECT_EQ(sums.cpu().to_vector<float>(), want);
  for (int rep = 0; rep < 3; ++rep) {
    Tensor d;
    {
      Tensor src = cuda_backend::pin_memory(tensor<float>(a, {kN}));
      d = src.to(Device::cuda(0), /*non_blocking=*/true);
    }  // src's block goes back to the cache while the copy may still read it
    // A new pinned tensor of the same size class, overwritten on the host at once.
    Tensor other = cuda_backend::pin_memory(full({kN}, -1.0f));
    EXPECT_EQ(other.to_vector<float>()[12345], -1.0f);
    EXPECT_EQ(d.cpu().to_vector<float>(), a) << "rep " << rep;
  }
}

TEST(CudaRuntime, StreamTakesBackItsOwnBlockAfterAnotherStreamAskedForIt) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::empty_cache();
  constexpr int64_t kN = (int64_t{3} << 20) / 4;
  cuda::Stream s1 = cuda::Stream::create(), s2 = cuda::Stream::create();
  const int64_t base = cuda::memory_stats().num_allocs;
  Tensor big;
  {
    cuda::StreamGuard g(s1);
    big = full({int64_t{64} << 20}, 1.0f, {.device = Device::cuda(0)});
    Tensor t = empty({kN}, {.device = Device::cuda(0)});
    big = big * 3.0f;  // keeps s1 busy for a while
  }  // t's block goes back tagged with s1
  {
    cuda::StreamGuard g(s2);
    Tensor u = empty({kN}, {.device = Device::cuda(0)});  // s1's block is not safe for s2: a new one
    const int64_t after_s2 = cuda::memory_stats().num_allocs;
    {
      // s1 asks again while its work may still run: its own block is safe for it, and is found
      // again although s2's request moved it to the blocks waiting for an event on s1.
      cuda::StreamGuard g1(s1);
      Tensor v = empty({kN}, {.device = Device::cuda(0)});
      EXPECT_EQ(cuda::memory_stats().num_allocs, after_s2);
    }
  }
  EXPECT_EQ(big.narrow(0, (int64_t{64} << 20) - 3, 3).cpu().to_vector<float>(), (std::vector<float>{3, 3, 3}));
  EXPECT_LE(cuda::memory_stats().num_allocs, base + 4);
}
