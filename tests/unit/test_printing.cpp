// Tensor::str() against strings written by hand from PyTorch's printing rules
// (torch/_tensor_str.py, default options: precision 4, linewidth 80, threshold 1000, edgeitems 3).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include <ember/ember.hpp>

using namespace ember;

namespace {
Tensor arange_f(int64_t n, DType dt = kFloat32) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  return tensor<double>(v, {n}).to(dt);
}
}  // namespace

TEST(Printing, FloatIntegersUseTrailingDot) {
  EXPECT_EQ(tensor<float>({1, 2, 3}).str(), "tensor([1., 2., 3.])");
  EXPECT_EQ(tensor<float>({1, 100}).str(), "tensor([  1., 100.])");
  EXPECT_EQ(tensor<float>({-1, 10}).str(), "tensor([-1., 10.])");
  EXPECT_EQ(tensor<float>({0, 0}).str(), "tensor([0., 0.])");
}

TEST(Printing, FixedFourDecimals) {
  EXPECT_EQ(scalar_tensor(3.5).str(), "tensor(3.5000)");
  EXPECT_EQ(tensor<float>({0, 1.5f}).str(), "tensor([0.0000, 1.5000])");
  EXPECT_EQ(tensor<double>({1.5, -2.25}).str(), "tensor([ 1.5000, -2.2500], dtype=torch.float64)");
  EXPECT_EQ(tensor<float>({0.12345f, 10.5f}).str(), "tensor([ 0.1235, 10.5000])");
}

TEST(Printing, ScientificWhenRangeIsWide) {
  EXPECT_EQ(tensor<float>({1e10f, 1.0f}).str(), "tensor([1.0000e+10, 1.0000e+00])");
  EXPECT_EQ(tensor<float>({1e-5f, 0.5f}).str(), "tensor([1.0000e-05, 5.0000e-01])");
  EXPECT_EQ(tensor<float>({0.001f, 2.5f}).str(), "tensor([1.0000e-03, 2.5000e+00])");
  EXPECT_EQ(tensor<double>({1e9}).str(), "tensor([1.0000e+09], dtype=torch.float64)");
  EXPECT_EQ(tensor<float>({-1e-5f, 0.5f}).str(), "tensor([-1.0000e-05,  5.0000e-01])");
}

TEST(Printing, NonFiniteValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(tensor<float>({nan, inf, 1}).str(), "tensor([nan, inf, 1.])");
  EXPECT_EQ(tensor<float>({-inf, 0.5f}).str(), "tensor([  -inf, 0.5000])");
  EXPECT_EQ(tensor<float>({-nan, inf}).str(), "tensor([nan, inf])");
}

TEST(Printing, IntegersAndBools) {
  EXPECT_EQ(tensor<int64_t>({1, 2, 3, 4}, {2, 2}).str(), "tensor([[1, 2],\n        [3, 4]])");
  EXPECT_EQ(tensor<int64_t>({-5, 120}).str(), "tensor([ -5, 120])");
  EXPECT_EQ(tensor<int32_t>({1, 2}).str(), "tensor([1, 2], dtype=torch.int32)");
  EXPECT_EQ(tensor<uint8_t>({0, 255}).str(), "tensor([  0, 255], dtype=torch.uint8)");
  EXPECT_EQ(tensor<bool>({true, false}).str(), "tensor([ True, False])");
  EXPECT_EQ(scalar_tensor(7, {.dtype = kInt64}).str(), "tensor(7)");
  EXPECT_EQ(scalar_tensor(true, {.dtype = kBool}).str(), "tensor(True)");
}

TEST(Printing, SixteenBitFloats) {
  EXPECT_EQ(tensor<float>({1.5f}).to(kBFloat16).str(), "tensor([1.5000], dtype=torch.bfloat16)");
  EXPECT_EQ(tensor<float>({1, 2}).to(kFloat16).str(), "tensor([1., 2.], dtype=torch.float16)");
}

TEST(Printing, NestedDimsAndIndentation) {
  Tensor t = tensor<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});
  EXPECT_EQ(t.str(),
            "tensor([[[0, 1],\n"
            "         [2, 3]],\n"
            "\n"
            "        [[4, 5],\n"
            "         [6, 7]]])");
  // A non-contiguous view prints in logical order.
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  EXPECT_EQ(a.str(), "tensor([[1., 4.],\n        [2., 5.],\n        [3., 6.]])");
  EXPECT_EQ(tensor<float>({1, 2}, {1, 2}).str(), "tensor([[1., 2.]])");
}

TEST(Printing, LongRowsWrapAtEightyColumns) {
  EXPECT_EQ(arange_f(30).str(),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
            "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
            "        28., 29.])");
  // The dtype suffix moves to its own line when it would pass column 80.
  EXPECT_EQ(arange_f(14, kFloat64).str(),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
            "       dtype=torch.float64)");
}

TEST(Printing, SummarisesLargeTensors) {
  std::vector<int64_t> v(2000);
  for (int64_t i = 0; i < 2000; ++i) v[i] = i;
  EXPECT_EQ(tensor<int64_t>(v).str(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  const std::string row = "[0., 0., 0.,  ..., 0., 0., 0.]";
  EXPECT_EQ(zeros({100, 100}).str(), "tensor([" + row + ",\n        " + row + ",\n        " + row +
                                         ",\n        ...,\n        " + row + ",\n        " + row + ",\n        " + row +
                                         "])");
  // Exactly 1000 elements is not summarised.
  EXPECT_EQ(zeros({1000}).str().find("..."), std::string::npos);
  // The style comes from the edge items only: the hidden middle values (1.5) do not matter.
  std::vector<float> w(1001, 1.5f);
  for (int i = 0; i < 3; ++i) w[i] = w[1000 - i] = 2.0f;
  EXPECT_EQ(tensor<float>(w).str(), "tensor([2., 2., 2.,  ..., 2., 2., 2.])");
}

TEST(Printing, EmptyTensors) {
  EXPECT_EQ(zeros({0}).str(), "tensor([])");
  EXPECT_EQ(zeros({2, 0}).str(), "tensor([], size=(2, 0))");
  EXPECT_EQ(zeros({0}, {.dtype = kInt64}).str(), "tensor([], dtype=torch.int64)");
  EXPECT_EQ(zeros({0}, {.dtype = kFloat64}).str(), "tensor([], dtype=torch.float64)");
}

TEST(Printing, AutogradSuffixes) {
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  EXPECT_EQ(x.str(), "tensor([1., 2.], requires_grad=True)");
  EXPECT_EQ(x.unsqueeze(0).str(), "tensor([[1., 2.]], grad_fn=<UnsqueezeBackward>)");
  Tensor d = tensor<double>({0.5}).requires_grad_();
  EXPECT_EQ(d.str(), "tensor([0.5000], dtype=torch.float64, requires_grad=True)");
  EXPECT_EQ(x.detach().str(), "tensor([1., 2.])");
  {
    NoGradGuard ng;
    EXPECT_EQ(x.unsqueeze(0).str(), "tensor([[1., 2.]])");
  }
}

TEST(Printing, StreamOperatorAndUndefined) {
  std::ostringstream os;
  os << tensor<float>({1.25f});
  EXPECT_EQ(os.str(), "tensor([1.2500])");
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}
