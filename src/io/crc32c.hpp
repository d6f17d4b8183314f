// CRC-32C (Castagnoli): reflected polynomial 0x1EDC6F41 (0x82F63B78 reversed), initial value and
// final XOR 0xFFFFFFFF, as in iSCSI, ext4 and the SSE4.2 crc32 instruction. crc32c("123456789")
// is 0xE3069283. Private to the library (not installed); exported only so that the unit tests
// can compare the two implementations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ember/core/macros.hpp"

namespace ember::io::detail {

/// CRC-32C of n bytes, continuing from `crc`, the CRC-32C of the bytes before them (0 for none):
/// crc32c(b, nb, crc32c(a, na)) == crc32c(a ++ b). Uses the SSE4.2 crc32 instruction when the
/// CPU has it (checked once, at run time), otherwise a slicing-by-8 table.
EMBER_API uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

/// The table implementation, on every CPU.
EMBER_API uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);

/// True when the CPU has SSE4.2; then crc32c_sse42 may be called.
EMBER_API bool crc32c_have_sse42();

/// The SSE4.2 implementation (x86-64 only; a call on a CPU without SSE4.2 is undefined, and on
/// other architectures it is the table implementation).
EMBER_API uint32_t crc32c_sse42(const void* data, size_t n, uint32_t crc = 0);

}  // namespace ember::io::detail
