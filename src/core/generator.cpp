#include "ember/core/generator.hpp"

namespace ember {

Generator& default_generator() {
  static Generator g;
  return g;
}

namespace detail {
// Set by the CUDA backend when it is linked in; seeds every device's generator.
void (*g_cuda_manual_seed)(uint64_t) = nullptr;
}  // namespace detail

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
  if (detail::g_cuda_manual_seed) detail::g_cuda_manual_seed(seed);
}

}  // namespace ember
