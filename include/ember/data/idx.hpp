// Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// a big-endian header (0x00 0x00 type ndim, then ndim 32-bit sizes) followed by the elements.
#pragma once

#include <cstddef>
#include <string>

#include "ember/core/tensor.hpp"

namespace ember::data {

/// Reads an IDX file, gzip-compressed (detected from its magic bytes, whatever the name) or
/// raw, into a contiguous CPU tensor of the file's shape.
///
/// Element types: 0x08 unsigned byte → uint8 (MNIST images and labels), 0x09 signed byte and
/// 0x0B int16 → int32 (Ember has no narrower signed types), 0x0C int32 → int32, 0x0D float →
/// float32, 0x0E double → float64. Throws IOError naming the file when it is missing or
/// malformed: bad magic, unknown type byte, no dimensions, sizes whose product overflows, a
/// payload shorter or longer than the header says, or a truncated/corrupt gzip stream.
EMBER_API Tensor read_idx(const std::string& path);

/// As read_idx, from bytes already in memory (gzip or raw); `name` is used in messages.
EMBER_API Tensor parse_idx(const void* data, size_t size, const std::string& name = "<memory>");

/// Writes `t` (uint8, int32, float32 or float64, CPU, at least one dimension) as a raw IDX
/// file, or gzip-compressed when `gzip` is true. Throws DTypeError/ValueError/IOError.
EMBER_API void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

}  // namespace ember::data
