// CUDA device queries that are safe to call in any build: without CUDA, or without a driver or
// GPU, they report no devices instead of failing.
#pragma once

#include "ember/core/macros.hpp"

namespace ember::cuda {

/// True when Ember was built with CUDA and at least one device can be used.
EMBER_API bool is_available();
/// Number of usable CUDA devices (0 without CUDA, driver or GPU).
EMBER_API int device_count();

}  // namespace ember::cuda
