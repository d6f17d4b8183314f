// Type promotion (torch.result_type) for tensor-tensor and tensor-scalar ops, the result
// dtypes of unary math, and the castability rule of in-place ops.
#include <gtest/gtest.h>

#include <vector>

#include <ember/ember.hpp>

using namespace ember;

namespace {
Tensor t1(DType d) { return zeros({2}, {.dtype = d}); }  // a dimensioned tensor
Tensor t0(DType d) { return zeros({}, {.dtype = d}); }   // a 0-d tensor
}  // namespace

TEST(TypePromotion, TensorTensorSameDim) {
  // Among tensors of the same dimensionality the rule is promote_types.
  const std::vector<DType> all = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8, kBool};
  for (DType a : all)
    for (DType b : all) {
      EXPECT_EQ(result_type(t1(a), t1(b)), promote_types(a, b)) << dtype_name(a) << " " << dtype_name(b);
      EXPECT_EQ(result_type(t0(a), t0(b)), promote_types(a, b)) << dtype_name(a) << " " << dtype_name(b);
    }
  EXPECT_EQ(promote_types(kFloat16, kBFloat16), kFloat32);
  EXPECT_EQ(promote_types(kUInt8, kInt32), kInt32);
  EXPECT_EQ(promote_types(kBool, kUInt8), kUInt8);
}

TEST(TypePromotion, ZeroDimTensorsOnlyRaiseTheCategory) {
  EXPECT_EQ(result_type(t1(kFloat32), t0(kFloat64)), kFloat32);
  EXPECT_EQ(result_type(t0(kFloat64), t1(kFloat32)), kFloat32);
  EXPECT_EQ(result_type(t1(kFloat16), t0(kFloat64)), kFloat16);
  EXPECT_EQ(result_type(t1(kInt64), t0(kFloat32)), kFloat32);
  EXPECT_EQ(result_type(t1(kInt32), t0(kFloat64)), kFloat64);
  EXPECT_EQ(result_type(t1(kUInt8), t0(kInt64)), kUInt8);
  EXPECT_EQ(result_type(t1(kBool), t0(kInt32)), kInt32);
  EXPECT_EQ(result_type(t1(kInt32), t0(kBool)), kInt32);
  EXPECT_EQ((t1(kFloat32) + t0(kFloat64)).dtype(), kFloat32);
  EXPECT_EQ((t1(kInt64) + t0(kFloat32)).dtype(), kFloat32);
}

TEST(TypePromotion, Scalars) {
  EXPECT_EQ(result_type(t1(kInt32), Scalar(2.5)), kFloat32);
  EXPECT_EQ(result_type(t1(kFloat16), Scalar(2.5)), kFloat16);
  EXPECT_EQ(result_type(t1(kBFloat16), Scalar(2)), kBFloat16);
  EXPECT_EQ(result_type(t1(kUInt8), Scalar(300)), kUInt8);
  EXPECT_EQ(result_type(t1(kBool), Scalar(1)), kInt64);
  EXPECT_EQ(result_type(t1(kBool), Scalar(1.5)), kFloat32);
  EXPECT_EQ(result_type(t1(kBool), Scalar(true)), kBool);
  EXPECT_EQ(result_type(t1(kInt32), Scalar(true)), kInt32);
  EXPECT_EQ(result_type(t1(kFloat64), Scalar(2.5)), kFloat64);
  EXPECT_EQ(result_type(t0(kInt32), Scalar(2.5)), kFloat32);
  EXPECT_EQ(result_type(t0(kFloat16), Scalar(2.5)), kFloat16);
  EXPECT_EQ(result_type(t0(kInt32), Scalar(7)), kInt32);
  // The examples as ops.
  EXPECT_EQ((t1(kInt32) + 2.5).dtype(), kFloat32);
  EXPECT_EQ((t1(kFloat16) + 2.5).dtype(), kFloat16);
  Tensor u = tensor<uint8_t>({10});
  Tensor w = u + 300;
  EXPECT_EQ(w.dtype(), kUInt8);
  EXPECT_EQ(w.to_vector<int>()[0], (10 + 300) % 256);
  EXPECT_EQ((t1(kBool) + 1).dtype(), kInt64);
  EXPECT_EQ((t1(kInt64) * 2).dtype(), kInt64);
}

TEST(TypePromotion, DivisionIsTrueDivision) {
  EXPECT_EQ((t1(kInt32) / t1(kInt32)).dtype(), kFloat32);
  EXPECT_EQ((t1(kInt64) / 2).dtype(), kFloat32);
  EXPECT_EQ((t1(kBool) / t1(kBool)).dtype(), kFloat32);
  EXPECT_EQ((t1(kFloat16) / t1(kInt64)).dtype(), kFloat16);
  EXPECT_EQ((t1(kFloat64) / t1(kFloat32)).dtype(), kFloat64);
  Tensor q = tensor<int32_t>({7}) / tensor<int32_t>({2});
  EXPECT_EQ(q.item<float>(), 3.5f);
}

TEST(TypePromotion, InPlaceCastability) {
  Tensor f = t1(kFloat32);
  f.add_(t1(kInt64));
  f.add_(t1(kFloat64));  // result f64, castable to f32
  EXPECT_EQ(f.dtype(), kFloat32);
  Tensor i = t1(kInt64);
  EXPECT_THROW(i.add_(t1(kFloat32)), DTypeError);
  EXPECT_THROW(i.add_(2.5), DTypeError);
  EXPECT_THROW(i.div_(2), DTypeError);
  i.add_(t1(kBool));
  i.add_(t0(kFloat32).to(kInt32));
  Tensor b = t1(kBool);
  EXPECT_THROW(b.add_(t1(kInt32)), DTypeError);
  EXPECT_THROW(b.add_(1), DTypeError);
  b.add_(true);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, true}));
  Tensor u = t1(kUInt8);
  u.add_(t0(kInt64));  // 0-d int does not raise u8's category
  EXPECT_EQ(u.dtype(), kUInt8);
}
