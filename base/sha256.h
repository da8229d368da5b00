// SHA-256 (through OpenSSL) and lower-case hex, for the few places that
// hash: bearer tokens (auth's cache key), recorded scripts (catalog),
// idempotency fingerprints (server), S3 signatures (objstore).
#pragma once

#include <string>
#include <string_view>

namespace branchdb {

// The digest of data into out. Cheap enough for every request: the
// implementation is fetched once and each thread reuses its context, with
// no allocation.
void Sha256To(std::string_view data, unsigned char out[32]);

// The digest as 32 raw bytes, and as 64 lower-case hex digits.
std::string Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);

// Two lower-case hex digits per byte.
std::string HexLower(std::string_view bytes);

}  // namespace branchdb
