// cuda::is_available()/device_count() and moving a tensor to a CUDA device that is not there.
// Runs in every build: without CUDA, or with CUDA but no GPU (as on CI), there are no devices
// and the move is a DeviceError; on a GPU machine an index past the last device is.
#include <gtest/gtest.h>

#include <string>

#include <ember/ember.hpp>

using namespace ember;

namespace {
template <class F>
std::string device_error_message(F&& f) {
  try {
    f();
  } catch (const DeviceError& e) {
    return e.what();
  }
  return "<no DeviceError thrown>";
}
}  // namespace

TEST(CudaDeviceQuery, QueriesNeverThrow) {
  int n = -1;
  EXPECT_NO_THROW(n = cuda::device_count());
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda::is_available(), n > 0);
}

TEST(CudaDeviceQuery, MovingToAMissingDeviceIsAClearDeviceError) {
  Tensor t = ones({2, 3});
  const int n = cuda::device_count();
  if (n > 0) {
    std::string msg = device_error_message([&] { (void)t.to(Device::cuda(n)); });
    EXPECT_NE(msg.find("cuda:" + std::to_string(n)), std::string::npos) << msg;
    return;
  }
  EXPECT_FALSE(cuda::is_available());
  std::string msg = device_error_message([&] { (void)t.to(Device::cuda(0)); });
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUDA"), std::string::npos) << msg;
  EXPECT_THROW(t.cuda(), DeviceError);
  // Creating a tensor on the device directly fails the same way (through the allocator).
  msg = device_error_message([] { (void)zeros({4}, {.device = Device::cuda(0)}); });
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
}
