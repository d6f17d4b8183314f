// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). Element i of a draw
// uses counter (offset + i / 4), so the CPU and the GPU produce the same integers and uniforms
// for the same (seed, offset), whatever the thread count.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "ember/core/macros.hpp"

namespace ember {

/// Philox4x32 with 10 rounds: maps (key, counter) to four 32-bit outputs.
struct Philox {
  EMBER_HOST_DEVICE static void round(uint32_t ctr[4], const uint32_t key[2]) {
    constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
    uint64_t p0 = kM0 * ctr[0];
    uint64_t p1 = kM1 * ctr[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t c0 = hi1 ^ ctr[1] ^ key[0];
    uint32_t c2 = hi0 ^ ctr[3] ^ key[1];
    ctr[0] = c0;
    ctr[1] = lo1;
    ctr[2] = c2;
    ctr[3] = lo0;
  }
  /// Four random words for (seed, counter). The counter is 128 bits: (low, high).
  EMBER_HOST_DEVICE static void generate(uint64_t seed, uint64_t counter_lo, uint64_t counter_hi, uint32_t out[4]) {
    uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
    uint32_t ctr[4] = {static_cast<uint32_t>(counter_lo), static_cast<uint32_t>(counter_lo >> 32),
                       static_cast<uint32_t>(counter_hi), static_cast<uint32_t>(counter_hi >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(ctr, key);
      if (r < 9) {
        key[0] += 0x9E3779B9u;
        key[1] += 0xBB67AE85u;
      }
    }
    for (int i = 0; i < 4; ++i) out[i] = ctr[i];
  }
  /// Uniform in [0, 1) with 24 random bits (exactly representable in float).
  EMBER_HOST_DEVICE static float uniform(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
  /// Uniform in [0, 1) with 53 random bits from two words.
  EMBER_HOST_DEVICE static double uniform_double(uint32_t a, uint32_t b) {
    uint64_t v = (static_cast<uint64_t>(a) << 21) ^ (static_cast<uint64_t>(b) >> 11);
    return static_cast<double>(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
  }
};

/// The state a generator saves into checkpoints.
struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in units of 128-bit Philox counters
  friend bool operator==(const GeneratorState&, const GeneratorState&) = default;
};

/// A seeded stream of Philox counters. Each draw reserves a contiguous counter range
/// [offset, offset + ceil(n/4)) and advances the offset.
class EMBER_API Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull) : state_{seed, 0} {}
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = {seed, 0};
  }
  GeneratorState state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  void set_state(GeneratorState s) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = s;
  }
  uint64_t seed() const { return state().seed; }
  /// Reserves counters for `n` 32-bit words; returns (seed, first counter).
  GeneratorState reserve(uint64_t n_words) {
    std::lock_guard<std::mutex> lock(mu_);
    GeneratorState s = state_;
    state_.offset += (n_words + 3) / 4;
    return s;
  }

 private:
  mutable std::mutex mu_;
  GeneratorState state_;
};

/// The default generator used by rand/randn/dropout when none is passed.
EMBER_API Generator& default_generator();
/// Seeds the default CPU generator (and, when present, every CUDA device's generator).
EMBER_API void manual_seed(uint64_t seed);

}  // namespace ember
