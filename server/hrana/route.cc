#include "server/hrana/route.h"

#include <httplib.h>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "server/hrana/protocol.h"
#include "server/hrana/session.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/router.h"

namespace branchdb::server::hrana {
namespace {

using nlohmann::json;

constexpr const char* kSlashHint =
    "a libSQL URL must end with '/' (http://HOST/libsql/PROJECT/BRANCH/): without it the "
    "client drops the URL's last segment";

void SendHranaError(httplib::Response& res, int status, const Error& e) {
  http::SendJson(res, status, EncodeError(e));
}

void SendStatus(httplib::Response& res, const Status& s) {
  SendHranaError(res, http::HttpStatusFor(s), ErrorFromStatus(s));
}

// The branch a request names, from the router's {branch}: "B/~" is exactly B
// (*exact set); else B.
std::string BranchOf(const std::string& raw, bool* exact) {
  const std::string marker = "/~";
  *exact = raw.size() > marker.size() &&
           raw.compare(raw.size() - marker.size(), marker.size(), marker) == 0;
  return *exact ? raw.substr(0, raw.size() - marker.size()) : raw;
}

// A stream may open on branch: it exists, and no branch "branch/<segment>"
// does (else the URL may be that branch's, cut off by a missing '/').
// Called after auth, so that names are never told to who may not see them.
Status CheckNotCutOff(Services& s, const std::string& project, const std::string& branch) {
  auto child = s.catalog->ChildBranch(project, branch);
  if (!child.ok()) return child.status();
  if (*child) {
    const std::string& name = **child;
    return Status::InvalidArgument(
        "the URL names branch '" + branch + "', but it may be the URL of branch '" + name +
            "' without its trailing '/' (the client then drops the last segment). End the "
            "URL with '/' (.../" + name + "/), or, to mean '" + branch + "' itself, with '/~/' (.../" +
            branch + "/~/)",
        "URL_AMBIGUOUS");
  }
  if (auto row = s.catalog->GetBranchRow(project, branch); !row.ok()) {
    if (row.status().reason() != "branch_not_found") return row.status();
    return Status::NotFound(
        "no branch '" + branch + "' in project " + project + " (" + kSlashHint + ")",
        "branch_not_found");
  }
  return Status::OK();
}

// Who a stream belongs to: the principal's kind and client, and for a
// database credential the credential itself.
std::string OwnerOf(const auth::Principal& p) {
  if (p.kind == auth::Principal::Kind::kDbCredential) return "credential:" + p.jti;
  return "client:" + p.client_id;
}

// Auth as the REST /sql route; a refusal is answered as a Hrana error with
// the bearer challenge kept.
std::optional<auth::Principal> Authorize(Services& s, const httplib::Request& req,
                                         httplib::Response& res, http::RequestContext& ctx,
                                         const std::string& project, const std::string& branch) {
  httplib::Response refusal;
  auto who =
      http::RequireAuth(s, req, refusal, ctx, auth::Operation::kSqlRead, project, branch);
  if (who) return who;
  json body = json::parse(refusal.body, nullptr, false);
  Error e{"unauthenticated", "UNAUTHENTICATED"};
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    e.message = body["error"].value("message", e.message);
    std::string code = body["error"].value("code", std::string("unauthenticated"));
    e = ErrorFromStatus(Status::Unauthenticated(e.message, code));
  }
  SendHranaError(res, refusal.status, e);
  if (refusal.has_header("WWW-Authenticate")) {
    res.set_header("WWW-Authenticate", refusal.get_header_value("WWW-Authenticate"));
  }
  return std::nullopt;
}

// A v3/cursor body, {"baton", "batch": {"steps": [...]}}, as the one-batch
// pipeline it stands for.
Result<Pipeline> DecodeCursorBody(const std::string& text, int version) {
  json body = json::parse(text, nullptr, false);
  if (!body.is_object()) return ProtocolError("the body is not a JSON object");
  json as_pipeline = {
      {"requests", json::array({{{"type", "batch"}, {"batch", body.value("batch", json())}}})}};
  if (body.contains("baton")) as_pipeline["baton"] = body["baton"];
  return DecodePipeline(http::DumpJson(as_pipeline), version);
}

// A cursor's entries (NDJSON lines) for a batch's outcome: per step that ran,
// step_begin, its rows and step_end, or step_error.
std::string CursorEntries(const std::vector<Session::StepOutcome>& steps) {
  std::string out;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Session::StepOutcome& o = steps[i];
    if (!o.ran) continue;
    if (!o.ok) {
      out += http::DumpJson({{"type", "step_error"}, {"step", i}, {"error", EncodeError(o.error)}});
      out += "\n";
      continue;
    }
    json cols = EncodeStmtResult(o.result, false)["cols"];
    out += http::DumpJson({{"type", "step_begin"}, {"step", i}, {"cols", cols}}) + "\n";
    for (const json& row : o.result.rows) {  // written as DumpJson would (keys sorted)
      out += "{\"row\":[";
      for (size_t j = 0; j < row.size(); ++j) {
        if (j > 0) out += ',';
        AppendValue(&out, row[j]);
      }
      out += "],\"type\":\"row\"}\n";
    }
    out += http::DumpJson({{"type", "step_end"},
                           {"affected_row_count", o.result.rows_affected},
                           {"last_insert_rowid", std::to_string(o.result.last_insert_rowid)}});
    out += "\n";
  }
  return out;
}

// POST .../v{version}/pipeline and .../v3/cursor (cursor: the batch's
// entries as NDJSON instead of a pipeline's results).
void HandlePipeline(Services& s, StreamTable& streams, const httplib::Request& req,
                    httplib::Response& res, http::RequestContext& ctx, int version,
                    bool cursor) {
  const std::string project = ctx.Param("project");
  bool exact = false;
  const std::string branch = BranchOf(ctx.Param("branch"), &exact);
  auto who = Authorize(s, req, res, ctx, project, branch);
  if (!who) return;
  auto decoded = cursor ? DecodeCursorBody(req.body, version) : DecodePipeline(req.body, version);
  if (!decoded.ok()) return SendStatus(res, decoded.status());
  Pipeline pipeline = std::move(*decoded);
  if (!pipeline.baton && !exact) {
    if (Status st = CheckNotCutOff(s, project, branch); !st.ok()) return SendStatus(res, st);
  }
  const std::string owner = OwnerOf(*who);
  auto stream = pipeline.baton ? streams.Checkout(*pipeline.baton, project, branch, owner)
                               : streams.Open(project, branch, owner);
  if (!stream.ok()) return SendStatus(res, stream.status());
  // Whatever happens below (an exception included), the stream goes back:
  // closed unless this request returns it with a new baton.
  struct Checkin {
    StreamTable& table;
    std::shared_ptr<Stream> stream;
    bool returned = false;
    ~Checkin() {
      if (!returned) table.Return(stream, true);
    }
  } checkin{streams, *stream};
  Caller caller;
  caller.client_id = who->client_id;
  caller.request_id = ctx.request_id;
  caller.read_only = http::SqlWriteRefusal(s, *who, project, branch).has_value();
  std::string results;  // the pipeline's results, JSON text
  std::string out;
  bool closed = false;
  {
    Session session(s, **stream, caller);
    if (cursor) {
      out = CursorEntries(session.RunBatch(pipeline.requests[0].steps));
    } else {
      for (const StreamRequest& r : pipeline.requests) {
        if (!results.empty()) results += ',';
        session.RunInto(r, &results);
      }
    }
    closed = session.closed();
    session.Finish();
    // No answer before what the pipeline saw and committed is durable.
    if (Status durable = session.WaitDurable(); !durable.ok()) {
      checkin.returned = true;
      streams.Return(*stream, true);
      return http::SendError(res, durable.WithContext("the pipeline's commits are not durable"));
    }
  }
  checkin.returned = true;
  std::string baton = streams.Return(*stream, closed);
  // Written as nlohmann would dump the document (keys sorted).
  std::string head = "{\"base_url\":null,\"baton\":";
  head += baton.empty() ? "null" : http::DumpJson(baton);
  res.status = 200;
  if (cursor) {
    res.set_content(head + "}\n" + out, "text/plain");
    return;
  }
  head += ",\"results\":[";
  head += results;
  head += "]}";
  res.set_content(head, "application/json");
}

}  // namespace

void RegisterHranaRoutes(http::Router& router, Services& services, StreamTable* streams) {
  http::RouteOptions sql;
  sql.admission = true;
  for (int version : {2, 3}) {
    const std::string v = "v" + std::to_string(version);
    router.Add("POST", "/libsql/{project}/{branch}/" + v + "/pipeline", sql,
               [&services, streams, version](const httplib::Request& req, httplib::Response& res,
                                             http::RequestContext& ctx) {
                 HandlePipeline(services, *streams, req, res, ctx, version, false);
               });
    router.Add("GET", "/libsql/{project}/{branch}/" + v, {},
               [](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
                 res.status = 200;
                 res.set_content("", "text/plain");
               });
  }
  router.Add("POST", "/libsql/{project}/{branch}/v3/cursor", sql,
             [&services, streams](const httplib::Request& req, httplib::Response& res,
                                  http::RequestContext& ctx) {
               HandlePipeline(services, *streams, req, res, ctx, 3, true);
             });
  // A one-segment branch's URL that lost its '/': the branch part is gone.
  for (const char* path : {"/libsql/{project}/v2/pipeline", "/libsql/{project}/v3/pipeline"}) {
    router.Add("POST", path, {},
               [](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
                 SendHranaError(
                     res, 404,
                     {std::string("the URL names no branch: ") + kSlashHint, "URL_NO_BRANCH"});
               });
  }
}

}  // namespace branchdb::server::hrana
