// Internal to auth/: the OpenSSL-backed primitives (base64url, random bytes,
// SHA-256, PBKDF2, constant-time compare, Ed25519 keys). Not a public header:
// it may be included only by auth/*.cc, tests/auth and tests/fuzz.
//
// Thread-safety: all functions are thread-safe; an Ed25519Key is immutable
// after creation and may be used from many threads.
#ifndef BRANCHDB_AUTH_INTERNAL_CRYPTO_H_
#define BRANCHDB_AUTH_INTERNAL_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace branchdb::auth::internal {

// RFC 4648 §5 without padding.
std::string Base64UrlEncode(std::string_view bytes);
// Strict: only [A-Za-z0-9_-], no padding, length % 4 != 1, unused trailing bits
// zero (so each byte string has exactly one encoding). nullopt otherwise.
std::optional<std::string> Base64UrlDecode(std::string_view text);
// Standard base64 (RFC 4648 §4) with padding, as used by HTTP Basic.
std::optional<std::string> Base64StdDecode(std::string_view text);

// n cryptographically random bytes (RAND_bytes). Unavailable on failure.
Result<std::string> RandomBytes(size_t n);
// CRYPTO_memcmp over equal lengths; false when the lengths differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>" of secret.
Result<std::string> HashSecret(std::string_view secret, int iterations);
// Recomputes and compares in constant time; false for a malformed stored hash.
bool VerifySecret(std::string_view secret, std::string_view stored);

class Ed25519Key {
 public:
  ~Ed25519Key();
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  static Result<std::unique_ptr<Ed25519Key>> Generate();
  // From a 32-byte raw private key (seed); used by the fuzz target and tests.
  static Result<std::unique_ptr<Ed25519Key>> FromRawPrivate(std::string_view seed32);
  static Result<std::unique_ptr<Ed25519Key>> FromRawPublic(std::string_view pub32);
  // PKCS#8 PEM private key.
  static Result<std::unique_ptr<Ed25519Key>> FromPrivatePem(std::string_view pem);

  bool has_private() const { return has_private_; }
  Result<std::string> PrivatePem() const;   // REQUIRES: has_private()
  const std::string& public_raw() const { return public_raw_; }  // 32 bytes
  // RFC 7638 thumbprint (base64url SHA-256 of the canonical JWK): the kid.
  std::string Thumbprint() const;
  // 64-byte Ed25519 signature of message. REQUIRES: has_private()
  Result<std::string> Sign(std::string_view message) const;
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  struct Impl;
  explicit Ed25519Key(std::unique_ptr<Impl> impl);
  static Result<std::unique_ptr<Ed25519Key>> Wrap(void* evp_pkey, bool has_private);
  std::unique_ptr<Impl> impl_;
  bool has_private_ = false;
  std::string public_raw_;
};

}  // namespace branchdb::auth::internal

#endif  // BRANCHDB_AUTH_INTERNAL_CRYPTO_H_
