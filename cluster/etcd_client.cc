// See etcd_client.h. The gateway's JSON follows the protobuf JSON mapping:
// bytes are base64, int64 are strings, and fields at their zero value are
// left out (an expired lease's keepalive answer has no "TTL"; a failed txn
// has no "succeeded").
#include "cluster/etcd_client.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <thread>

namespace branchdb::cluster {
namespace {

using nlohmann::json;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string B64(const std::string& in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {kB64[n >> 18], kB64[(n >> 12) & 63], kB64[(n >> 6) & 63], kB64[n & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += {kB64[n >> 18], kB64[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kB64[n >> 18], kB64[(n >> 12) & 63], kB64[(n >> 6) & 63], '='};
  }
  return out;
}

std::optional<std::string> UnB64(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kB64, c);
    if (p == nullptr || c == '\0') return std::nullopt;
    acc = (acc << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// An int64 field: a string ("42"), a number, or absent (0).
int64_t Int(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

std::string Bytes(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return "";
  return UnB64(it->get<std::string>()).value_or("");
}

std::vector<KeyValue> KeyValues(const json& j) {
  std::vector<KeyValue> out;
  auto it = j.find("kvs");
  if (it == j.end() || !it->is_array()) return out;
  for (const json& kv : *it) {
    out.push_back({Bytes(kv, "key"), Bytes(kv, "value"), Int(kv, "create_revision"),
                   Int(kv, "mod_revision"), Int(kv, "version"), Int(kv, "lease")});
  }
  return out;
}

int64_t Revision(const json& j) {
  auto it = j.find("header");
  return it == j.end() ? 0 : Int(*it, "revision");
}

Result<json> Parse(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Unavailable("etcd: unreadable answer", "etcd_unavailable");
  }
  return j;
}

json RangeRequest(const std::string& key, bool prefix) {
  json r = {{"key", B64(key)}};
  if (prefix) r["range_end"] = B64(PrefixEnd(key));
  return r;
}

json OpJson(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::kPut: {
      json put = {{"key", B64(op.key)}, {"value", B64(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case TxnOp::Kind::kDelete:
      return {{"request_delete_range", RangeRequest(op.key, op.prefix)}};
    case TxnOp::Kind::kRange:
      return {{"request_range", RangeRequest(op.key, op.prefix)}};
  }
  return {};
}

json CompareJson(const Compare& c) {
  static const char* kOps[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  json j = {{"key", B64(c.key)}, {"result", kOps[static_cast<int>(c.op)]}};
  switch (c.target) {
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = B64(c.value);
      break;
  }
  return j;
}

}  // namespace

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return Status::InvalidArgument("etcd: no endpoint given", "invalid_config");
  }
  for (const std::string& e : options.endpoints) {
    if (e.rfind("http://", 0) != 0 || e.size() <= 7) {
      return Status::InvalidArgument("etcd: endpoint " + e + " is not http://HOST:PORT",
                                     "invalid_config");
    }
  }
  if (options.attempts < 1) options.attempts = 1;
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options)));
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}
EtcdClient::~EtcdClient() = default;

// An etcd error comes back as a 4xx/5xx whose JSON body is
// {"error","message","code"} (a gRPC code): a lease that is gone ("requested
// lease not found", code 5), a malformed transaction. Not worth retrying,
// except code 14 (UNAVAILABLE: no leader yet).
static Status EtcdError(int http_status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  std::string message = j.is_object() && j.contains("message") && j["message"].is_string()
                            ? j["message"].get<std::string>()
                            : "HTTP " + std::to_string(http_status);
  if (message.find("lease not found") != std::string::npos) {
    return Status::NotFound("etcd: " + message, "etcd_lease_not_found");
  }
  if (j.is_object() && Int(j, "code") == 14) {
    return Status::Unavailable("etcd: " + message, "etcd_unavailable");
  }
  return Status::FailedPrecondition("etcd: " + message, "etcd_error");
}

Result<std::string> EtcdClient::Call(const std::string& path, const std::string& body) {
  std::string last_error;
  const size_t n = options_.endpoints.size();
  for (int attempt = 0; attempt < options_.attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
    const std::string& endpoint = options_.endpoints[static_cast<size_t>(attempt) % n];
    httplib::Client client(endpoint);
    const time_t sec = options_.timeout_ms / 1000;
    const time_t usec = (options_.timeout_ms % 1000) * 1000;
    client.set_connection_timeout(sec, usec);
    client.set_read_timeout(sec, usec);
    client.set_write_timeout(sec, usec);
    // The gateway sends its errors chunked with a trailer
    // (Grpc-Trailer-Content-Type), which cpp-httplib 0.11 cannot read: the
    // call fails after the body has arrived. So status and body are taken as
    // they come, and a whole JSON body counts as an answer.
    httplib::Request out;
    out.method = "POST";
    out.path = path;
    out.body = body;
    out.set_header("Content-Type", "application/json");
    int status = 0;
    std::string answer;
    out.response_handler = [&status](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    out.content_receiver = [&answer](const char* data, size_t len, uint64_t, uint64_t) {
      answer.append(data, len);
      return true;
    };
    auto res = client.send(out);
    if (!res && (status == 0 || !json::accept(answer))) {
      last_error = endpoint + ": " + httplib::to_string(res.error());
      continue;
    }
    if (status == 200) return answer;
    Status error = EtcdError(status, answer);
    if (error.code() != StatusCode::kUnavailable && json::accept(answer)) return error;
    last_error = endpoint + ": HTTP " + std::to_string(status) + " " + error.message();
  }
  return Status::Unavailable("etcd unreachable (" + last_error + ")", "etcd_unavailable");
}

Result<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  auto text = Call("/v3/kv/range", RangeRequest(key, false).dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  auto kvs = KeyValues(*j);
  if (kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(kvs.front()));
}

Result<RangeResult> EtcdClient::RangePrefix(const std::string& prefix) {
  auto text = Call("/v3/kv/range", RangeRequest(prefix, true).dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  return RangeResult{KeyValues(*j), Revision(*j)};
}

Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  json body = {{"key", B64(key)}, {"value", B64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  auto text = Call("/v3/kv/put", body.dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  return Revision(*j);
}

Result<int64_t> EtcdClient::Delete(const std::string& key, bool prefix) {
  auto text = Call("/v3/kv/deleterange", RangeRequest(key, prefix).dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  return Int(*j, "deleted");
}

Result<TxnResult> EtcdClient::Txn(const std::vector<Compare>& compares,
                                  const std::vector<TxnOp>& success,
                                  const std::vector<TxnOp>& failure) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const Compare& c : compares) body["compare"].push_back(CompareJson(c));
  for (const TxnOp& op : success) body["success"].push_back(OpJson(op));
  for (const TxnOp& op : failure) body["failure"].push_back(OpJson(op));
  auto text = Call("/v3/kv/txn", body.dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  TxnResult out;
  out.succeeded = j->value("succeeded", false);
  out.revision = Revision(*j);
  auto responses = j->find("responses");
  if (responses != j->end() && responses->is_array()) {
    for (const json& r : *responses) {
      auto range = r.find("response_range");
      out.ranges.push_back(range == r.end() ? std::vector<KeyValue>() : KeyValues(*range));
    }
  }
  return out;
}

Result<EtcdClient::Lease> EtcdClient::LeaseGrant(int64_t ttl_seconds) {
  auto text = Call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_seconds)}}.dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  Lease lease{Int(*j, "ID"), Int(*j, "TTL")};
  if (lease.id == 0) {
    std::string error = j->value("error", std::string("no lease id in the answer"));
    return Status::Unavailable("etcd: lease grant failed: " + error, "etcd_unavailable");
  }
  return lease;
}

Result<int64_t> EtcdClient::LeaseKeepAlive(int64_t id) {
  // A stream in gRPC; through the gateway one request gets one answer.
  auto text = Call("/v3/lease/keepalive", json{{"ID", std::to_string(id)}}.dump());
  if (!text.ok()) return text.status();
  auto j = Parse(*text);
  if (!j.ok()) return j.status();
  auto result = j->find("result");
  if (result == j->end() || !result->is_object()) {
    return Status::Unavailable("etcd: keepalive answered no result", "etcd_unavailable");
  }
  int64_t ttl = Int(*result, "TTL");
  if (ttl <= 0) return Status::NotFound("etcd: lease expired", "etcd_lease_not_found");
  return ttl;
}

Status EtcdClient::LeaseRevoke(int64_t id) {
  auto text = Call("/v3/lease/revoke", json{{"ID", std::to_string(id)}}.dump());
  if (!text.ok() && text.status().reason() != "etcd_lease_not_found") return text.status();
  return Status::OK();
}

}  // namespace branchdb::cluster
