// LogValue: makes text that came from a request (a path, a header, a client
// id, a tool name, an error message quoting them) safe to put in one log line.
//
// The result is printable ASCII with no space, quote or backslash: every byte
// outside 0x21..0x7e, and '"' and '\', becomes "\xHH". So a logged value is
// one key=value token, a CR, LF or NUL cannot start a forged line, and a
// non-UTF-8 byte cannot break a log shipper's decoding. "" stays "".
//
// Thread-safety: a pure function.
#ifndef BRANCHDB_SERVER_HTTP_LOG_VALUE_H_
#define BRANCHDB_SERVER_HTTP_LOG_VALUE_H_

#include <string>
#include <string_view>

namespace branchdb::server::http {

std::string LogValue(std::string_view text);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_LOG_VALUE_H_
