// A number passed to an op (t + 2.5, full(shape, 7)). Remembers whether it was written as a
// bool, an integer or a float, because type promotion depends on it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "ember/core/dtype.hpp"

namespace ember {

class Scalar {
 public:
  enum class Kind : uint8_t { boolean, integral, floating };

  Scalar() : Scalar(int64_t{0}) {}
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Scalar(T v) {  // NOLINT: implicit, like a number literal
    if constexpr (std::is_same_v<T, bool>) {
      kind_ = Kind::boolean;
      i_ = v ? 1 : 0;
      d_ = i_;
    } else if constexpr (std::is_integral_v<T>) {
      kind_ = Kind::integral;
      i_ = static_cast<int64_t>(v);
      d_ = static_cast<double>(v);
    } else {
      kind_ = Kind::floating;
      d_ = static_cast<double>(v);
      i_ = static_cast<int64_t>(v);
    }
  }
  Scalar(Half h) : Scalar(static_cast<float>(h)) {}          // NOLINT
  Scalar(BFloat16 h) : Scalar(static_cast<float>(h)) {}      // NOLINT

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::floating; }
  bool is_integral() const { return kind_ == Kind::integral; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  double to_double() const { return d_; }
  int64_t to_int() const { return kind_ == Kind::floating ? static_cast<int64_t>(d_) : i_; }
  /// The value converted to T (through double for floats, int64 for integers).
  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) return kind_ == Kind::floating ? d_ != 0.0 : i_ != 0;
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(to_int());
    else return static_cast<T>(static_cast<compute_t<T>>(d_));
  }
  /// The dtype this scalar would have as a 0-d tensor: bool, int64 or float32... as PyTorch's
  /// wrapped numbers: bool, i64, f64 (the "category", used by result_type).
  DType natural_dtype() const {
    return kind_ == Kind::boolean ? DType::boolean : kind_ == Kind::integral ? DType::i64 : DType::f64;
  }

 private:
  Kind kind_;
  double d_ = 0;
  int64_t i_ = 0;
};

}  // namespace ember
