// The SigV4 signer against AWS's published vectors: the aws-sig-v4-test-suite
// (service "service", us-east-1, AKIDEXAMPLE, 20150830T123600Z, host and
// x-amz-date signed, the empty body's hash) and the S3 documentation's
// GetObject example (examplebucket, Range: bytes=0-9).
#include <catch2/catch.hpp>

#include "base/sha256.h"
#include "objstore/sigv4.h"

namespace branchdb::objstore {
namespace {

constexpr std::string_view kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The suite's request: host example.amazonaws.com, signed at its date.
std::string SuiteAuthorization(std::string method, std::string path,
                               std::vector<std::pair<std::string, std::string>> query = {}) {
  SigV4Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.query = std::move(query);
  request.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  request.payload_hash = std::string(kEmptyHash);
  SigV4Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                               "us-east-1", "service"};
  return Authorization(request, credentials, "20150830T123600Z");
}

std::string SignatureOf(const std::string& authorization) {
  return authorization.substr(authorization.find("Signature=") + 10);
}

TEST_CASE("get-vanilla signs as AWS publishes it") {
  CHECK(SuiteAuthorization("GET", "/") ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST_CASE("post-vanilla signs as AWS publishes it") {
  CHECK(SignatureOf(SuiteAuthorization("POST", "/")) ==
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST_CASE("get-vanilla-query-order-key-case: query parameters are sorted by name") {
  CHECK(SignatureOf(SuiteAuthorization("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}})) ==
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST_CASE("get-unreserved: unreserved characters of the path stay as they are") {
  const std::string path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  CHECK(CanonicalUri(path) == path);
  CHECK(SignatureOf(SuiteAuthorization("GET", path)) ==
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST_CASE("get-vanilla-query-unreserved: unreserved characters of the query stay as they are") {
  const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  CHECK(SignatureOf(SuiteAuthorization("GET", "/", {{unreserved, unreserved}})) ==
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

TEST_CASE("get-utf8: a UTF-8 path is percent-encoded byte by byte") {
  CHECK(CanonicalUri("/\xE1\x88\xB4") == "/%E1%88%B4");
  CHECK(SignatureOf(SuiteAuthorization("GET", "/\xE1\x88\xB4")) ==
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST_CASE("the S3 documentation's GetObject example signs as published") {
  SigV4Request request;
  request.method = "GET";
  request.path = "/test.txt";
  request.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                     {"Range", "bytes=0-9"},
                     {"x-amz-content-sha256", std::string(kEmptyHash)},
                     {"x-amz-date", "20130524T000000Z"}};
  request.payload_hash = std::string(kEmptyHash);
  SigV4Credentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                               "us-east-1", "s3"};
  CHECK(Authorization(request, credentials, "20130524T000000Z") ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("query values are encoded, slashes and spaces included, and sorted by value") {
  CHECK(CanonicalQuery({{"prefix", "p/a b"}, {"a", "2"}, {"a", "1"}, {"uploads", ""}}) ==
        "a=1&a=2&prefix=p%2Fa%20b&uploads=");
}

TEST_CASE("header values are trimmed and inner spaces folded; names lower-cased") {
  SigV4Request request;
  request.method = "GET";
  request.headers = {{"X-Amz-Date", "  20150830T123600Z "}, {"My-Header", "a   b  c"}};
  request.payload_hash = "UNSIGNED-PAYLOAD";
  CHECK(CanonicalRequest(request) ==
        "GET\n/\n\nmy-header:a b c\nx-amz-date:20150830T123600Z\n\n"
        "my-header;x-amz-date\nUNSIGNED-PAYLOAD");
}

TEST_CASE("AmzDate formats UTC time; digests match their known values") {
  CHECK(AmzDate(1440938160000000) == "20150830T123600Z");
  CHECK(Sha256Hex("") == kEmptyHash);  // base/sha256.h, which SigV4 signs with
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256("abc") == std::string("\xba\x78\x16\xbf\x8f\x01\xcf\xea\x41\x41\x40\xde\x5d\xae"
                                     "\x22\x23\xb0\x03\x61\xa3\x96\x17\x7a\x9c\xb4\x10\xff\x61"
                                     "\xf2\x00\x15\xad",
                                     32));
  CHECK(HexLower(std::string("\x00\x7f\x80\xff", 4)) == "007f80ff");
  CHECK(Md5Hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(Md5Base64("") == "1B2M2Y8AsgTpgAmY7PhCfg==");
}

}  // namespace
}  // namespace branchdb::objstore
