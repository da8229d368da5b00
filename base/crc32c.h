// CRC-32C (Castagnoli), as used by every checksum of the page store's on-disk
// format (docs/storage-format.md). Uses the CPU's CRC32 instruction (SSE4.2)
// when it has one, else a table-driven loop. Pure functions; thread-safe.
#ifndef BRANCHDB_BASE_CRC32C_H_
#define BRANCHDB_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace branchdb::crc32c {

// Returns the CRC-32C of data[0, n) continuing from a previous crc (0 to start).
uint32_t Extend(uint32_t crc, const char* data, size_t n);

// The table-driven implementation, whatever the CPU (for tests).
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

}  // namespace branchdb::crc32c

#endif  // BRANCHDB_BASE_CRC32C_H_
