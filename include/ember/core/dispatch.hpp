// One dtype-dispatch helper: turns a runtime DType into a template argument.
//
//   dispatch(t.dtype(), "relu", [&]<class T>() { ... T* p = t.data<T>(); ... });
//
// The set of accepted dtypes is a template parameter; an unaccepted dtype is a DTypeError
// naming the op.
#pragma once

#include <string>

#include "ember/core/dtype.hpp"
#include "ember/core/error.hpp"

namespace ember {

enum DTypeSet : unsigned {
  kSetF32 = 1u << 0,
  kSetF64 = 1u << 1,
  kSetF16 = 1u << 2,
  kSetBF16 = 1u << 3,
  kSetI32 = 1u << 4,
  kSetI64 = 1u << 5,
  kSetU8 = 1u << 6,
  kSetBool = 1u << 7,
  kFloatingTypes = kSetF32 | kSetF64 | kSetF16 | kSetBF16,
  kIntegralTypes = kSetI32 | kSetI64 | kSetU8,
  kNumericTypes = kFloatingTypes | kIntegralTypes,
  kAllTypes = kNumericTypes | kSetBool,
};

constexpr unsigned dtype_bit(DType t) { return 1u << static_cast<unsigned>(t); }

template <unsigned Set = kAllTypes, class F>
decltype(auto) dispatch(DType t, const char* op, F&& f) {
  if (!(Set & dtype_bit(t))) {
    EMBER_THROW(DTypeError, op, ": dtype ", dtype_name(t), " is not supported");
  }
  switch (t) {
    case DType::f32: if constexpr (Set & kSetF32) return f.template operator()<float>(); break;
    case DType::f64: if constexpr (Set & kSetF64) return f.template operator()<double>(); break;
    case DType::f16: if constexpr (Set & kSetF16) return f.template operator()<Half>(); break;
    case DType::bf16: if constexpr (Set & kSetBF16) return f.template operator()<BFloat16>(); break;
    case DType::i32: if constexpr (Set & kSetI32) return f.template operator()<int32_t>(); break;
    case DType::i64: if constexpr (Set & kSetI64) return f.template operator()<int64_t>(); break;
    case DType::u8: if constexpr (Set & kSetU8) return f.template operator()<uint8_t>(); break;
    case DType::boolean: if constexpr (Set & kSetBool) return f.template operator()<bool>(); break;
  }
  EMBER_THROW(DTypeError, op, ": dtype ", dtype_name(t), " is not supported");
}

}  // namespace ember
