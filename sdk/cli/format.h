// Human-readable output of the CLI: durations, aligned tables, JSON values as
// table cells. (The --json output needs none of this: it prints the API's
// JSON answer as it came.)
#ifndef BRANCHDB_SDK_CLI_FORMAT_H_
#define BRANCHDB_SDK_CLI_FORMAT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace branchdb::cli {

// "90" (seconds), "30s", "15m", "24h", "7d", "1w", and sums such as "1h30m".
// nullopt when malformed, negative or beyond 100 years.
std::optional<int64_t> ParseDuration(const std::string& text);

// 90 -> "1m30s", 86400 -> "1d", 0 -> "0s".
std::string FormatDuration(int64_t seconds);

// 1536 -> "1.5 KiB".
std::string FormatBytes(uint64_t bytes);

// A JSON value as one table cell: strings as they are, null as "NULL",
// {"$blob":"..."} as "<blob N bytes>", other values as compact JSON. Newlines
// and tabs become spaces; cells longer than max_width are cut with "…"
// (max_width 0 = no limit).
std::string Cell(const nlohmann::json& value, size_t max_width = 0);

// A table with a header row, columns aligned on the widest cell:
//   NAME        HEAD  PARENT
//   production  12    -
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// A value of a JSON object for human output: "" for a missing key or null.
std::string Str(const nlohmann::json& object, const char* key);

}  // namespace branchdb::cli

#endif  // BRANCHDB_SDK_CLI_FORMAT_H_
