// libFuzzer target for the safetensors reader: deserialize_safetensors on the input (the file
// reader shares its parser and validation; in memory is fast). Accepted inputs must give
// consistent tensors and survive a write/read round trip unchanged.
#include <cstdint>
#include <cstring>

#include "ember/io/safetensors.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  fuzz::run_expecting_io_errors([&] {
    io::Metadata metadata;
    const io::TensorMap tensors = io::deserialize_safetensors(data, size, &metadata);
    uint64_t total = 0;
    for (const auto& [name, t] : tensors) {
      fuzz::check(t.is_cpu() && fuzz::contiguous_or_empty(t), "tensor is a contiguous CPU tensor");
      fuzz::check(t.nbytes() == t.numel() * static_cast<int64_t>(t.element_size()), "nbytes == numel * itemsize");
      total += static_cast<uint64_t>(t.nbytes());
      // Read every byte, so that ASan checks the whole allocation.
      const auto* p = static_cast<const volatile uint8_t*>(t.data_ptr());
      uint8_t acc = 0;
      for (int64_t i = 0; i < t.nbytes(); ++i) acc ^= p[i];
      (void)acc;
    }
    fuzz::check(total <= size, "tensor data fit in the input");
    // Whatever was accepted must be writable, and read back to the same tensors and metadata.
    // (Not byte-identical: the input may order or space its header differently.)
    const std::vector<uint8_t> again = io::serialize_safetensors(tensors, metadata);
    io::Metadata metadata2;
    const io::TensorMap tensors2 = io::deserialize_safetensors(again.data(), again.size(), &metadata2);
    fuzz::check(metadata2 == metadata, "metadata round-trips");
    fuzz::check(tensors2.size() == tensors.size(), "tensor count round-trips");
    for (const auto& [name, t] : tensors) {
      const auto it = tensors2.find(name);
      fuzz::check(it != tensors2.end(), "tensor names round-trip");
      const Tensor& u = it->second;
      fuzz::check(u.dtype() == t.dtype() && u.shape() == t.shape(), "dtype and shape round-trip");
      fuzz::check(t.nbytes() == 0 || std::memcmp(u.data_ptr(), t.data_ptr(), static_cast<size_t>(t.nbytes())) == 0,
                  "data round-trip");
    }
  });
  return 0;
}
