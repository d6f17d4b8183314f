// CPU backend entry points (internal: called by src/ops only). Each writes into a
// preallocated output; inputs are already validated, broadcast-compatible and on the CPU.
#pragma once

#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// dst[i] = convert(src[i]); src broadcasts to dst's shape; any strides, any dtypes.
EMBER_API void copy(const Tensor& dst, const Tensor& src);
/// dst[i] = value (converted to dst's dtype).
EMBER_API void fill(const Tensor& dst, const Scalar& value);

}  // namespace ember::cpu
