// AWS Signature Version 4 (header authentication), as S3 and every AWS service
// check it: the canonical request, the string to sign, the derived signing key
// and the Authorization header's value. Pure functions of their inputs (the
// caller passes the request time), so that AWS's published test vectors check
// them (tests/objstore/sigv4_test.cc).
//
// Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
//
// Thread-safety: stateless; safe from any thread.
#ifndef BRANCHDB_OBJSTORE_SIGV4_H_
#define BRANCHDB_OBJSTORE_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace branchdb::objstore {

// The payload hash S3 accepts instead of the body's SHA-256.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;               // "us-east-1"
  std::string service = "s3";
};

// One request as it is signed. Path and query are raw (not yet encoded): the
// signer encodes them, and the caller sends exactly CanonicalUri(path) and
// CanonicalQuery(query), so that what is signed is what is sent.
struct SigV4Request {
  std::string method;                                        // "GET"
  std::string path = "/";                                    // "/bucket/seg-000001.log"
  std::vector<std::pair<std::string, std::string>> query;    // {"list-type","2"}, any order
  // Headers to sign (names in any case; values are trimmed and inner runs of
  // spaces folded). Must include host and x-amz-date.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // lower-case hex SHA-256 of the body, or kUnsignedPayload
};

// RFC 3986 percent-encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ stay, every
// other byte becomes %XX (upper-case hex); '/' stays when !encode_slash.
std::string UriEncode(std::string_view s, bool encode_slash);

// The path, each byte encoded once except '/' ("" becomes "/").
std::string CanonicalUri(std::string_view path);

// "a=1&b=2": names and values encoded, sorted by name then value.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

// The canonical request (method, URI, query, headers, signed header names,
// payload hash, joined by '\n').
std::string CanonicalRequest(const SigV4Request& request);

// "host;range;x-amz-date": the signed headers' names, lower-case, sorted.
std::string SignedHeaderNames(const SigV4Request& request);

// The value of the Authorization header for request at amz_date
// ("20150830T123600Z"; its first 8 characters are the scope's date).
std::string Authorization(const SigV4Request& request, const SigV4Credentials& credentials,
                          std::string_view amz_date);

// "20150830T123600Z" for a time in microseconds since the Unix epoch (UTC).
std::string AmzDate(int64_t unix_micros);

// Lower-case hex MD5 of data (an ETag); Base64 of MD5 (Content-MD5).
// (SHA-256: base/sha256.h.)
std::string Md5Hex(std::string_view data);
std::string Md5Base64(std::string_view data);

}  // namespace branchdb::objstore

#endif  // BRANCHDB_OBJSTORE_SIGV4_H_
