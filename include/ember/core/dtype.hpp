// Runtime element types and PyTorch's type-promotion rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "ember/core/half.hpp"
#include "ember/core/macros.hpp"

namespace ember {

enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, u8, boolean };

inline constexpr DType kFloat32 = DType::f32;
inline constexpr DType kFloat64 = DType::f64;
inline constexpr DType kFloat16 = DType::f16;
inline constexpr DType kBFloat16 = DType::bf16;
inline constexpr DType kInt32 = DType::i32;
inline constexpr DType kInt64 = DType::i64;
inline constexpr DType kUInt8 = DType::u8;
inline constexpr DType kBool = DType::boolean;

/// Bytes per element.
constexpr size_t itemsize(DType t) {
  switch (t) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::f32:
    case DType::i32: return 4;
    case DType::f16:
    case DType::bf16: return 2;
    case DType::u8:
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}
constexpr bool is_integral(DType t, bool include_bool = false) {
  return t == DType::i32 || t == DType::i64 || t == DType::u8 || (include_bool && t == DType::boolean);
}

/// PyTorch's spelling without the "torch." prefix: "float32", "bfloat16", "bool", ...
EMBER_API const char* dtype_name(DType t);
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

/// The dtype both operands are converted to, as torch.promote_types.
EMBER_API DType promote_types(DType a, DType b);

/// Default dtype for floating results (int/int division, mean of ints, factories).
constexpr DType kDefaultFloat = DType::f32;

/// C++ type → DType.
template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T>
inline constexpr DType dtype_of_v = dtype_of<T>::value;

/// The type arithmetic on T is done in: float for 16-bit floats, T otherwise.
template <class T>
struct compute_type { using type = T; };
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <class T>
using compute_t = typename compute_type<T>::type;

}  // namespace ember
