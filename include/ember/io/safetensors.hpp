// Reading and writing the safetensors format, the tensor file format that Hugging Face and
// PyTorch share: an 8-byte little-endian header length N, N bytes of JSON describing every
// tensor (dtype, shape, [begin, end) byte offsets into the data area) plus optional string
// metadata, then the raw little-endian tensor bytes, back to back.
//
// The reader treats a file as untrusted input: it validates the whole header (sizes, dtypes,
// shapes, offsets that tile the data area exactly, duplicate keys) before it allocates or
// maps anything for tensors, and reports every violation as an IOError that names the file
// and the rule broken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::io {

/// Tensors by name. Ordered, so that files written from the same map are byte-identical.
using TensorMap = std::map<std::string, Tensor>;
/// The header's optional "__metadata__" object: free-form string → string pairs.
using Metadata = std::map<std::string, std::string>;

/// Options for save_safetensors and serialize_safetensors.
struct SaveOptions {
  /// Store a CRC-32C of every tensor's bytes (as stored in the file) in the metadata, under the
  /// key "crc32c.<tensor name>", as 8 lowercase hex digits (CRC-32C: the Castagnoli polynomial,
  /// reflected, initial value and final XOR 0xFFFFFFFF; "123456789" gives "e3069283"). Every
  /// loader in Ember verifies such entries, so a flipped bit in the data area, which the format
  /// itself cannot notice (any bytes are valid tensor data), fails the load instead of silently
  /// changing a weight. Other safetensors readers see ordinary string metadata.
  bool checksums = false;
};

/// Writes `tensors` and `metadata` to `path` in the safetensors format.
///
/// Tensors of any dtype and device are accepted: they are copied to the CPU and views are made
/// contiguous (the originals are not modified and no autograd graph is recorded). The JSON
/// header lists "__metadata__" first (when non-empty), then the tensors in name order, and is
/// padded with spaces to a multiple of 8 bytes; the tensor data follow in name order, back to
/// back, with no padding between tensors. With options.checksums the metadata also holds one
/// "crc32c.<name>" entry per tensor (see SaveOptions).
///
/// The file is written under a temporary name in the same directory and then renamed over
/// `path`, so a failure never leaves a truncated file behind and tensors that still alias an
/// earlier memory-mapped version of `path` stay valid. (The data are not fsynced: callers that
/// need durability across a crash, such as checkpoints, sync the file and directory.)
///
/// Throws ValueError for an undefined tensor, a tensor of more than 64 dimensions, a tensor
/// named "__metadata__", a name or
/// metadata string that is not valid UTF-8, or (with options.checksums) a metadata key that
/// starts with "crc32c." (reserved for the checksums); IOError (naming the path and the
/// system's errno text) when the file cannot be written.
EMBER_API void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {},
                                const SaveOptions& options = {});

/// Serialises `tensors` and `metadata` to bytes, exactly as save_safetensors would write them.
/// Throws as save_safetensors does, except that it does no I/O.
EMBER_API std::vector<uint8_t> serialize_safetensors(const TensorMap& tensors, const Metadata& metadata = {},
                                                     const SaveOptions& options = {});

/// Options for load_safetensors.
struct LoadOptions {
  /// Memory-map the file, so that tensors alias the mapping instead of being read into fresh
  /// memory. The mapping is private (MAP_PRIVATE, copy-on-write): tensors are writable, and
  /// writes never reach the file. The mapping stays alive until the last tensor (or view) that
  /// refers to it is destroyed. A tensor whose data are not aligned to its element size in the
  /// file is copied instead of aliased. As with any mapping, truncating the file while tensors
  /// still alias it makes later reads of those tensors fault: save_safetensors itself never does
  /// that (it replaces the file by rename). With mmap = false every tensor is read into its own
  /// allocation and the file is closed before returning.
  bool mmap = true;
};

/// Reads every tensor of the safetensors file at `path` as CPU tensors. When `metadata` is not
/// null it receives the header's "__metadata__" pairs (cleared first).
///
/// The whole header is validated before any tensor is created: header length (2 bytes to
/// 100 MB, and within the file), UTF-8, JSON object syntax (starting with '{', padded with
/// spaces only) with no duplicate keys, exactly the fields dtype / shape / data_offsets in every
/// entry, supported dtypes (F32, F64, F16, BF16, I32, I64, U8, BOOL), shapes of at most 64
/// non-negative integer sizes, shape × itemsize equal to the entry's byte range (with overflow
/// checks), string-valued "__metadata__", and byte ranges that tile the data area from 0 to the
/// end of the file with no gap or overlap. BOOL data must hold only the bytes 0 and 1. Every "crc32c.<name>" metadata entry is verified
/// against the data of tensor <name> (see SaveOptions): a mismatch, a checksum for a tensor the
/// file does not have, or a value that is not 8 lowercase hex digits is an IOError naming the
/// tensor (and, for a mismatch, the stored and computed values). Throws IOError naming the
/// path and the rule broken.
EMBER_API TensorMap load_safetensors(const std::string& path, Metadata* metadata = nullptr,
                                     const LoadOptions& options = {});

/// Parses safetensors bytes from memory, with the same validation as load_safetensors. Tensor
/// data are copied, so the buffer may be freed afterwards.
EMBER_API TensorMap deserialize_safetensors(const uint8_t* data, size_t size, Metadata* metadata = nullptr);

}  // namespace ember::io
