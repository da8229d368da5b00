// Context (settings, SDK client, output, errors with hints) and the small
// CLI11 helpers shared by every subcommand.
#include <iostream>
#include <sstream>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

// 401 and 403, and the token endpoint's refusals of the client (RFC 6749
// answers invalid_client with 400 when the credentials came in the form).
bool IsAuthError(const bdb::Error& e) {
  if (!e.IsApi()) return false;
  if (e.http_status() == 401 || e.http_status() == 403) return true;
  const std::string& c = e.code();
  return e.http_status() == 400 && (c == "invalid_client" || c == "unauthorized_client");
}

int ExitCodeFor(const bdb::Error& e) {
  // The sandbox refusing the SQL itself (BEGIN, ATTACH...): the script is the
  // cause, not the credentials (read_only stays an authorization refusal).
  if (e.IsApi() && e.code() == "sql_forbidden") return kExitApiError;
  if (IsAuthError(e)) return kExitAuth;
  switch (e.kind()) {
    case bdb::ErrorKind::kNetwork:
      return kExitUnreachable;
    case bdb::ErrorKind::kInvalidArgument:
      return kExitUsage;
    case bdb::ErrorKind::kApi:
      switch (e.http_status()) {
        case 404:
          return kExitNotFound;
        case 409:
          return kExitConflict;
        default:
          return kExitApiError;
      }
    default:
      return kExitApiError;
  }
}

std::string DetailString(const Json& details, const char* key) {
  if (!details.is_object() || !details.contains(key)) return "";
  return Cell(details[key]);
}

// "; it failed at statement N: <its text>" (N from 1, as the server's message
// counts) when the error names the statement, else "".
std::string FailedStatement(const Json& d) {
  if (!d.is_object() || !d.contains("statement") || !d["statement"].is_number_integer()) return "";
  std::string out = "; it failed at statement " + std::to_string(d["statement"].get<int64_t>() + 1);
  if (d.contains("sql") && d["sql"].is_string()) out += ": " + d["sql"].get<std::string>();
  return out;
}

// The hint for a 403: the mode, the sandbox or the scope that refused.
std::string HintForbidden(const std::string& code, const Json& d, const Settings& s) {
  if (code == "read_only") {
    return "this ran read-only (--read-only, a read credential, or a client without "
           "sql:write)";
  }
  if (code == "sql_forbidden") {
    return "the SQL sandbox refuses BEGIN/COMMIT/SAVEPOINT (a script already runs as one "
           "transaction), ATTACH, VACUUM, load_extension() and PRAGMAs off its allow-list "
           "(docs/api.md, SQL)" +
           FailedStatement(d);
  }
  if (!DetailString(d, "scope").empty()) {
    return "the client lacks the scope " + DetailString(d, "scope") +
           "; an admin can create a client that has it: branchdb client create --scopes '" +
           DetailString(d, "scope") + " ...'";
  }
  return "the client may lack a scope or access to this project (see `branchdb client "
         "list` as an admin)";
}

// The hint for a 404: how to list what exists.
std::string HintNotFound(const std::string& code, const Json& d, const Settings& s) {
  if (code == "project_not_found") {
    return "list projects with `branchdb project list`; create one with `branchdb project "
           "create NAME`";
  }
  if (code == "branch_not_found") return "list branches with `branchdb branch list`";
  if (code == "checkpoint_not_found" || code == "label_not_found") {
    return "list checkpoints with `branchdb checkpoints BRANCH`";
  }
  if (code == "client_not_found") return "list clients with `branchdb client list`";
  if (code == "route_not_found") {
    return "is " + s.url + " a branchdb server of this version?";
  }
  return "";
}

// The hint for a 409: what the conflict means and the way out.
std::string HintConflict(const std::string& code, const Json& d, const Settings& s) {
  if (code == "project_exists" || code == "branch_exists") {
    return "pick another name, or delete the existing one first";
  }
  if (code == "branch_protected") {
    return "unprotect it first (`branchdb branch unprotect NAME`), or for a project "
           "`branchdb project delete NAME --force`";
  }
  if (code == "outside_restore_window") {
    return "that state is older than the project's restore window; widen it for the "
           "future with `branchdb project set --restore-window 30d`";
  }
  if (code == "parent_moved") {
    return "the parent moved since the branch point: `branchdb promote BRANCH --mode "
           "auto` replays the branch's actions instead";
  }
  if (code == "concurrent_write" || code == "head_moved" || code == "idempotency_key_in_use") {
    return "someone else wrote at the same time: retry (promote: --on-conflict retry)";
  }
  if (code == "replay_failed" && d.contains("failed_action")) {
    const Json& f = d["failed_action"];
    return "replaying action lsn " + Str(f, "lsn") + " (" + Str(f, "summary") +
           ") failed: " + (f.contains("error") ? Str(f["error"], "message") : "") +
           "; fix the branch (or re-branch from the parent) and promote again";
  }
  if (code == "verify_failed") {
    return "the --verify query answered " + DetailString(d, "value") + "; nothing was promoted";
  }
  if (code == "not_replayable") {
    return "action lsn " + DetailString(d, "lsn") + " (" + DetailString(d, "summary") +
           ") has no recorded script (e.g. an import) and cannot be replayed";
  }
  if (code == "no_parent") return "the project's root branch has no parent";
  return "";
}

// What to try next, for the errors a user can act on ("" when nothing useful).
std::string HintFor(const bdb::Error& e, const Settings& s) {
  const std::string& code = e.code();
  const Json& d = e.details();
  if (e.IsNetwork()) {
    if (e.network_reason() == bdb::NetworkReason::kTls) {
      return "the TLS handshake with " + s.url +
             " failed: check the URL's scheme and the "
             "server's certificate";
    }
    return "is `branchdb serve` running at " + s.url +
           "? Start one with `branchdb serve`, or "
           "point --url / BRANCHDB_URL at the server";
  }
  if (!e.IsApi()) return "";
  if (IsAuthError(e) && e.http_status() != 403) {
    return "check BRANCHDB_CLIENT_ID/BRANCHDB_CLIENT_SECRET or BRANCHDB_TOKEN (credentials "
           "used: " +
           (s.credentials_from.empty() ? std::string("none") : s.credentials_from) +
           "; a token expires, `branchdb token` prints a fresh one); for a local server, "
           "--data-dir pointing at the server's data dir";
  }
  switch (e.http_status()) {
    case 403:
      return HintForbidden(code, d, s);
    case 404:
      return HintNotFound(code, d, s);
    case 409:
      return HintConflict(code, d, s);
    case 400:
      if (code == "sql_error" && d.contains("statement")) {
        return "nothing of the script was applied" + FailedStatement(d);
      }
      return "";
    case 408:
      return "the script ran longer than the server's statement_timeout_ms; it was rolled back";
    case 429:
    case 503:
      return "the server is busy: retry in a moment";
    default:
      return "";
  }
}

}  // namespace

bool Context::Init() {
  std::string error;
  if (!ResolveSettings(globals_.flags, ProcessEnv, &settings_, &error)) {
    Usage(error, "see `branchdb --help` and docs/cli.md, Settings");
    return false;
  }
  return true;
}

std::string Context::Project(const std::string& given) {
  if (!given.empty()) return given;
  if (!settings_.project.empty()) return settings_.project;
  Usage("no project given",
        "pass --project NAME, set BRANCHDB_PROJECT, or put project = \"NAME\" in the config "
        "file; `branchdb project list` lists them");
  return "";
}

bdb::Client* Context::Client() {
  if (client_) return client_.get();
  const Settings& s = settings_;
  // The URL first: a malformed one is a usage error whatever the credentials.
  bdb::ClientOptions o;
  o.url = s.url;
  o.token = s.token;
  o.client_id = s.client_id;
  o.client_secret = s.client_secret;
  o.user_agent = std::string("branchdb-cli/") + bdb::Version();
  o.retry.retry_connect_errors = false;  // no server there: say so at once
  auto c = bdb::Client::Create(std::move(o));
  if (!c.ok()) {
    client_failure_ = Fail(c.error());
    return nullptr;
  }
  if (s.token.empty() && s.client_id.empty()) {
    std::cerr << "error: no credentials\n"
              << "hint: set BRANCHDB_CLIENT_ID and BRANCHDB_CLIENT_SECRET (or BRANCHDB_TOKEN), "
                 "pass --client-id/--client-secret or --token, or for a local server "
                 "--data-dir pointing at the server's data dir (no "
              << s.data_dir << "/admin-credentials.json found)\n";
    if (json()) {
      std::cout << Json{{"error",
                         {{"code", "no_credentials"},
                          {"message", "no credentials"},
                          {"details", Json::object()}}}}
                       .dump()
                << "\n";
    }
    client_failure_ = kExitAuth;
    return nullptr;
  }
  client_ = std::move(c.value());
  return client_.get();
}

int Context::Print(const Json& answer, const std::function<void(std::ostream&)>& human) {
  if (json()) {
    std::cout << answer.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    human(std::cout);
  }
  std::cout.flush();
  return std::cout ? kExitOk : kExitApiError;
}

int Context::Fail(const bdb::Error& e) {
  std::string message = e.message();
  if (e.IsApi()) {
    message += " (" + e.code() + ", HTTP " + std::to_string(e.http_status()) + ")";
  } else if (e.IsNetwork() && message.find(settings_.url) == std::string::npos) {
    message = "cannot reach " + settings_.url + ": " + message;
  }
  std::cerr << "error: " << message << "\n";
  std::string hint = HintFor(e, settings_);
  if (!hint.empty()) std::cerr << "hint: " << hint << "\n";
  if (json()) {
    Json details = e.details();
    if (!details.is_object()) details = Json::object();
    // No answer: how many times it was tried (a refused connection: once).
    if (e.IsNetwork() && e.attempts() > 0) details["attempts"] = e.attempts();
    std::cout << Json{{"error",
                       {{"code", e.code()}, {"message", e.message()}, {"details", details}}}}
                     .dump(-1, ' ', false, Json::error_handler_t::replace)
              << "\n";
  }
  return ExitCodeFor(e);
}

int Context::Usage(const std::string& message, const std::string& hint) {
  std::cerr << "error: " << message << "\n";
  if (!hint.empty()) std::cerr << "hint: " << hint << "\n";
  return kExitUsage;
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [k, v] : fields) width = std::max(width, k.size());
  for (const auto& [k, v] : fields) out << k << std::string(width - k.size() + 2, ' ') << v << "\n";
}

void Commands::AddForClient(CLI::App* leaf, std::function<int(Context&, bdb::Client*)> action) {
  Add(leaf, [action = std::move(action)](Context& ctx) {
    bdb::Client* c = ctx.Client();
    return c ? action(ctx, c) : ctx.ClientFailure();
  });
}

void Commands::AddForProject(
    CLI::App* leaf, std::function<int(Context&, bdb::Client*, const std::string&)> action) {
  Add(leaf, [action = std::move(action)](Context& ctx) {
    std::string project = ctx.Project();
    if (project.empty()) return int(kExitUsage);
    bdb::Client* c = ctx.Client();
    return c ? action(ctx, c, project) : ctx.ClientFailure();
  });
}

const Commands::Command* Commands::Parsed() const {
  for (const Command& c : commands_) {
    if (c.leaf->parsed()) return &c;
  }
  return nullptr;
}

CLI::App* AddCommand(CLI::App& parent, const std::string& name, const std::string& description,
                     const std::vector<std::string>& examples) {
  CLI::App* app = parent.add_subcommand(name, description);
  std::string footer = examples.size() == 1 ? "Example:\n" : "Examples:\n";
  for (const std::string& e : examples) footer += "  " + e + "\n";
  footer += "Global flags (--url, --project, --json, ...): branchdb --help. Docs: docs/cli.md.";
  app->footer(footer);
  return app;
}

CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, int64_t* seconds,
                               const std::string& description) {
  return app
      ->add_option_function<std::string>(
          name,
          [seconds](const std::string& v) {
            auto d = ParseDuration(v);
            if (!d) {
              throw CLI::ValidationError(
                  "duration", "\"" + v + "\": expected e.g. 30s, 15m, 24h, 7d, 1h30m or seconds");
            }
            *seconds = *d;
          },
          description)
      ->type_name("DURATION");
}

}  // namespace branchdb::cli
