#include "server/routes/common.h"

#include <httplib.h>

#include <charconv>
#include <cstdio>
#include <ctime>

namespace branchdb::server::routes {

using nlohmann::json;

std::string FormatTime(int64_t micros) {
  int64_t secs = micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000;
  int64_t millis = (micros - secs * 1000000) / 1000;
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

namespace {

std::string RangeText(IntRange range) {
  return "an integer from " + std::to_string(range.min) + " to " + std::to_string(range.max);
}

Status OutOfRange(const std::string& field, IntRange range, const std::string& got) {
  return Status::InvalidArgument(
      field + ": expected " + RangeText(range) + ", got " + got.substr(0, 40), "invalid_argument");
}

}  // namespace

Result<int64_t> ParseTime(const json& value, const std::string& field) {
  if (value.is_number()) {
    // Unix seconds: range-checked before any multiplication, so that no value
    // wraps into another time.
    bool in_range = false;
    if (value.is_number_unsigned()) {
      in_range = value.get<uint64_t>() <= static_cast<uint64_t>(kUnixSecondsRange.max);
    } else if (value.is_number_integer()) {
      int64_t n = value.get<int64_t>();
      in_range = n >= kUnixSecondsRange.min && n <= kUnixSecondsRange.max;
    } else {
      double d = value.get<double>();
      in_range = d >= kUnixSecondsRange.min && d <= static_cast<double>(kUnixSecondsRange.max);
    }
    if (!in_range) {
      return Status::InvalidArgument(field + ": Unix seconds must be within 0.." +
                                         std::to_string(kUnixSecondsRange.max) +
                                         " (9999-12-31T23:59:59Z), got " + value.dump(),
                                     "invalid_argument");
    }
    if (value.is_number_float()) return static_cast<int64_t>(value.get<double>() * 1e6);
    return value.get<int64_t>() * 1000000;
  }
  Status bad = Status::InvalidArgument(
      field + ": expected an RFC 3339 time (\"2026-01-01T12:00:00Z\") or Unix seconds",
      "invalid_argument");
  if (!value.is_string()) return bad;
  const std::string s = value.get<std::string>();
  int y, mo, d, h, mi, sec;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 &&
      std::sscanf(s.c_str(), "%4d-%2d-%2dt%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6) {
    return bad;
  }
  size_t i = static_cast<size_t>(used);
  int64_t frac_micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = 100000;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      frac_micros += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  int64_t offset_secs = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return bad;
    offset_secs = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad;
  }
  if (i != s.size() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return bad;
  }
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t epoch = static_cast<int64_t>(timegm(&tm)) - offset_secs;
  return epoch * 1000000 + frac_micros;
}

std::string ComputeKey(const std::string& project, const std::string& branch) {
  return project + "/" + branch;
}

json ProjectJson(const catalog::ProjectInfo& p) {
  return {{"id", p.id},
          {"name", p.name},
          {"created_at", FormatTime(p.created_micros)},
          {"restore_window_seconds", p.restore_window_micros / 1000000},
          {"default_branch", p.default_branch}};
}

int64_t EffectiveIdleTimeout(const catalog::BranchInfo& b, int64_t default_seconds) {
  return b.idle_timeout_seconds.value_or(default_seconds);
}

json BranchJson(const catalog::BranchInfo& b, int64_t default_idle_timeout_seconds) {
  json j = {{"name", b.name},
            {"parent", b.parent.empty() ? json(nullptr) : json(b.parent)},
            {"head_lsn", b.head},
            {"branch_point_lsn", b.branch_point},
            {"created_at", FormatTime(b.created_micros)},
            {"expires_at", b.expires_micros ? json(FormatTime(*b.expires_micros)) : json(nullptr)},
            {"protected", b.is_protected},
            {"writes", b.writes_promote_only ? "promote_only" : "any"},
            {"default", b.is_default},
            {"logical_bytes", b.logical_bytes},
            {"exclusive_bytes", b.exclusive_bytes},
            {"idle_timeout_seconds", EffectiveIdleTimeout(b, default_idle_timeout_seconds)}};
  return j;
}

json CheckpointJson(const catalog::CheckpointInfo& c) {
  json out = {{"lsn", c.lsn},
          {"time", FormatTime(c.time_micros)},
          {"kind", c.annotation.kind},
          {"client_id", c.annotation.client_id},
          {"request_id", c.annotation.request_id},
          {"summary", c.annotation.summary},
          {"rows_affected", c.annotation.rows},
          {"label", c.labels.empty() ? json(nullptr) : json(c.labels.front())},
          {"labels", c.labels},
          {"inherited", c.inherited},
          {"rolled_back", c.rolled_back},
          {"branch", c.branch.empty() ? json(nullptr) : json(c.branch)}};
  // A move (rollback, reset, promote) and a branch's creation: the state it
  // moved to; a move: the head it left (roll back to it to undo the move).
  if (c.annotation.target) out["target_lsn"] = *c.annotation.target;
  if (c.annotation.previous_head) out["previous_head_lsn"] = *c.annotation.previous_head;
  // Promote: the promotion's source and carried LSNs; the source LSN of a replayed action.
  if (!c.annotation.source.empty()) out["source"] = c.annotation.source;
  if (!c.annotation.actions.empty()) out["actions"] = c.annotation.actions;
  if (c.annotation.replay_of) out["replay_of"] = *c.annotation.replay_of;
  return out;
}

Result<std::optional<int64_t>> QueryInt(const httplib::Request& req, const std::string& name,
                                        IntRange range) {
  if (!req.has_param(name.c_str())) return std::optional<int64_t>();
  std::string v = req.get_param_value(name.c_str());
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || v[0] == '-' || ec != std::errc() || end != v.data() + v.size() ||
      n < range.min || n > range.max) {
    return OutOfRange("query parameter " + name, range, "\"" + v + "\"");
  }
  return std::optional<int64_t>(n);
}

Result<std::optional<int64_t>> OptInt(const json& body, const std::string& field, IntRange range,
                                      const std::string& label) {
  if (!body.contains(field) || body[field].is_null()) return std::optional<int64_t>();
  const json& v = body[field];
  const std::string& name = label.empty() ? field : label;
  // A uint64 past INT64_MAX is past every range; a float (1.0, 1e3, a literal
  // beyond 64 bits) is not an integer.
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) {
    return OutOfRange(name, range, v.dump());
  }
  int64_t n = v.get<int64_t>();
  if (n < range.min || n > range.max) return OutOfRange(name, range, v.dump());
  return std::optional<int64_t>(n);
}

Result<std::optional<bool>> OptBool(const json& body, const std::string& field) {
  if (!body.contains(field) || body[field].is_null()) return std::optional<bool>();
  if (!body[field].is_boolean()) {
    return Status::InvalidArgument(field + ": expected true or false", "invalid_argument");
  }
  return std::optional<bool>(body[field].get<bool>());
}

Result<std::optional<std::string>> OptString(const json& body, const std::string& field) {
  if (!body.contains(field) || body[field].is_null()) return std::optional<std::string>();
  if (!body[field].is_string()) {
    return Status::InvalidArgument(field + ": expected a string", "invalid_argument");
  }
  return std::optional<std::string>(body[field].get<std::string>());
}

}  // namespace branchdb::server::routes
