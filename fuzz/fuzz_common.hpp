// Shared by the libFuzzer targets: what counts as an expected rejection, and how to report it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"

namespace ember::fuzz {

// With EMBER_FUZZ_VERBOSE=1 in the environment, rejections are printed (to triage a corpus:
// `EMBER_FUZZ_VERBOSE=1 fuzz_safetensors file...`).
inline bool verbose() {
  static const bool v = [] {
    const char* e = std::getenv("EMBER_FUZZ_VERBOSE");
    return e != nullptr && e[0] == '1';
  }();
  return v;
}

// Runs fn on the input. The readers' contract is that bad input is an IOError: that is caught.
// Anything else escapes to libFuzzer, which reports it as a finding: a crash, a sanitizer
// report, std::bad_alloc (an allocation sized from the file), another ember::Error type, or
// any other exception (e.g. from the JSON library).
template <class F>
void run_expecting_io_errors(F&& fn) {
  try {
    fn();
    if (verbose()) std::fprintf(stderr, "accepted\n");
  } catch (const ember::IOError& e) {
    if (verbose()) std::fprintf(stderr, "rejected: %s\n", e.what());
  }
}

// Tensor::is_contiguous() multiplies the expected stride by the real sizes while
// contiguous_strides() uses max(size, 1), so an empty tensor such as (5, 0), made by empty(),
// reports false. Such a tensor has no elements to misplace; the readers are not at fault.
inline bool contiguous_or_empty(const ember::Tensor& t) { return t.numel() == 0 || t.is_contiguous(); }

// A property that must hold; __builtin_trap() makes libFuzzer save the input.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    __builtin_trap();
  }
}

}  // namespace ember::fuzz
