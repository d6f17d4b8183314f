// Private to the CPU backend: when and how large f32 elementwise results are written with
// non-temporal (streaming) stores.
//
// A normal store first reads the line it writes (read-for-ownership), so an op producing a
// result far bigger than the caches moves 4 extra bytes per output element: add moves 16 bytes
// for 12 useful ones. memcpy streams at this size, so it moves only what it counts. Streaming
// also keeps a result that will not fit in the cache from evicting the op's inputs. A result
// small enough to stay in the last-level cache for the next op is written normally.
#pragma once

#include <cstdint>

#include "ember/core/macros.hpp"

namespace ember::cpu {

/// Output bytes above which contiguous f32 results are streamed (see streaming_threshold_default).
int64_t streaming_threshold();

/// Half the last-level cache (an op's inputs and output share it: a unary op's output can stay
/// cached for the next op only while input + output fit), from sysfs, else sysconf, else 32 MiB
/// assumed; EMBER_STREAMING_THRESHOLD (bytes) in the environment overrides it.
int64_t streaming_threshold_default();

/// Rows shorter than this are never streamed (a partial line in a write-combining buffer is
/// flushed as slow partial writes).
constexpr int64_t kStreamMinRow = 1024;

/// Whether an f32 result of `out_bytes` in total is streamed.
inline bool stream_output(int64_t out_bytes) { return out_bytes > streaming_threshold(); }

/// dst[0, n) = src[0, n): normal stores up to dst's first 64-byte boundary and for the tail, the
/// 64-byte lines between with non-temporal stores (AVX-512, AVX2 or SSE2 for the running CPU).
/// Callers finish each row with stream_row_done().
void stream_store(float* dst, const float* src, int64_t n);

/// Ends a streamed row of n elements: orders its non-temporal stores before the results are
/// read by another thread (sfence) and counts the elements (detail::streamed_elements()).
void stream_row_done(int64_t n);

namespace detail {
/// For tests: sets the streaming threshold in bytes (negative: back to the default) and returns
/// the previous one. Not thread-safe with running ops; not part of the public API.
EMBER_API int64_t set_streaming_threshold(int64_t bytes);
/// For tests: the current threshold in bytes.
EMBER_API int64_t get_streaming_threshold();
/// For tests: f32 output elements written by the streaming path since the process started.
EMBER_API int64_t streamed_elements();
}  // namespace detail

}  // namespace ember::cpu
