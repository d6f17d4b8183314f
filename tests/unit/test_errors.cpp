// Error paths of the core: each misuse raises the specific ember error type with a message that
// names the operation and what was expected and found.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <ember/ember.hpp>

using namespace ember;

namespace {

/// Runs fn; returns the message of the expected error type, or records a failure.
template <class E, class Fn>
std::string message_of(Fn&& fn, const char* what) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw the wrong type: " << e.what();
    return "";
  }
  ADD_FAILURE() << what << ": did not throw";
  return "";
}

}  // namespace

/// EXPECT_ERROR(statement, ErrorType, "part", "other part"...): throws ErrorType whose message
/// contains every part.
#define EXPECT_ERROR(stmt, Type, ...)                                                                                \
  do {                                                                                                               \
    std::string msg_ = message_of<Type>([&] { (void)(stmt); }, #stmt);                                               \
    for (const char* part_ : std::vector<const char*>{__VA_ARGS__})                                                  \
      EXPECT_NE(msg_.find(part_), std::string::npos) << #stmt << " -> \"" << msg_ << "\" lacks \"" << part_ << "\""; \
  } while (0)

TEST(Errors, ErrorHierarchy) {
  // Every ember error is an ember::Error and a std::runtime_error.
  EXPECT_THROW(zeros({-1}), Error);
  EXPECT_THROW(zeros({-1}), std::runtime_error);
  EXPECT_THROW(Device::parse("tpu"), Error);
}

TEST(Errors, Factories) {
  EXPECT_ERROR(zeros({2, -3}), ValueError, "negative dimension -3", "(2, -3)");
  EXPECT_ERROR(empty({-1}), ValueError, "empty", "negative dimension");
  EXPECT_ERROR(full({-2}, 1.0), ValueError, "negative dimension");
  EXPECT_ERROR(tensor<float>({1, 2, 3}, {2, 2}), ShapeError, "tensor", "(2, 2)", "4 elements", "3 values");
}

TEST(Errors, FromBlob) {
  float buf[6] = {0, 1, 2, 3, 4, 5};
  EXPECT_ERROR(from_blob(buf, {2, 3}, {3}), ShapeError, "from_blob", "(2, 3)", "strides");
  EXPECT_ERROR(from_blob(buf, {2, 3}, {-3, 1}), ValueError, "from_blob", "negative stride");
  EXPECT_ERROR(from_blob(buf, {-2, 3}), ValueError, "from_blob", "negative dimension");
  // A valid blob views the memory without copying and calls the deleter once.
  int deleted = 0;
  {
    Tensor t = from_blob(buf, {3, 2}, {}, [&](void*) { ++deleted; });
    EXPECT_EQ(t.data_ptr(), static_cast<void*>(buf));
    Tensor v = t.t();
    t = Tensor();
    EXPECT_EQ(deleted, 0);
  }
  EXPECT_EQ(deleted, 1);
}

TEST(Errors, ItemAndDataAccess) {
  EXPECT_ERROR(zeros({2, 2}).item<float>(), ValueError, "item", "one element", "(2, 2)");
  EXPECT_ERROR(zeros({0}).item<float>(), ValueError, "item");
  EXPECT_ERROR(zeros({2}).data<double>(), DTypeError, "float32", "float64");
  EXPECT_ERROR(zeros({2}, {.dtype = kInt64}).data<int32_t>(), DTypeError, "int64", "int32");
  EXPECT_EQ(full({1, 1}, 2.5).item<float>(), 2.5f);
  EXPECT_EQ(full({}, 7, {.dtype = kInt32}).item<int64_t>(), 7);
}

TEST(Errors, UndefinedTensor) {
  Tensor u;
  EXPECT_FALSE(u.defined());
  EXPECT_ERROR(u.shape(), ValueError, "undefined Tensor");
  EXPECT_ERROR(u.to_vector<float>(), ValueError, "undefined Tensor");
  EXPECT_ERROR(u.numel(), ValueError, "undefined Tensor");
  EXPECT_ERROR(zeros({2}).copy_(u), ValueError, "copy_", "undefined");
}

TEST(Errors, ToVectorConvertsEveryDtype) {
  // Not an error path, but the conversion every error test relies on.
  Tensor t = tensor<float>({-1.5f, 0.0f, 2.0f});
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{-1.5, 0.0, 2.0}));
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2}));
  EXPECT_EQ(t.to_vector<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(t.to(kBFloat16).to_vector<float>(), (std::vector<float>{-1.5f, 0.0f, 2.0f}));
  EXPECT_EQ(tensor<uint8_t>({3, 200}).to_vector<int>(), (std::vector<int>{3, 200}));
}

TEST(Errors, Views) {
  Tensor a = zeros({2, 3});
  EXPECT_ERROR(a.view({4, 2}), ShapeError, "view", "(4, 2)", "size 6");
  EXPECT_ERROR(a.view({-1, -1}), ShapeError, "view", "only one dimension can be -1");
  EXPECT_ERROR(a.view({-1, 4}), ShapeError, "view", "invalid for input of size 6");
  EXPECT_ERROR(a.view({-2, 3}), ShapeError, "view", "invalid size -2");
  EXPECT_ERROR(zeros({0, 3}).view({-1, 0}), ShapeError, "view");
  EXPECT_ERROR(a.t().view({6}), ShapeError, "view", "not compatible", "reshape");
  EXPECT_ERROR(a.reshape({5}), ShapeError, "reshape", "(5,)", "size 6");
  EXPECT_ERROR(a.transpose(0, 2), IndexError, "transpose", "dimension 2", "out of range");
  EXPECT_ERROR(zeros({2, 2, 2}).t(), ShapeError, "t()", "(2, 2, 2)");
  EXPECT_ERROR(a.permute({0}), ShapeError, "permute", "(2, 3)");
  EXPECT_ERROR(a.permute({1, 1}), ShapeError, "permute", "repeats");
  EXPECT_ERROR(a.permute({0, 5}), IndexError, "permute");
  EXPECT_ERROR(a.slice(0, 0, 1, 0), ValueError, "slice", "step must be positive");
  EXPECT_ERROR(a.slice(3, 0, 1), IndexError, "slice");
  EXPECT_ERROR(scalar_tensor(1.0).slice(0, 0, 1), IndexError, "slice", "0-d");
  EXPECT_ERROR(a.narrow(1, 2, 2), IndexError, "narrow", "[2, 4)", "size 3");
  EXPECT_ERROR(a.narrow(1, 0, -1), IndexError, "narrow");
  EXPECT_ERROR(a.select(0, 2), IndexError, "select", "index 2", "size 2");
  EXPECT_ERROR(a.select(1, -4), IndexError, "select", "index -4");
  EXPECT_ERROR(scalar_tensor(1.0).select(0, 0), IndexError, "select", "0-d");
  EXPECT_ERROR(a.expand({3}), ShapeError, "expand", "number of sizes");
  EXPECT_ERROR(a.expand({4, 3, 4}), ShapeError, "expand", "must match", "(4, 3, 4)");
  EXPECT_ERROR(a.expand({-1, 2, 3}), ShapeError, "expand", "leading");
  EXPECT_ERROR(a.flatten(1, 0), ValueError, "flatten", "start_dim");
  EXPECT_ERROR(a.unsqueeze(3), IndexError, "unsqueeze");
  EXPECT_ERROR(a.squeeze(2), IndexError, "squeeze");
  EXPECT_ERROR(a.size(2), IndexError, "size", "out of range");
  EXPECT_ERROR(a.stride(-3), IndexError, "stride");
  EXPECT_ERROR(a.as_strided({2, 3}, {1}, 0), ShapeError, "as_strided");
}

TEST(Errors, ViewsThatAreValid) {
  // The boundaries of the checks above: these must not throw.
  Tensor a = zeros({2, 3});
  EXPECT_EQ(a.view({-1}).shape(), (Shape{6}));
  EXPECT_EQ(a.select(1, -3).shape(), (Shape{2}));
  EXPECT_EQ(a.narrow(1, 1, 2).shape(), (Shape{2, 2}));
  EXPECT_EQ(a.narrow(1, 3, 0).shape(), (Shape{2, 0}));
  EXPECT_EQ(a.slice(1, -2, 100).shape(), (Shape{2, 2}));
  EXPECT_EQ(a.expand({4, -1, 3}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(a.unsqueeze(2).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(a.unsqueeze(-3).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(scalar_tensor(1.0).unsqueeze(0).shape(), (Shape{1}));
  EXPECT_EQ(scalar_tensor(1.0).flatten().shape(), (Shape{1}));
  EXPECT_EQ(zeros({0, 3}).view({-1}).shape(), (Shape{0}));
}

TEST(Errors, CopyAndConversion) {
  EXPECT_ERROR(zeros({2, 3}).copy_(zeros({3, 2})), ShapeError, "copy_", "(3, 2)", "(2, 3)");
  EXPECT_ERROR(zeros({3}).copy_(zeros({2, 3})), ShapeError, "copy_");
  if (!cuda::is_available()) {
    EXPECT_ERROR(zeros({2}).to(Device::cuda()), DeviceError, "cuda:0");
    EXPECT_ERROR(zeros({2}, {.device = Device::cuda()}), DeviceError);
  }
}

TEST(Errors, Autograd) {
  EXPECT_ERROR(tensor<int64_t>({1}).requires_grad_(), DTypeError, "requires_grad_", "floating", "int64");
  EXPECT_ERROR(tensor<int32_t>({1}).requires_grad_(), DTypeError, "int32");
  EXPECT_ERROR(tensor<uint8_t>({1}).requires_grad_(), DTypeError, "uint8");
  EXPECT_ERROR(zeros({2}, {.dtype = kInt64, .requires_grad = true}), DTypeError, "requires_grad_");
  Tensor x = zeros({2}).requires_grad_();
  Tensor y = x.unsqueeze(0);
  EXPECT_ERROR(y.requires_grad_(false), AutogradError, "leaf", "detach");
  EXPECT_ERROR(zeros({2}).register_hook([](const Tensor& g) { return g; }), AutogradError, "register_hook");
  EXPECT_ERROR(y.register_post_accumulate_grad_hook([](Tensor&) {}), AutogradError, "leaf");
  EXPECT_ERROR(x.set_grad(zeros({3})), ShapeError, "set_grad", "(3,)", "(2,)");
  EXPECT_ERROR(y.backward(), AutogradError, "scalar", "(1, 2)");
  EXPECT_ERROR(zeros({1}).backward(), AutogradError, "does not require grad");
  EXPECT_ERROR(x.fill_(1.0), AutogradError, "fill_", "leaf");
  EXPECT_ERROR(y.fill_(1.0), NotImplemented, "fill_", "view");
}

TEST(Errors, DeviceParse) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:3").str(), "cuda:3");
  for (const char* bad : {"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda:1x", "cuda:99999", " cpu", "cuda0"}) {
    EXPECT_ERROR(Device::parse(bad), ValueError, "device", "cuda:N");
  }
}

TEST(Errors, BroadcastAndDims) {
  EXPECT_ERROR(broadcast_shapes({2, 3}, {4}), ShapeError, "(2, 3)", "(4,)", "cannot be broadcast");
  EXPECT_ERROR(broadcast_shapes({2, 1}, {3, 2}, "add"), ShapeError, "add:");
  EXPECT_EQ(broadcast_shapes({2, 1}, {1, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({}, {4}), (Shape{4}));
  EXPECT_ERROR(wrap_dim(2, 2, "myop"), IndexError, "myop", "[-2, 1]");
  EXPECT_ERROR(wrap_dim(-3, 2), IndexError);
  EXPECT_EQ(wrap_dim(-1, 0), 0);
  EXPECT_ERROR(wrap_dim(1, 0), IndexError);
}

TEST(Errors, ThreadCount) {
  EXPECT_ERROR(set_num_threads(0), ValueError, "set_num_threads", "0");
  EXPECT_ERROR(set_num_threads(-2), ValueError, "set_num_threads");
}
