// The one CPU thread pool. Ember and oneDNN share the OpenMP runtime, so there is exactly one
// pool of worker threads (MACHINE.md: two pools on two cores fight).
#pragma once

#include <cstdint>
#include <functional>

#include "ember/core/macros.hpp"

namespace ember {

/// Sets the number of threads Ember's CPU kernels use (default: hardware concurrency).
EMBER_API void set_num_threads(int n);
EMBER_API int get_num_threads();

/// Runs fn(begin, end) over [0, n) split into chunks of at least `grain` items, in parallel
/// when n is large enough. fn must be safe to call concurrently on disjoint ranges.
EMBER_API void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ember
