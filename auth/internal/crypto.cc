// OpenSSL 3.0 EVP implementations of auth's primitives.
#include "auth/internal/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <memory>

#include "base/sha256.h"

namespace branchdb::auth::internal {
namespace {

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kB64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::array<int8_t, 256> MakeTable(const char* alphabet) {
  std::array<int8_t, 256> t;
  t.fill(-1);
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}

// Decodes unpadded base64 in `alphabet`; strict about trailing bits.
std::optional<std::string> DecodeUnpadded(std::string_view text,
                                          const std::array<int8_t, 256>& table) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64Url[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kB64Url[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  static const auto table = MakeTable(kB64Url);
  return DecodeUnpadded(text, table);
}

std::optional<std::string> Base64StdDecode(std::string_view text) {
  static const auto table = MakeTable(kB64Std);
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && !text.empty() && text[text.size() - 1 - pad] == '=') ++pad;
  return DecodeUnpadded(text.substr(0, text.size() - pad), table);
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Status::Unavailable("RAND_bytes failed");
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
std::optional<std::string> Pbkdf2(std::string_view secret, std::string_view salt, int iterations) {
  std::string out(32, '\0');
  if (PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), 32,
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    return std::nullopt;
  }
  return out;
}
}  // namespace

Result<std::string> HashSecret(std::string_view secret, int iterations) {
  if (iterations < 1) return Status::InvalidArgument("pbkdf2 iterations must be >= 1");
  auto salt = RandomBytes(16);
  if (!salt.ok()) return salt.status();
  auto hash = Pbkdf2(secret, *salt, iterations);
  if (!hash) return Status::Unavailable("PBKDF2 failed");
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + Base64UrlEncode(*salt) + "$" +
         Base64UrlEncode(*hash);
}

bool VerifySecret(std::string_view secret, std::string_view stored) {
  constexpr std::string_view kPrefix = "pbkdf2-sha256$";
  if (stored.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = stored.substr(kPrefix.size());
  size_t d1 = rest.find('$');
  if (d1 == std::string_view::npos) return false;
  size_t d2 = rest.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  int iterations = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + d1, iterations);
  if (ec != std::errc() || p != rest.data() + d1 || iterations < 1 || iterations > 10000000) {
    return false;
  }
  auto salt = Base64UrlDecode(rest.substr(d1 + 1, d2 - d1 - 1));
  auto want = Base64UrlDecode(rest.substr(d2 + 1));
  if (!salt || !want || want->size() != 32) return false;
  auto got = Pbkdf2(secret, *salt, iterations);
  return got && ConstantTimeEquals(*got, *want);
}

struct Ed25519Key::Impl {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
};

Ed25519Key::Ed25519Key(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519Key::~Ed25519Key() = default;

Result<std::unique_ptr<Ed25519Key>> Ed25519Key::Wrap(void* raw, bool has_private) {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(static_cast<EVP_PKEY*>(raw));
  if (!pkey) return Status::InvalidArgument("not an Ed25519 key");
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument("key is not Ed25519");
  }
  std::string pub(32, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                  &len) != 1 ||
      len != 32) {
    return Status::InvalidArgument("cannot read Ed25519 public key");
  }
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  std::unique_ptr<Ed25519Key> key(new Ed25519Key(std::move(impl)));
  key->has_private_ = has_private;
  key->public_raw_ = std::move(pub);
  return key;
}

Result<std::unique_ptr<Ed25519Key>> Ed25519Key::Generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr) return Status::Unavailable("Ed25519 key generation failed");
  return Wrap(pkey, true);
}

Result<std::unique_ptr<Ed25519Key>> Ed25519Key::FromRawPrivate(std::string_view seed32) {
  if (seed32.size() != 32) return Status::InvalidArgument("Ed25519 seed must be 32 bytes");
  return Wrap(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                           reinterpret_cast<const unsigned char*>(seed32.data()),
                                           32),
              true);
}

Result<std::unique_ptr<Ed25519Key>> Ed25519Key::FromRawPublic(std::string_view pub32) {
  if (pub32.size() != 32) return Status::InvalidArgument("Ed25519 public key must be 32 bytes");
  return Wrap(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                          reinterpret_cast<const unsigned char*>(pub32.data()),
                                          32),
              false);
}

Result<std::unique_ptr<Ed25519Key>> Ed25519Key::FromPrivatePem(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Unavailable("BIO_new_mem_buf failed");
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) return Status::Corruption("unreadable private key PEM");
  return Wrap(pkey, true);
}

Result<std::string> Ed25519Key::PrivatePem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1) {
    return Status::Unavailable("PEM_write_bio_PrivateKey failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<size_t>(len));
  return out;
}

std::string Ed25519Key::Thumbprint() const {
  // RFC 7638 §3.2 canonical JWK for OKP (RFC 8037 §2): crv, kty, x in order.
  std::string jwk = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" +
                    Base64UrlEncode(public_raw_) + "\"}";
  return Base64UrlEncode(Sha256(jwk));
}

Result<std::string> Ed25519Key::Sign(std::string_view message) const {
  if (!has_private_) return Status::FailedPrecondition("public-only key cannot sign");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != 64) {
    return Status::Unavailable("Ed25519 signing failed");
  }
  return sig;
}

bool Ed25519Key::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace branchdb::auth::internal
