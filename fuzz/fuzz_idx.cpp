// libFuzzer target for the IDX reader: parse_idx on the input (raw or gzip; read_idx uses the
// same parser on a file). Accepted inputs must give a tensor whose size matches the header.
#include <cstdint>

#include "ember/data/idx.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  fuzz::run_expecting_io_errors([&] {
    const Tensor t = data::parse_idx(data, size, "fuzz input");
    // (Tensor::is_contiguous() is false for some empty shapes such as (5, 0): see fuzz_common.hpp.)
    fuzz::check(t.is_cpu() && fuzz::contiguous_or_empty(t) && t.dim() >= 1, "a contiguous CPU tensor of >= 1 dims");
    fuzz::check(t.nbytes() == t.numel() * static_cast<int64_t>(t.element_size()), "nbytes == numel * itemsize");
    const auto* p = static_cast<const volatile uint8_t*>(t.data_ptr());
    uint8_t acc = 0;
    for (int64_t i = 0; i < t.nbytes(); ++i) acc ^= p[i];
    (void)acc;
    // A raw file holds its payload; a gzip one can inflate to ~1032x its size plus a window.
    const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    const uint64_t header = 4 + 4 * static_cast<uint64_t>(t.dim());
    if (!gz) fuzz::check(header + static_cast<uint64_t>(t.numel()) <= size, "raw payload within the input");
  });
  return 0;
}
