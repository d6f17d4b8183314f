// Ember's own 16-bit float types, usable on host and device. Storage is the raw bit pattern;
// arithmetic goes through float. Conversions round to nearest even.
#pragma once

#include <cstdint>
#include <cstring>

#include "ember/core/macros.hpp"

namespace ember {

namespace detail {
EMBER_HOST_DEVICE inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
EMBER_HOST_DEVICE inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail

/// IEEE 754 binary16.
struct Half {
  uint16_t bits = 0;

  Half() = default;
  EMBER_HOST_DEVICE Half(float f) : bits(from_float(f)) {}  // NOLINT: implicit like float
  EMBER_HOST_DEVICE operator float() const { return to_float(bits); }
  EMBER_HOST_DEVICE static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }

  EMBER_HOST_DEVICE static uint16_t from_float(float f) {
    uint32_t x = detail::f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) {  // inf or nan
      return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    }
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
    if (abs < 0x38800000u) {  // subnormal or zero in half
      // Scale so the half subnormal lsb (2^-24) becomes 1, then round to nearest even.
      float v = detail::bits_f32(abs) * 16777216.0f;  // 2^24
      uint32_t r = static_cast<uint32_t>(v);
      float frac = v - static_cast<float>(r);
      if (frac > 0.5f || (frac == 0.5f && (r & 1u))) ++r;
      return static_cast<uint16_t>(sign | r);
    }
    uint32_t exp = ((abs >> 23) - 112u) << 10;
    uint32_t mant = (abs >> 13) & 0x3ffu;
    uint32_t rest = abs & 0x1fffu;
    uint32_t h = exp | mant;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }

  EMBER_HOST_DEVICE static float to_float(uint16_t h) {
    uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) return detail::bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      float v = static_cast<float>(mant) * 5.9604644775390625e-08f;  // 2^-24
      return sign ? -v : v;
    }
    return detail::bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
  }
};

/// bfloat16: the top 16 bits of an IEEE float32.
struct BFloat16 {
  uint16_t bits = 0;

  BFloat16() = default;
  EMBER_HOST_DEVICE BFloat16(float f) : bits(from_float(f)) {}  // NOLINT: implicit like float
  EMBER_HOST_DEVICE operator float() const { return detail::bits_f32(static_cast<uint32_t>(bits) << 16); }
  EMBER_HOST_DEVICE static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
  EMBER_HOST_DEVICE static uint16_t from_float(float f) {
    uint32_t x = detail::f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
  }
};

}  // namespace ember
