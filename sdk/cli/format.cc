#include "sdk/cli/format.h"

#include <cctype>
#include <cstdio>

namespace branchdb::cli {

using nlohmann::json;

namespace {

constexpr int64_t kMaxSeconds = 100ll * 366 * 86400;

// Display width of a UTF-8 string: counts code points, not bytes.
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The first max code points of s.
std::string Prefix(const std::string& s, size_t max) {
  size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == max) break;
      ++n;
    }
  }
  return s.substr(0, i);
}

}  // namespace

std::optional<int64_t> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxSeconds) return std::nullopt;
      ++i;
    }
    int64_t unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        case 'd':
          unit = 86400;
          break;
        case 'w':
          unit = 7 * 86400;
          break;
        default:
          return std::nullopt;
      }
      ++i;
    } else if (total != 0 || i != text.size()) {
      return std::nullopt;  // "1h30": a bare number only on its own
    }
    total += n * unit;
    if (total > kMaxSeconds) return std::nullopt;
  }
  return total;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string out;
  if (seconds < 0) {
    out = "-";
    seconds = -seconds;
  }
  const std::pair<int64_t, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (const auto& [size, name] : units) {
    if (seconds >= size) {
      out += std::to_string(seconds / size) + name;
      seconds %= size;
    }
  }
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string Cell(const json& value, size_t max_width) {
  std::string s;
  if (value.is_null()) {
    s = "NULL";
  } else if (value.is_string()) {
    s = value.get<std::string>();
  } else if (value.is_object() && value.size() == 1 && value.contains("$blob") &&
             value["$blob"].is_string()) {
    const std::string& b64 = value["$blob"].get_ref<const std::string&>();
    size_t pad = 0;
    for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) ++pad;
    s = "<blob " + std::to_string(b64.size() / 4 * 3 - pad) + " bytes>";
  } else {
    s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (max_width > 1 && Width(s) > max_width) s = Prefix(s, max_width - 1) + "…";
  return s;
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - Width(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print(headers_);
  for (const auto& r : rows_) print(r);
}

std::string Str(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return "";
  return Cell(object[key]);
}

}  // namespace branchdb::cli
