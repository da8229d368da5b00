#include "server/hrana/protocol.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "server/http/errors.h"

namespace branchdb::server::hrana {
namespace {

using nlohmann::json;

// The decoder of one pipeline: every failure names its field.
class Decoder {
 public:
  explicit Decoder(int version) : version_(version) {}

  Result<Pipeline> Pipe(const json& body) {
    Pipeline p;
    if (body.contains("baton") && !body["baton"].is_null()) {
      if (!body["baton"].is_string()) return Bad("baton: expected a string or null");
      p.baton = body["baton"].get<std::string>();
    }
    const json* requests = Member(body, "requests");
    if (requests == nullptr || !requests->is_array()) return Bad("requests: expected an array");
    if (requests->size() > kMaxRequests) {
      return Bad("requests: more than " + std::to_string(kMaxRequests) + " in one pipeline");
    }
    for (size_t i = 0; i < requests->size(); ++i) {
      auto r = Request((*requests)[i], "requests[" + std::to_string(i) + "]");
      if (!r.ok()) return r.status();
      p.requests.push_back(std::move(*r));
    }
    return p;
  }

 private:
  static Status Bad(const std::string& message) { return ProtocolError(message); }

  static const json* Member(const json& obj, const char* name) {
    auto it = obj.find(name);
    return it == obj.end() ? nullptr : &*it;
  }

  // An optional string member (absent or null: nullopt).
  Status OptString(const json& obj, const char* name, const std::string& where,
                   std::optional<std::string>* out) {
    const json* v = Member(obj, name);
    if (v == nullptr || v->is_null()) return Status::OK();
    if (!v->is_string()) return Bad(where + "." + name + ": expected a string");
    *out = v->get<std::string>();
    return Status::OK();
  }

  // An optional integer member within [min, max] (absent or null: nullopt).
  Status OptInt(const json& obj, const char* name, const std::string& where, int64_t min,
                int64_t max, std::optional<int64_t>* out) {
    const json* v = Member(obj, name);
    if (v == nullptr || v->is_null()) return Status::OK();
    int64_t n = 0;
    if (v->is_number_integer() && !v->is_number_unsigned()) {
      n = v->get<int64_t>();
    } else if (v->is_number_unsigned() && v->get<uint64_t>() <= static_cast<uint64_t>(max)) {
      n = static_cast<int64_t>(v->get<uint64_t>());
    } else {
      return Bad(where + "." + name + ": expected an integer within " + std::to_string(min) + ".." +
                 std::to_string(max));
    }
    if (n < min || n > max) {
      return Bad(where + "." + name + ": expected an integer within " + std::to_string(min) + ".." +
                 std::to_string(max));
    }
    *out = n;
    return Status::OK();
  }

  Status SqlId(const json& obj, const std::string& where, std::optional<int32_t>* out) {
    std::optional<int64_t> id;
    BRANCHDB_RETURN_IF_ERROR(OptInt(obj, "sql_id", where, 0, kMaxSqlId, &id));
    if (id) *out = static_cast<int32_t>(*id);
    return Status::OK();
  }

  Result<Stmt> Statement(const json& v, const std::string& where) {
    if (!v.is_object()) return Bad(where + ": expected an object");
    Stmt s;
    BRANCHDB_RETURN_IF_ERROR(OptString(v, "sql", where, &s.sql));
    BRANCHDB_RETURN_IF_ERROR(SqlId(v, where, &s.sql_id));
    if (s.sql.has_value() == s.sql_id.has_value()) {
      return Bad(where + ": expected exactly one of sql and sql_id");
    }
    if (const json* args = Member(v, "args"); args != nullptr && !args->is_null()) {
      if (!args->is_array()) return Bad(where + ".args: expected an array");
      if (args->size() > kMaxArgs) {
        return ProtocolError(where + ".args: more than " + std::to_string(kMaxArgs),
                             "ARGS_INVALID");
      }
      for (size_t i = 0; i < args->size(); ++i) {
        auto value = DecodeValue((*args)[i], where + ".args[" + std::to_string(i) + "]");
        if (!value.ok()) return value.status();
        s.args.push_back(std::move(*value));
      }
    }
    if (const json* named = Member(v, "named_args"); named != nullptr && !named->is_null()) {
      if (!named->is_array()) return Bad(where + ".named_args: expected an array");
      if (named->size() > kMaxArgs) {
        return ProtocolError(where + ".named_args: more than " + std::to_string(kMaxArgs),
                             "ARGS_INVALID");
      }
      for (size_t i = 0; i < named->size(); ++i) {
        std::string at = where + ".named_args[" + std::to_string(i) + "]";
        const json& arg = (*named)[i];
        if (!arg.is_object()) return Bad(at + ": expected an object");
        const json* name = Member(arg, "name");
        if (name == nullptr || !name->is_string()) return Bad(at + ".name: expected a string");
        const json* value = Member(arg, "value");
        if (value == nullptr) return Bad(at + ".value: missing");
        auto decoded = DecodeValue(*value, at + ".value");
        if (!decoded.ok()) return decoded.status();
        s.named_args.emplace_back(name->get<std::string>(), std::move(*decoded));
      }
    }
    if (const json* want = Member(v, "want_rows"); want != nullptr && !want->is_null()) {
      if (!want->is_boolean()) return Bad(where + ".want_rows: expected a boolean");
      s.want_rows = want->get<bool>();
    }
    return s;
  }

  Result<BatchCond> Condition(const json& v, const std::string& where, int depth) {
    if (depth > kMaxConditionDepth) {
      return Bad(where + ": conditions nested deeper than " + std::to_string(kMaxConditionDepth));
    }
    if (!v.is_object()) return Bad(where + ": expected an object");
    const json* type = Member(v, "type");
    if (type == nullptr || !type->is_string()) return Bad(where + ".type: expected a string");
    const std::string& t = type->get_ref<const std::string&>();
    BatchCond c;
    if (t == "ok" || t == "error") {
      c.kind = t == "ok" ? BatchCond::Kind::kOk : BatchCond::Kind::kError;
      std::optional<int64_t> step;
      BRANCHDB_RETURN_IF_ERROR(OptInt(v, "step", where, 0, kMaxSteps - 1, &step));
      if (!step) return Bad(where + ".step: expected an integer");
      c.step = static_cast<uint32_t>(*step);
    } else if (t == "not") {
      c.kind = BatchCond::Kind::kNot;
      const json* inner = Member(v, "cond");
      if (inner == nullptr) return Bad(where + ".cond: missing");
      auto decoded = Condition(*inner, where + ".cond", depth + 1);
      if (!decoded.ok()) return decoded.status();
      c.conds.push_back(std::move(*decoded));
    } else if (t == "and" || t == "or") {
      c.kind = t == "and" ? BatchCond::Kind::kAnd : BatchCond::Kind::kOr;
      const json* conds = Member(v, "conds");
      if (conds == nullptr || !conds->is_array()) return Bad(where + ".conds: expected an array");
      if (conds->size() > kMaxSteps) return Bad(where + ".conds: too many");
      for (size_t i = 0; i < conds->size(); ++i) {
        auto decoded =
            Condition((*conds)[i], where + ".conds[" + std::to_string(i) + "]", depth + 1);
        if (!decoded.ok()) return decoded.status();
        c.conds.push_back(std::move(*decoded));
      }
    } else if (t == "is_autocommit" && version_ >= 3) {
      c.kind = BatchCond::Kind::kIsAutocommit;
    } else {
      return Bad(where + ".type: unknown condition \"" + t + "\"" +
                 (t == "is_autocommit" ? " in Hrana 2 (it is Hrana 3's: use v3/pipeline)" : ""));
    }
    return c;
  }

  Result<StreamRequest> Request(const json& v, const std::string& where) {
    if (!v.is_object()) return Bad(where + ": expected an object");
    const json* type = Member(v, "type");
    if (type == nullptr || !type->is_string()) return Bad(where + ".type: expected a string");
    const std::string& t = type->get_ref<const std::string&>();
    StreamRequest r;
    using T = StreamRequest::Type;
    if (t == "close") {
      r.type = T::kClose;
    } else if (t == "execute") {
      r.type = T::kExecute;
      const json* stmt = Member(v, "stmt");
      if (stmt == nullptr) return Bad(where + ".stmt: missing");
      auto s = Statement(*stmt, where + ".stmt");
      if (!s.ok()) return s.status();
      r.stmt = std::move(*s);
    } else if (t == "batch") {
      r.type = T::kBatch;
      const json* batch = Member(v, "batch");
      if (batch == nullptr || !batch->is_object()) return Bad(where + ".batch: expected an object");
      const json* steps = Member(*batch, "steps");
      if (steps == nullptr || !steps->is_array()) {
        return Bad(where + ".batch.steps: expected an array");
      }
      if (steps->size() > kMaxSteps) {
        return Bad(where + ".batch.steps: more than " + std::to_string(kMaxSteps));
      }
      for (size_t i = 0; i < steps->size(); ++i) {
        std::string at = where + ".batch.steps[" + std::to_string(i) + "]";
        const json& step = (*steps)[i];
        if (!step.is_object()) return Bad(at + ": expected an object");
        BatchStep out;
        if (const json* cond = Member(step, "condition"); cond != nullptr && !cond->is_null()) {
          auto c = Condition(*cond, at + ".condition", 0);
          if (!c.ok()) return c.status();
          out.condition = std::move(*c);
        }
        const json* stmt = Member(step, "stmt");
        if (stmt == nullptr) return Bad(at + ".stmt: missing");
        auto s = Statement(*stmt, at + ".stmt");
        if (!s.ok()) return s.status();
        out.stmt = std::move(*s);
        r.steps.push_back(std::move(out));
      }
    } else if (t == "sequence" || t == "describe") {
      r.type = t == "sequence" ? T::kSequence : T::kDescribe;
      BRANCHDB_RETURN_IF_ERROR(OptString(v, "sql", where, &r.sql));
      BRANCHDB_RETURN_IF_ERROR(SqlId(v, where, &r.sql_id));
      if (r.sql.has_value() == r.sql_id.has_value()) {
        return Bad(where + ": expected exactly one of sql and sql_id");
      }
    } else if (t == "store_sql") {
      r.type = T::kStoreSql;
      BRANCHDB_RETURN_IF_ERROR(OptString(v, "sql", where, &r.sql));
      BRANCHDB_RETURN_IF_ERROR(SqlId(v, where, &r.sql_id));
      if (!r.sql || !r.sql_id) return Bad(where + ": store_sql needs sql and sql_id");
    } else if (t == "close_sql") {
      r.type = T::kCloseSql;
      BRANCHDB_RETURN_IF_ERROR(SqlId(v, where, &r.sql_id));
      if (!r.sql_id) return Bad(where + ".sql_id: expected an integer");
    } else if (t == "get_autocommit" && version_ >= 3) {
      r.type = T::kGetAutocommit;
    } else {
      return Bad(where + ".type: unknown request \"" + t + "\"" +
                 (t == "get_autocommit" ? " in Hrana 2 (it is Hrana 3's: use v3/pipeline)" : ""));
    }
    return r;
  }

  const int version_;
};

// The pipeline as @libsql/client posts it for a statement, decoded straight
// from the parser's events, without building a document: "execute" and
// "close" requests, `sql` (no sql_id), positional args, empty named_args.
// Anything else (another request type, an unknown or repeated key, a wrong
// type, a bad value, a limit passed, invalid JSON) makes it give up, and the
// body goes through the document and Decoder above, which answer it — the
// same Pipeline or the same error: this only spares the document.
class FastPipelineSax {
 public:
  bool null() { return Scalar(json(nullptr)); }
  bool boolean(bool v) { return Scalar(json(v)); }
  bool number_integer(json::number_integer_t v) { return Scalar(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Scalar(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    // An integer past 64 bits: the strict parser's error, from the fallback.
    if (text.find_first_of(".eE") == std::string::npos) return false;
    return Scalar(json(v));
  }
  bool string(json::string_t& v) { return Scalar(json(std::move(v))); }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) {
    Ctx parent = stack_.empty() ? Ctx::kNone : stack_.back().ctx;
    if (parent == Ctx::kNone) {
      stack_.push_back({Ctx::kRoot, 0});
    } else if (parent == Ctx::kRequests) {
      if (p_.requests.size() >= kMaxRequests) return false;
      p_.requests.emplace_back();
      stack_.push_back({Ctx::kRequest, 0});
    } else if (parent == Ctx::kRequest && key_ == kStmtKey) {
      stack_.push_back({Ctx::kStmt, 0});
    } else if (parent == Ctx::kArgs) {
      if (Stmt().args.size() >= kMaxArgs) return false;
      value_ = json::object();
      stack_.push_back({Ctx::kValue, 0});
    } else {
      return false;
    }
    return true;
  }
  bool key(json::string_t& k) {
    static constexpr std::string_view kKeys[] = {"baton", "requests", "type", "stmt", "sql",
                                                 "args", "named_args", "want_rows", "value",
                                                 "base64"};
    key_ = -1;
    for (int i = 0; i < static_cast<int>(std::size(kKeys)); ++i) {
      if (k == kKeys[i]) key_ = i;
    }
    if (key_ < 0 || (stack_.back().seen & (1u << key_)) != 0) return false;
    stack_.back().seen |= 1u << key_;
    return true;
  }
  bool end_object() { return EndObject(); }
  bool start_array(std::size_t) {
    Ctx parent = stack_.empty() ? Ctx::kNone : stack_.back().ctx;
    if (parent == Ctx::kRoot && key_ == kRequestsKey) {
      stack_.push_back({Ctx::kRequests, 0});
    } else if (parent == Ctx::kStmt && key_ == kArgsKey) {
      stack_.push_back({Ctx::kArgs, 0});
    } else if (parent == Ctx::kStmt && key_ == kNamedArgsKey) {
      stack_.push_back({Ctx::kNamedArgs, 0});  // only an empty one: an element gives up
    } else {
      return false;
    }
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception&) {
    return false;
  }

  // After a successful parse: the pipeline, when every request was whole.
  std::optional<Pipeline> Take() {
    if (!done_) return std::nullopt;
    return std::move(p_);
  }

 private:
  enum class Ctx { kNone, kRoot, kRequests, kRequest, kStmt, kArgs, kNamedArgs, kValue };
  // key_: the index of the last key in key()'s table.
  static constexpr int kBatonKey = 0, kRequestsKey = 1, kTypeKey = 2, kStmtKey = 3, kSqlKey = 4,
                       kArgsKey = 5, kNamedArgsKey = 6, kWantRowsKey = 7, kValueKey = 8,
                       kBase64Key = 9;
  struct Frame {
    Ctx ctx;
    unsigned seen;  // bit i: key i was met (a repeated key gives up)
  };

  hrana::Stmt& Stmt() { return p_.requests.back().stmt; }

  bool Scalar(json v) {
    Ctx top = stack_.empty() ? Ctx::kNone : stack_.back().ctx;
    if (top == Ctx::kValue) {  // "type", "value", "base64": DecodeValue judges them
      if (key_ == kTypeKey) {
        value_["type"] = std::move(v);
      } else if (key_ == kValueKey) {
        value_["value"] = std::move(v);
      } else if (key_ == kBase64Key) {
        value_["base64"] = std::move(v);
      } else {
        return false;
      }
      return true;
    }
    if (top == Ctx::kRoot && key_ == kBatonKey) {
      if (v.is_string()) p_.baton = v.get<std::string>();
      return v.is_null() || v.is_string();
    }
    if (top == Ctx::kRequest && key_ == kTypeKey && v.is_string()) {
      const std::string& t = v.get_ref<const std::string&>();
      if (t != "execute" && t != "close") return false;
      p_.requests.back().type = t == "close" ? StreamRequest::Type::kClose
                                             : StreamRequest::Type::kExecute;
      type_seen_ = true;
      return true;
    }
    if (top != Ctx::kStmt) return false;
    if (key_ == kSqlKey && v.is_string()) {
      Stmt().sql = v.get<std::string>();
      return true;
    }
    if (key_ == kWantRowsKey && (v.is_boolean() || v.is_null())) {
      if (v.is_boolean()) Stmt().want_rows = v.get<bool>();
      return true;
    }
    return (key_ == kArgsKey || key_ == kNamedArgsKey) && v.is_null();
  }

  bool EndObject() {
    Frame f = stack_.back();
    stack_.pop_back();
    switch (f.ctx) {
      case Ctx::kValue: {
        auto decoded = DecodeValue(value_, std::string());
        if (!decoded.ok()) return false;
        Stmt().args.push_back(std::move(*decoded));
        return true;
      }
      case Ctx::kStmt:
        return Stmt().sql.has_value();
      case Ctx::kRequest: {
        bool has_stmt = (f.seen & (1u << kStmtKey)) != 0;
        bool ok = type_seen_ && has_stmt == (p_.requests.back().type ==
                                             StreamRequest::Type::kExecute);
        type_seen_ = false;
        return ok;
      }
      case Ctx::kRoot:
        done_ = (f.seen & (1u << kRequestsKey)) != 0;
        return done_;
      default:
        return false;
    }
  }

  std::vector<Frame> stack_;
  int key_ = -1;
  bool type_seen_ = false;  // of the request being read
  bool done_ = false;
  json value_;  // the value object being read
  Pipeline p_;
};

// Base64 with its padding restored (Hrana allows it omitted).
std::string Padded(std::string text) {
  while (text.size() % 4 != 0) text += '=';
  return text;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

}  // namespace

Status ProtocolError(const std::string& message, const std::string& code) {
  return Status::InvalidArgument(message, code);
}

const char* TypeName(StreamRequest::Type type) {
  using T = StreamRequest::Type;
  switch (type) {
    case T::kClose:
      return "close";
    case T::kExecute:
      return "execute";
    case T::kBatch:
      return "batch";
    case T::kSequence:
      return "sequence";
    case T::kDescribe:
      return "describe";
    case T::kStoreSql:
      return "store_sql";
    case T::kCloseSql:
      return "close_sql";
    case T::kGetAutocommit:
      return "get_autocommit";
  }
  return "close";
}

Result<json> DecodeValue(const json& v, const std::string& where) {
  auto bad = [&](const std::string& what) { return ProtocolError(where + what, "ARGS_INVALID"); };
  if (!v.is_object()) return bad(": expected a value object ({\"type\": ...})");
  auto type = v.find("type");
  if (type == v.end() || !type->is_string()) return bad(".type: expected a string");
  const std::string& t = type->get_ref<const std::string&>();
  auto value = v.find("value");
  if (t == "null") return json(nullptr);
  if (t == "integer") {
    // A decimal string (Hrana's form); a JSON integer is taken too.
    if (value != v.end() && value->is_number_integer()) {
      if (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(INT64_MAX)) {
        return bad(".value: integer out of SQLite's 64-bit range");
      }
      return json(value->get<int64_t>());
    }
    if (value == v.end() || !value->is_string()) return bad(".value: expected a decimal string");
    const std::string& text = value->get_ref<const std::string&>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec == std::errc::result_out_of_range) {
      return bad(".value: \"" + text.substr(0, 40) + "\" is out of SQLite's 64-bit range");
    }
    if (ec != std::errc() || end != text.data() + text.size()) {
      return bad(".value: \"" + text.substr(0, 40) + "\" is not a decimal integer");
    }
    return json(n);
  }
  if (t == "float") {
    if (value == v.end() || !value->is_number()) return bad(".value: expected a number");
    double d = value->get<double>();
    if (!std::isfinite(d)) return bad(".value: not a finite number");
    return json(d);
  }
  if (t == "text") {
    if (value == v.end() || !value->is_string()) return bad(".value: expected a string");
    return *value;
  }
  if (t == "blob") {
    auto b64 = v.find("base64");
    if (b64 == v.end() || !b64->is_string()) return bad(".base64: expected a string");
    std::string padded = Padded(b64->get<std::string>());
    if (!sql::Base64Decode(padded).ok()) return bad(".base64: not valid base64");
    return json{{"$blob", padded}};
  }
  return bad(".type: unknown value type \"" + t.substr(0, 40) + "\"");
}

Result<Pipeline> DecodePipeline(std::string_view body, int version) {
  FastPipelineSax fast;
  if (json::sax_parse(body, &fast)) {
    if (auto p = fast.Take()) return std::move(*p);
  }
  return DecodePipelineDocument(body, version);
}

Result<Pipeline> DecodePipelineDocument(std::string_view body, int version) {
  auto parsed = http::ParseJsonObject(body);
  if (!parsed.ok())
    return ProtocolError("the body is not a JSON object: " + parsed.status().message());
  return Decoder(version).Pipe(*parsed);
}

json EncodeValue(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return {{"type", "integer"}, {"value", std::to_string(v.get<int64_t>())}};
    case json::value_t::number_float:
      return {{"type", "float"}, {"value", v.get<double>()}};
    case json::value_t::string:
      return {{"type", "text"}, {"value", v}};
    case json::value_t::object:
      if (auto b = v.find("$blob"); b != v.end()) return {{"type", "blob"}, {"base64", *b}};
      break;
    default:
      break;
  }
  return {{"type", "null"}};
}

json EncodeStmtResult(const sql::StatementResult& r, bool want_rows) {
  json cols = json::array();
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const std::string& type = i < r.decltypes.size() ? r.decltypes[i] : "";
    cols.push_back(
        {{"name", r.columns[i]}, {"decltype", type.empty() ? json(nullptr) : json(type)}});
  }
  json rows = json::array();
  if (want_rows) {
    for (const json& row : r.rows) {
      json out = json::array();
      for (const json& v : row) out.push_back(EncodeValue(v));
      rows.push_back(std::move(out));
    }
  }
  return {{"cols", cols},
          {"rows", rows},
          {"affected_row_count", r.rows_affected},
          {"last_insert_rowid", std::to_string(r.last_insert_rowid)},
          {"replication_index", nullptr}};
}

namespace {

// A JSON scalar as nlohmann dumps it (a string's invalid UTF-8 replaced).
void AppendDumped(std::string* out, const json& v) {
  out->append(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

void AppendValue(std::string* out, const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      out->append("{\"type\":\"integer\",\"value\":\"");
      out->append(std::to_string(v.get<int64_t>()));
      out->append("\"}");
      return;
    case json::value_t::number_float:
      out->append("{\"type\":\"float\",\"value\":");
      AppendDumped(out, v);
      out->push_back('}');
      return;
    case json::value_t::string:
      out->append("{\"type\":\"text\",\"value\":");
      AppendDumped(out, v);
      out->push_back('}');
      return;
    case json::value_t::object:
      if (auto b = v.find("$blob"); b != v.end()) {
        out->append("{\"base64\":");
        AppendDumped(out, *b);
        out->append(",\"type\":\"blob\"}");
        return;
      }
      break;
    default:
      break;
  }
  out->append("{\"type\":\"null\"}");
}

void AppendStmtResult(std::string* out, const sql::StatementResult& r, bool want_rows) {
  out->append("{\"affected_row_count\":");
  out->append(std::to_string(r.rows_affected));
  out->append(",\"cols\":[");
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const std::string& type = i < r.decltypes.size() ? r.decltypes[i] : "";
    if (i > 0) out->push_back(',');
    out->append("{\"decltype\":");
    if (type.empty()) {
      out->append("null");
    } else {
      AppendDumped(out, type);
    }
    out->append(",\"name\":");
    AppendDumped(out, r.columns[i]);
    out->push_back('}');
  }
  out->append("],\"last_insert_rowid\":\"");
  out->append(std::to_string(r.last_insert_rowid));
  out->append("\",\"replication_index\":null,\"rows\":[");
  if (want_rows) {
    for (size_t i = 0; i < r.rows.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->push_back('[');
      const json& row = r.rows[i];
      for (size_t j = 0; j < row.size(); ++j) {
        if (j > 0) out->push_back(',');
        AppendValue(out, row[j]);
      }
      out->push_back(']');
    }
  }
  out->append("]}");
}

json EncodeError(const Error& e) { return {{"message", e.message}, {"code", e.code}}; }

Error ErrorFromScript(const sql::ScriptError& e) {
  if (e.sqlite_code != 0) return {e.status.message(), SqliteCodeName(e.sqlite_code)};
  return ErrorFromStatus(e.status);
}

Error ErrorFromStatus(const Status& s) {
  return {s.message(), s.reason().empty() ? "INTERNAL" : Upper(s.reason())};
}

std::string SqliteCodeName(int code) {
  static const std::pair<int, const char*> kNames[] = {
      {SQLITE_CONSTRAINT_CHECK, "SQLITE_CONSTRAINT_CHECK"},
      {SQLITE_CONSTRAINT_FOREIGNKEY, "SQLITE_CONSTRAINT_FOREIGNKEY"},
      {SQLITE_CONSTRAINT_NOTNULL, "SQLITE_CONSTRAINT_NOTNULL"},
      {SQLITE_CONSTRAINT_PRIMARYKEY, "SQLITE_CONSTRAINT_PRIMARYKEY"},
      {SQLITE_CONSTRAINT_TRIGGER, "SQLITE_CONSTRAINT_TRIGGER"},
      {SQLITE_CONSTRAINT_UNIQUE, "SQLITE_CONSTRAINT_UNIQUE"},
      {SQLITE_CONSTRAINT_ROWID, "SQLITE_CONSTRAINT_ROWID"},
      {SQLITE_CONSTRAINT_DATATYPE, "SQLITE_CONSTRAINT_DATATYPE"},
      {SQLITE_BUSY_SNAPSHOT, "SQLITE_BUSY_SNAPSHOT"},
      {SQLITE_ERROR, "SQLITE_ERROR"},
      {SQLITE_INTERNAL, "SQLITE_INTERNAL"},
      {SQLITE_PERM, "SQLITE_PERM"},
      {SQLITE_ABORT, "SQLITE_ABORT"},
      {SQLITE_BUSY, "SQLITE_BUSY"},
      {SQLITE_LOCKED, "SQLITE_LOCKED"},
      {SQLITE_NOMEM, "SQLITE_NOMEM"},
      {SQLITE_READONLY, "SQLITE_READONLY"},
      {SQLITE_INTERRUPT, "SQLITE_INTERRUPT"},
      {SQLITE_IOERR, "SQLITE_IOERR"},
      {SQLITE_CORRUPT, "SQLITE_CORRUPT"},
      {SQLITE_NOTFOUND, "SQLITE_NOTFOUND"},
      {SQLITE_FULL, "SQLITE_FULL"},
      {SQLITE_CANTOPEN, "SQLITE_CANTOPEN"},
      {SQLITE_PROTOCOL, "SQLITE_PROTOCOL"},
      {SQLITE_SCHEMA, "SQLITE_SCHEMA"},
      {SQLITE_TOOBIG, "SQLITE_TOOBIG"},
      {SQLITE_CONSTRAINT, "SQLITE_CONSTRAINT"},
      {SQLITE_MISMATCH, "SQLITE_MISMATCH"},
      {SQLITE_MISUSE, "SQLITE_MISUSE"},
      {SQLITE_AUTH, "SQLITE_AUTH"},
      {SQLITE_RANGE, "SQLITE_RANGE"},
      {SQLITE_NOTADB, "SQLITE_NOTADB"},
  };
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  for (const auto& [c, name] : kNames) {
    if (c == (code & 0xff)) return name;
  }
  return "SQLITE_UNKNOWN";
}

}  // namespace branchdb::server::hrana
