// Hardening issue #13, item 5: log forging. Everything logged from a request
// is escaped (server/http/log_value.h), so no byte a client sends (CR, LF,
// NUL, quotes, backslashes, spaces, non-UTF-8) can end a log line early, start
// a forged one, or make a line that is not printable ASCII.
//
// The class test sends hostile bytes in every place a request carries text
// (path, query, method, header values, X-Request-Id, Idempotency-Key, an MCP
// tool name, OAuth client ids) to a real server and checks that every line
// the server logged is one well-formed line: "[level] event=..." of printable
// ASCII only.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "server/http/log_value.h"
#include "tests/security/raw_http.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

// Routes spdlog's default logger (the one ApiServer logs to) into a string
// for the life of the object, with the pattern "[level] message".
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_pattern("[%l] %v");
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string Text() { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

bool PrintableAscii(const std::string& line) {
  for (unsigned char c : line) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Every line: "[level] event=", printable ASCII only.
void CheckWellFormed(const std::string& log) {
  std::istringstream lines(log);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    INFO("log line " << count << ": " << http::LogValue(line));
    CHECK(PrintableAscii(line));
    bool starts_right = line.rfind("[info] event=", 0) == 0 ||
                        line.rfind("[warning] event=", 0) == 0 ||
                        line.rfind("[error] event=", 0) == 0;
    CHECK(starts_right);
  }
  CHECK(count > 0);
}

const std::string kHostile = "%0D%0Aevent=forged%00%22%5C%20%FF%FE";  // CR LF NUL " \ space, bad UTF-8

}  // namespace

TEST_CASE("LogValue leaves only printable ASCII tokens for every byte", "[security][log]") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string escaped = http::LogValue(all);
  for (unsigned char c : escaped) {
    CHECK(c > 0x20);
    CHECK(c < 0x7f);
    CHECK(c != '"');
  }
  CHECK(http::LogValue("/v1/projects/shop") == "/v1/projects/shop");
  CHECK(http::LogValue("a\r\nb") == "a\\x0d\\x0ab");
  CHECK(http::LogValue("\"x\" \\") == "\\x22x\\x22\\x20\\x5c");
  CHECK(http::LogValue(std::string("\0\xff", 2)) == "\\x00\\xff");
}

TEST_CASE("a request cannot forge or break a log line, wherever its bytes are (item 5)",
          "[security][log]") {
  CapturedLog log;
  {
    testing::LiveServer server;
    int port = server.port_;
    std::string token = server.AdminToken();
    auto raw = [port](const std::string& request_line, const std::string& headers = "",
                      const std::string& body = "") {
      std::string req = request_line + "\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers;
      if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
      return testing::RawExchange(port, req + "\r\n" + body);
    };
    // The path (percent-encoded and raw bytes), the query string, the method.
    CHECK(!raw("GET /v1/projects/" + kHostile + " HTTP/1.1").empty());
    CHECK(!raw("GET /healthz" + kHostile + "?q=" + kHostile + " HTTP/1.1").empty());
    raw("GET /a\rb\x01\xff\"c HTTP/1.1");
    raw("GE\x00T\r\nevent=forged / HTTP/1.1");
    raw("GET /%0aevent=forged\x0b HTTP/1.1");
    // Header values: the request id, the idempotency key, the Origin.
    raw("GET /healthz HTTP/1.1", "X-Request-Id: a\x01b\xff\"c\\d e\r\n");
    raw("POST /v1/projects HTTP/1.1",
        "Authorization: Bearer " + token + "\r\nIdempotency-Key: k\x01\xff\"\r\n"
        "Content-Type: application/json\r\n",
        R"j({"name":"p\r\nevent=forged"})j");
    // An MCP tool name (logged by event=mcp_tool_call), with JSON escapes
    // for CR, LF and NUL.
    raw("POST /mcp HTTP/1.1",
        "Authorization: Bearer " + token + "\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\nOrigin: http://x\x01\r\n",
        json({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
              {"params", {{"name", std::string("t\r\nevent=forged\0\"\xff", 18)}}}})
            .dump(-1, ' ', false, json::error_handler_t::replace));
    raw("POST /mcp HTTP/1.1",
        "Authorization: Bearer " + token + "\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\n",
        std::string(R"j({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\r\nevent=forged\u0000\u00ff"}})j"));
    // OAuth client ids and secrets, in the form and in Basic auth.
    raw("POST /oauth/token HTTP/1.1", "Content-Type: application/x-www-form-urlencoded\r\n",
        "grant_type=client_credentials&client_id=" + kHostile + "&client_secret=" + kHostile);
    raw("POST /oauth/token HTTP/1.1",
        "Authorization: Basic YQ0KZXZlbnQ9Zm9yZ2VkOmI=\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "grant_type=client_credentials");
    // A branch route whose handler sees a hostile name.
    raw("POST /v1/projects/" + kHostile + "/branches/" + kHostile + "/sql HTTP/1.1",
        "Authorization: Bearer " + token + "\r\nContent-Type: application/json\r\n",
        R"j({"sql":"SELECT 1"})j");
  }
  std::string text = log.Text();
  CheckWellFormed(text);
  // The hostile path was logged, escaped (so the test saw the request).
  CHECK(text.find("event=forged\\x00") != std::string::npos);
  CHECK(text.find("\\x0d\\x0aevent=forged") != std::string::npos);
}

}  // namespace branchdb::server
