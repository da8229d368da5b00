#include "base/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace branchdb {

void Sha256To(std::string_view data, unsigned char out[32]) {
  // Fetched once: EVP_sha256() makes every digest look the implementation up
  // again (OpenSSL 3's implicit fetch, locks and a property query), which
  // cost more than hashing a bearer token, done on every request. The
  // thread's context is reused (EVP_DigestInit_ex2 keeps its provider
  // context for the same digest), and nothing touches the heap.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                          &EVP_MD_CTX_free);
  unsigned int len = 0;
  if (kSha256 == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) {
    EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  }
}

std::string Sha256(std::string_view data) {
  unsigned char md[32];
  Sha256To(data, md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::string Sha256Hex(std::string_view data) { return HexLower(Sha256(data)); }

std::string HexLower(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * bytes.size(), '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xF];
  }
  return out;
}

}  // namespace branchdb
