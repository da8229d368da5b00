// postgres_bench: branchdb against PostgreSQL, side by side in the same run
// (issue #20). Both servers are separate processes on 127.0.0.1 and are
// driven by the same C++ client harness: cpp-httplib keep-alive clients for
// branchdb (`branchdb serve`, started here on a scratch directory), libpq
// connections for Postgres (a throwaway cluster with its defaults — fsync on,
// synchronous_commit on — started by scripts/bench.sh, which passes its
// conninfo in BRANCHDB_BENCH_PG and its postmaster's pid in
// BRANCHDB_BENCH_PG_PID). The workloads run in alternating rounds (branchdb
// first in odd rounds, Postgres first in even ones); a figure is the median
// of the rounds:
//   - point SELECT by primary key (100,000 rows), 1, 2, 4 and 8 clients
//     (branchdb: POST .../sql {"sql":"SELECT v FROM t WHERE id = ?"}; Postgres:
//     the same statement prepared once per connection);
//   - durable single-row INSERT, 1, 2, 4 and 8 clients on one database/branch,
//     and 8 clients on 8 databases/branches (one each);
//   - server CPU per request of each of those runs: utime + stime from
//     /proc/PID/stat over the measured run (branchdb: its process; Postgres:
//     the postmaster and every process it started: backends, WAL writer,
//     checkpointer, ...), divided by the requests answered, and its user and
//     system (kernel) parts apart (the metric's user_us and system_us);
//   - client CPU per request of each run: this process's user + system time
//     (getrusage) over the measured run, divided by the requests answered:
//     what the harness's own loop costs (cpp-httplib's Client for branchdb,
//     libpq for Postgres), on the same cores as the server;
//   - copies at 10 MB and 100 MB (1 GB with BRANCHDB_BENCH_PG_1GB=1: filling
//     and copying it takes minutes): branch creation against CREATE DATABASE
//     ... TEMPLATE with STRATEGY WAL_LOG and FILE_COPY, and the drop of each;
//   - undo of the last 3 actions: a rollback of the branch by 3 actions,
//     against what a Postgres user has instead: restore a copy taken before
//     them (DROP DATABASE, CREATE DATABASE ... TEMPLATE the copy, FILE_COPY).
// Every figure carries the 1-minute load average at its measurement
// ("load1"). Environment: BRANCHDB_BENCH_SECONDS (seconds per run, default 3),
// BRANCHDB_BENCH_ROUNDS (default 3), BRANCHDB_BENCH_PG_1GB, BRANCHDB_BENCH_DIR
// (bench_util.h), BRANCHDB_BENCH_PG_REQUESTS_ONLY=1 (the request figures
// only, no copies), BRANCHDB_BENCH_BINARY (default: the build's bin/branchdb),
// BRANCHDB_BENCH_BEFORE_BINARY (an earlier build's `branchdb`: its request
// figures too, in the same rounds, as *_vs_before metrics),
// BRANCHDB_BENCH_LOG_LEVEL (the server's log level, default `info`, the
// documented default: an access-log line per request, written to
// <scratch>/<name>.log).
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

#ifndef BRANCHDB_BINARY
#define BRANCHDB_BINARY "branchdb"
#endif

namespace branchdb::bench {
namespace {

using nlohmann::json;

constexpr char kProgram[] = "postgres_bench";
constexpr int64_t kRows = 100000;
constexpr char kSelect[] = "SELECT v FROM t WHERE id = ?";
constexpr char kInsert[] = "INSERT INTO w(v) VALUES (?)";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", kProgram, what.c_str());
  std::exit(1);
}

double Load1() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

// utime + stime of pid in seconds, and of every live process whose parent it
// is when with_children.
// CPU seconds, user and system (kernel) apart.
struct CpuTimes {
  double user = 0;
  double system = 0;
  CpuTimes operator-(const CpuTimes& o) const { return {user - o.user, system - o.system}; }
  CpuTimes& operator+=(const CpuTimes& o) {
    user += o.user;
    system += o.system;
    return *this;
  }
};

CpuTimes ProcessCpuSeconds(pid_t pid, bool with_children) {
  auto read = [](const std::string& path, pid_t* ppid) -> std::optional<CpuTimes> {
    std::ifstream f(path);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    size_t close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream in(text.substr(close + 2));
    std::string field;
    std::vector<std::string> v;
    while (in >> field) v.push_back(field);
    if (v.size() < 13) return std::nullopt;
    // After "pid (comm) ": state(3) ppid(4) ... utime(14) stime(15).
    if (ppid != nullptr) *ppid = static_cast<pid_t>(std::stol(v[1]));
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return CpuTimes{std::stod(v[11]) / tick, std::stod(v[12]) / tick};
  };
  std::optional<CpuTimes> total = read("/proc/" + std::to_string(pid) + "/stat", nullptr);
  if (!total) Die("cannot read /proc/" + std::to_string(pid) + "/stat");
  if (!with_children) return *total;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    pid_t ppid = 0;
    std::optional<CpuTimes> t = read(std::string("/proc/") + e->d_name + "/stat", &ppid);
    if (t && ppid == pid) *total += *t;
  }
  closedir(d);
  return *total;
}

// User + system CPU seconds of this process (every thread) so far.
double ClientCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// A port free on 127.0.0.1 now: bind :0, note it, release it.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("no free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---- the systems ------------------------------------------------------------

// One client connection of a system: runs one request, checked; false (with
// *error set) when it failed.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual bool One(std::mt19937_64& rng, std::string* error) = 0;
};

// Branchdb only, for BRANCHDB_BENCH_PROFILE: kHealth (GET /healthz), the HTTP
// layer's floor, a request that runs no SQL and checks no token;
// kSelectOwnBranch, the point SELECT with each client on a branch of its own
// (w<i>, a child of production), whose compute no other client waits for;
// kHranaSelect, the same SELECT as the Hrana pipeline @libsql/client posts
// (execute + close, POST /libsql/bench/production/v2/pipeline).
enum class Load { kSelect, kInsert, kInsertOwnDb, kHealth, kSelectOwnBranch, kHranaSelect };

const char* LoadName(Load l) {
  return l == Load::kSelect   ? "point_select"
         : l == Load::kInsert ? "insert_one_db"
         : l == Load::kHealth ? "healthz"
         : l == Load::kSelectOwnBranch ? "point_select_own_branch"
         : l == Load::kHranaSelect ? "hrana_select"
                              : "insert_own_db";
}

class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  // A worker for client i of `clients` running load.
  virtual std::unique_ptr<Worker> NewWorker(Load load, int i) = 0;
  // CPU seconds the server has used so far.
  virtual CpuTimes ServerCpu() = 0;
};

// branchdb: `branchdb serve` in a child process.
class Branchdb : public System {
 public:
  // binary: the `branchdb` to run; name: how the figures call it.
  Branchdb(const std::string& dir, const std::string& bin, std::string name)
      : name_(std::move(name)) {
    port_ = FreePort();
    const std::string data = dir + "/" + name_;
    pid_ = fork();
    if (pid_ == 0) {
      setenv("BRANCHDB_LISTEN", ("127.0.0.1:" + std::to_string(port_)).c_str(), 1);
      setenv("BRANCHDB_DATA_DIR", data.c_str(), 1);
      // The documented default level (an access-log line per request), into a
      // file in the scratch directory as an operator's would go: stdout is the
      // bench's JSON lines. BRANCHDB_BENCH_LOG_LEVEL overrides it.
      const char* level = std::getenv("BRANCHDB_BENCH_LOG_LEVEL");
      setenv("BRANCHDB_LOG_LEVEL", level != nullptr && *level != 0 ? level : "info", 1);
      const int log = open((data + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log < 0 || dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0) _exit(126);
      close(log);
      setenv("BRANCHDB_IDLE_TIMEOUT_SECONDS", "0", 1);
      setenv("BRANCHDB_STATEMENT_TIMEOUT_MS", "600000", 1);  // the copies' fills
      setenv("BRANCHDB_MAX_BRANCH_BYTES", std::to_string(4ll << 30).c_str(), 1);
      setenv("BRANCHDB_MAX_REQUEST_BYTES", std::to_string(64ll << 20).c_str(), 1);
      execl(bin.c_str(), bin.c_str(), "serve", static_cast<char*>(nullptr));
      std::fprintf(stderr, "%s: exec %s failed\n", kProgram, bin.c_str());
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::ifstream f(data + "/admin-credentials.json");
      json c = json::parse(f, nullptr, false);
      if (c.is_object() && c["client_secret"].is_string() && Healthy()) {
        admin_ = Token(c["client_id"], c["client_secret"]);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) Die("branchdb serve exited at start");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Die("branchdb serve did not start");
  }
  ~Branchdb() override {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  std::string name() const override { return name_; }
  pid_t pid() const { return pid_; }
  CpuTimes ServerCpu() override { return ProcessCpuSeconds(pid_, false); }

  std::unique_ptr<httplib::Client> Client(const std::string& token) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_read_timeout(600, 0);
    if (!token.empty()) c->set_bearer_token_auth(token.c_str());
    return c;
  }
  // method "POST"/"DELETE" path with body; dies unless the status is want.
  json Call(const std::string& method, const std::string& path, const json& body, int want) {
    auto c = Client(admin_);
    auto r = method == "DELETE" ? c->Delete(path.c_str())
                                : c->Post(path.c_str(), body.dump(), "application/json");
    if (!r || r->status != want) {
      Die(method + " " + path + ": " +
          (r ? std::to_string(r->status) + " " + r->body.substr(0, 300)
             : httplib::to_string(r.error())));
    }
    return json::parse(r->body, nullptr, false);
  }
  json Sql(const std::string& project, const std::string& branch, const std::string& sql) {
    return Call("POST", "/v1/projects/" + project + "/branches/" + branch + "/sql", {{"sql", sql}},
                200);
  }

  // The tables of the request workloads: project "bench", t (kRows rows) and
  // w on production, branches w0..w7 for the one-branch-per-client inserts,
  // and an OAuth client (token) per client.
  void Setup() {
    Call("POST", "/v1/projects", {{"name", "bench"}}, 201);
    Sql("bench", "production",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
        "CREATE TABLE w(id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<" +
            std::to_string(kRows) +
            ") INSERT INTO t SELECT i, 'value-' || i || '-' || hex(randomblob(12)) FROM n");
    for (int i = 0; i < 8; ++i) {
      Call("POST", "/v1/projects/bench/branches",
           {{"name", "w" + std::to_string(i)}, {"parent", "production"}}, 201);
      json c = Call("POST", "/v1/clients",
                    {{"name", "bench" + std::to_string(i)},
                     {"scopes", json::array({"sql:read", "sql:write"})}},
                    201);
      tokens_.push_back(Token(c["client_id"], c["client_secret"]));
    }
  }

  std::unique_ptr<Worker> NewWorker(Load load, int i) override {
    // As lean as httplib's Client allows: one keep-alive Client per worker
    // (TCP_NODELAY), the Authorization header built once, the body written
    // into a buffer the worker keeps, the answer checked as text (no JSON
    // document): a SELECT must return the row of its key ("value-<k>-..."),
    // an INSERT must report one row.
    class HttpWorker : public Worker {
     public:
      HttpWorker(std::unique_ptr<httplib::Client> c, std::string path, const std::string& token,
                 Load load)
          : c_(std::move(c)),
            path_(std::move(path)),
            headers_{{"Authorization", "Bearer " + token}},
            load_(load) {}
      bool One(std::mt19937_64& rng, std::string* error) override {
        if (load_ == Load::kHealth) return Check(c_->Get("/healthz", headers_), "\"ok\"", error);
        const std::string k = std::to_string(static_cast<int64_t>(rng() % kRows) + 1);
        if (load_ == Load::kHranaSelect) {
          body_.assign(R"({"requests":[{"type":"execute","stmt":{"sql":")").append(kSelect);
          body_.append(R"(","args":[{"type":"integer","value":")").append(k);
          body_.append(R"("}],"named_args":[],"want_rows":true}},{"type":"close"}]})");
          want_.assign("\"value\":\"value-").append(k).append("-");
          return Check(c_->Post(path_.c_str(), headers_, body_, "application/json"), want_, error);
        }
        body_.assign(R"({"sql":")");
        if (load_ == Load::kSelect) {
          body_.append(kSelect).append(R"(","params":[)").append(k).append("]}");
          want_.assign("\"rows\":[[\"value-").append(k).append("-");
        } else {
          body_.append(kInsert).append(R"(","params":["row-)").append(k).append("\"]}");
          want_.assign("\"rows_affected\":1");
        }
        return Check(c_->Post(path_.c_str(), headers_, body_, "application/json"), want_, error);
      }

     private:
      static bool Check(const httplib::Result& r, const std::string& want, std::string* error) {
        if (r && r->status == 200 && r->body.find(want) != std::string::npos) return true;
        *error = r ? std::to_string(r->status) + " " + r->body.substr(0, 300)
                   : httplib::to_string(r.error());
        return false;
      }

      std::unique_ptr<httplib::Client> c_;
      const std::string path_;
      const httplib::Headers headers_;
      const Load load_;
      std::string body_, want_;  // kept: their buffers are reused
    };
    const bool own = load == Load::kInsertOwnDb || load == Load::kSelectOwnBranch;
    std::string branch = own ? "w" + std::to_string(i) : "production";
    if (load == Load::kHranaSelect) {
      return std::make_unique<HttpWorker>(Client(""), "/libsql/bench/production/v2/pipeline",
                                          tokens_[i], load);
    }
    return std::make_unique<HttpWorker>(
        Client(""), "/v1/projects/bench/branches/" + branch + "/sql", tokens_[i],
        load == Load::kSelectOwnBranch ? Load::kSelect : load);
  }

 private:
  bool Healthy() const {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get("/healthz");
    return r && r->status == 200;
  }
  std::string Token(const std::string& id, const std::string& secret) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_basic_auth(id.c_str(), secret.c_str());
    auto r = c.Post("/oauth/token", "grant_type=client_credentials",
                    "application/x-www-form-urlencoded");
    if (!r || r->status != 200) Die("token: " + (r ? r->body : httplib::to_string(r.error())));
    return json::parse(r->body)["access_token"];
  }

  const std::string name_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string admin_;
  std::vector<std::string> tokens_;
};

// A libpq connection; dies when it cannot connect.
class PgConn {
 public:
  explicit PgConn(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) Die("postgres: " + std::string(PQerrorMessage(c_)));
  }
  ~PgConn() { PQfinish(c_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;
  PGconn* get() { return c_; }
  // Runs sql (no result rows wanted); dies on an error.
  void Exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    ExecStatusType s = PQresultStatus(r);
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
      Die("postgres: " + sql.substr(0, 80) + ": " + err);
  }
  std::string Value(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) Die("postgres: " + sql);
    std::string v = PQgetvalue(r, 0, 0);
    PQclear(r);
    return v;
  }

 private:
  PGconn* c_;
};

class Postgres : public System {
 public:
  Postgres(std::string conninfo, pid_t postmaster)
      : conninfo_(std::move(conninfo)),
        postmaster_(postmaster),
        admin_(conninfo_ + " dbname=postgres") {}

  std::string name() const override { return "postgres"; }
  CpuTimes ServerCpu() override { return ProcessCpuSeconds(postmaster_, true); }
  PgConn& admin() { return admin_; }
  std::string Conninfo(const std::string& db) const { return conninfo_ + " dbname=" + db; }

  void Setup() {
    admin_.Exec("CREATE DATABASE bench");
    {
      PgConn b(Conninfo("bench"));
      b.Exec("CREATE TABLE t(id integer PRIMARY KEY, v text NOT NULL)");
      b.Exec("CREATE TABLE w(id bigserial PRIMARY KEY, v text NOT NULL)");
      b.Exec(
          "INSERT INTO t SELECT i, 'value-' || i || '-' || md5(i::text) "
          "FROM generate_series(1, " +
          std::to_string(kRows) + ") i");
      b.Exec("VACUUM ANALYZE t");
    }  // a template has no connections
    for (int i = 0; i < 8; ++i) {
      admin_.Exec("CREATE DATABASE w" + std::to_string(i) + " TEMPLATE bench");
    }
  }

  std::unique_ptr<Worker> NewWorker(Load load, int i) override {
    class PgWorker : public Worker {
     public:
      PgWorker(const std::string& conninfo, Load load) : c_(conninfo), load_(load) {
        const char* sql = load == Load::kSelect ? "SELECT v FROM t WHERE id = $1"
                                                : "INSERT INTO w(v) VALUES ($1)";
        PGresult* r = PQprepare(c_.get(), "q", sql, 1, nullptr);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
          Die("postgres prepare: " + std::string(PQresultErrorMessage(r)));
        PQclear(r);
      }
      bool One(std::mt19937_64& rng, std::string* error) override {
        int64_t k = static_cast<int64_t>(rng() % kRows) + 1;
        std::string param = load_ == Load::kSelect ? std::to_string(k) : "row-" + std::to_string(k);
        const char* values[1] = {param.c_str()};
        PGresult* r = PQexecPrepared(c_.get(), "q", 1, values, nullptr, nullptr, 0);
        bool ok = load_ == Load::kSelect
                      ? PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                      : PQresultStatus(r) == PGRES_COMMAND_OK && std::string(PQcmdTuples(r)) == "1";
        if (!ok) *error = PQresultErrorMessage(r);
        PQclear(r);
        return ok;
      }

     private:
      PgConn c_;
      Load load_;
    };
    std::string db = load == Load::kInsertOwnDb ? "w" + std::to_string(i) : "bench";
    return std::make_unique<PgWorker>(Conninfo(db), load);
  }

 private:
  const std::string conninfo_;
  const pid_t postmaster_;
  PgConn admin_;
};

// ---- the request harness ------------------------------------------------------

struct RunResult {
  double rate = 0;    // requests/s
  double cpu_us = 0;         // server CPU per request, µs
  double user_us = 0;        // of it, user time
  double system_us = 0;      // of it, system (kernel) time
  double client_cpu_us = 0;  // this process's (the clients') CPU per request, µs
  double p50_ms = 0;
  double load1 = 0;
};

// `clients` threads, each with its own worker (connection), send requests
// back to back for `seconds`; every answer is checked.
RunResult Run(System& sys, Load load, int clients, double seconds) {
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < clients; ++i) workers.push_back(sys.NewWorker(load, i));
  std::vector<std::vector<double>> lat(clients);
  std::atomic<bool> go{false}, stop{false}, failed{false};
  std::atomic<int> ready{0};
  std::string error;
  std::mutex error_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(7919 * (t + 1));
      std::string err;
      auto one = [&] {
        if (workers[t]->One(rng, &err)) return true;
        std::lock_guard<std::mutex> l(error_mu);
        if (error.empty()) error = err;
        failed = true;
        return false;
      };
      for (int i = 0; i < 20 && one(); ++i) {  // warm-up: connection, caches, plans
      }
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      TimeCalls([&] { return !stop.load() && !failed.load(); }, one, &lat[t]);
    });
  }
  while (ready.load() < clients && !failed.load()) std::this_thread::yield();
  const CpuTimes cpu0 = sys.ServerCpu();
  const double client0 = ClientCpuSeconds();  // after ServerCpu: its /proc scan is not the clients'
  const double start = NowSeconds();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = NowSeconds() - start;
  const double client = ClientCpuSeconds() - client0;
  const CpuTimes cpu = sys.ServerCpu() - cpu0;
  if (failed) Die(sys.name() + " " + LoadName(load) + ": " + error);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  RunResult r;
  r.rate = static_cast<double>(all.size()) / elapsed;
  const double per_request = all.empty() ? 0 : 1e6 / static_cast<double>(all.size());
  r.user_us = cpu.user * per_request;
  r.system_us = cpu.system * per_request;
  r.cpu_us = r.user_us + r.system_us;
  r.client_cpu_us = all.empty() ? 0 : client * 1e6 / static_cast<double>(all.size());
  r.p50_ms = Percentile(all, 50);
  r.load1 = Load1();
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty()      ? 0
         : v.size() % 2 ? v[v.size() / 2]
                        : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// ---- copies and undo ----------------------------------------------------------

double TimeMs(const std::function<void()>& f) {
  double t = NowSeconds();
  f();
  return (NowSeconds() - t) * 1000;
}

void EmitTimed(const std::string& metric, double branchdb_ms, const std::string& baseline_name,
               double pg_ms, int mb, double load1) {
  Metric m;
  m.bench = "postgres";
  m.metric = metric;
  m.value = branchdb_ms;
  m.unit = "ms";
  m.baseline_name = baseline_name;
  m.baseline = pg_ms;
  m.lower_is_better = true;
  m.extra = {{"db_mb", mb}, {"load1", load1}};
  Emit(m);
}

void Copies(Branchdb& bdb, Postgres& pg, int mb, int rounds) {
  const std::string n = std::to_string(mb);
  const std::string project = "copy" + n;
  // ~1 kB rows: 1000 per MB. branchdb: random blobs, filled in requests of
  // at most 50 MB; Postgres: 992 bytes of text per row (below the TOAST
  // threshold: stored uncompressed).
  const double fill0 = NowSeconds();
  bdb.Call("POST", "/v1/projects", {{"name", project}}, 201);
  bdb.Sql(project, "production", "CREATE TABLE c(id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  for (int done = 0; done < mb; done += 50) {
    int rows = std::min(50, mb - done) * 1000;
    bdb.Sql(project, "production",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<" +
                std::to_string(rows) + ") INSERT INTO c(v) SELECT randomblob(1000) FROM n");
  }
  const double fill1 = NowSeconds();
  pg.admin().Exec("CREATE DATABASE src" + n);
  {
    PgConn c(pg.Conninfo("src" + n));
    c.Exec("CREATE TABLE c(id bigserial PRIMARY KEY, v text NOT NULL)");
    c.Exec("INSERT INTO c(v) SELECT repeat(md5(i::text), 31) FROM generate_series(1, " +
           std::to_string(mb * 1000) + ") i");
    c.Exec("CHECKPOINT");
  }
  const double pg_mb = std::stod(pg.admin().Value("SELECT pg_database_size('src" + n + "')")) / 1e6;
  std::fprintf(stderr, "copies at %d MB: filled branchdb in %.1f s, postgres in %.1f s (%.0f MB)\n",
               mb, fill1 - fill0, NowSeconds() - fill1, pg_mb);

  std::vector<double> b_create, b_drop, wal_create, wal_drop, file_create, file_drop;
  const std::string branches = "/v1/projects/" + project + "/branches";
  for (int r = 0; r < rounds; ++r) {
    b_create.push_back(TimeMs([&] {
      bdb.Call("POST", branches, {{"name", "copy"}, {"parent", "production"}}, 201);
    }));
    b_drop.push_back(TimeMs([&] { bdb.Call("DELETE", branches + "/copy", nullptr, 204); }));
    wal_create.push_back(TimeMs(
        [&] { pg.admin().Exec("CREATE DATABASE copy TEMPLATE src" + n + " STRATEGY WAL_LOG"); }));
    wal_drop.push_back(TimeMs([&] { pg.admin().Exec("DROP DATABASE copy"); }));
    file_create.push_back(TimeMs(
        [&] { pg.admin().Exec("CREATE DATABASE copy TEMPLATE src" + n + " STRATEGY FILE_COPY"); }));
    file_drop.push_back(TimeMs([&] { pg.admin().Exec("DROP DATABASE copy"); }));
  }
  const double load1 = Load1();
  EmitTimed("copy_create_wal_log_" + n + "MB", Median(b_create),
            "CREATE DATABASE TEMPLATE STRATEGY WAL_LOG", Median(wal_create), mb, load1);
  EmitTimed("copy_create_file_copy_" + n + "MB", Median(b_create),
            "CREATE DATABASE TEMPLATE STRATEGY FILE_COPY", Median(file_create), mb, load1);
  EmitTimed("copy_drop_wal_log_" + n + "MB", Median(b_drop), "DROP DATABASE (WAL_LOG copy)",
            Median(wal_drop), mb, load1);
  EmitTimed("copy_drop_file_copy_" + n + "MB", Median(b_drop), "DROP DATABASE (FILE_COPY copy)",
            Median(file_drop), mb, load1);

  // Undo of the last 3 actions. Postgres: the copy taken before them
  // (src<n>) restored over the working database.
  std::vector<double> b_undo, pg_undo;
  pg.admin().Exec("CREATE DATABASE work" + n + " TEMPLATE src" + n + " STRATEGY FILE_COPY");
  for (int r = 0; r < rounds; ++r) {
    for (int a = 0; a < 3; ++a) {
      bdb.Sql(project, "production", "INSERT INTO c(v) VALUES (randomblob(1000))");
    }
    b_undo.push_back(TimeMs([&] {
      bdb.Call("POST", "/v1/projects/" + project + "/branches/production/rollback",
               {{"to", {{"actions", 3}}}}, 200);
    }));
    {
      PgConn c(pg.Conninfo("work" + n));
      for (int a = 0; a < 3; ++a) c.Exec("INSERT INTO c(v) VALUES (repeat(md5('x'), 31))");
    }
    pg_undo.push_back(TimeMs([&] {
      pg.admin().Exec("DROP DATABASE work" + n);
      pg.admin().Exec("CREATE DATABASE work" + n + " TEMPLATE src" + n + " STRATEGY FILE_COPY");
    }));
  }
  EmitTimed("undo_3_actions_" + n + "MB", Median(b_undo),
            "restore the copy taken before (DROP + CREATE DATABASE TEMPLATE, FILE_COPY)",
            Median(pg_undo), mb, Load1());
  bdb.Call("DELETE", "/v1/projects/" + project, nullptr, 204);
  pg.admin().Exec("DROP DATABASE work" + n);
  pg.admin().Exec("DROP DATABASE src" + n);
}

// BRANCHDB_BENCH_PROFILE=point_select|point_select_own_branch|insert_one_db|
// hrana_select|healthz[:clients] (1 to 8): branchdb alone runs that load for
// BRANCHDB_BENCH_SECONDS after printing its server's pid, for a profiler to
// attach to (docs/benchmarks.md, "Profiling the request path"); at the end,
// requests/s and the server's and the clients' CPU per request.
int Profile(const std::string& what) {
  const size_t colon = what.find(':');
  const std::string name = what.substr(0, colon);
  const int clients =
      colon == std::string::npos ? 1 : std::clamp(std::atoi(what.c_str() + colon + 1), 1, 8);
  Load load = Load::kSelect;
  if (name == "insert_one_db") {
    load = Load::kInsert;
  } else if (name == "healthz") {
    load = Load::kHealth;
  } else if (name == "point_select_own_branch") {
    load = Load::kSelectOwnBranch;
  } else if (name == "hrana_select") {
    load = Load::kHranaSelect;
  } else if (name != "point_select") {
    Die("BRANCHDB_BENCH_PROFILE: expected point_select, point_select_own_branch, insert_one_db, "
        "hrana_select or healthz[:clients]");
  }
  double seconds = 20;
  if (const char* s = std::getenv("BRANCHDB_BENCH_SECONDS")) seconds = std::max(0.2, std::atof(s));
  ScratchDir dir(kProgram);
  const char* binary = std::getenv("BRANCHDB_BENCH_BINARY");
  Branchdb bdb(dir.path(), binary != nullptr ? binary : BRANCHDB_BINARY, "branchdb");
  bdb.Setup();
  std::fprintf(stderr, "profile: branchdb pid %d, %s with %d clients for %.0f s\n",
               static_cast<int>(bdb.pid()), name.c_str(), clients, seconds);
  RunResult r = Run(bdb, load, clients, seconds);
  std::fprintf(stderr,
               "profile: %.0f requests/s, %.0f us server CPU (user %.0f, system %.0f) and %.0f us "
               "client CPU per request\n",
               r.rate, r.cpu_us, r.user_us, r.system_us, r.client_cpu_us);
  return 0;
}

int Main() {
  if (const char* p = std::getenv("BRANCHDB_BENCH_PROFILE"); p != nullptr && *p != 0) {
    return Profile(p);
  }
  const char* conninfo = std::getenv("BRANCHDB_BENCH_PG");
  const char* pid = std::getenv("BRANCHDB_BENCH_PG_PID");
  if (conninfo == nullptr || pid == nullptr) {
    Die("needs a PostgreSQL cluster: BRANCHDB_BENCH_PG (conninfo without dbname) and "
        "BRANCHDB_BENCH_PG_PID (its postmaster); scripts/bench.sh starts one");
  }
  double seconds = 3;
  if (const char* s = std::getenv("BRANCHDB_BENCH_SECONDS")) seconds = std::max(0.2, std::atof(s));
  int rounds = 3;
  if (const char* s = std::getenv("BRANCHDB_BENCH_ROUNDS")) rounds = std::max(1, std::atoi(s));
  const bool gigabyte = std::getenv("BRANCHDB_BENCH_PG_1GB") != nullptr &&
                        std::string(std::getenv("BRANCHDB_BENCH_PG_1GB")) == "1";

  ScratchDir dir(kProgram);
  const char* binary = std::getenv("BRANCHDB_BENCH_BINARY");
  Branchdb bdb(dir.path(), binary != nullptr ? binary : BRANCHDB_BINARY, "branchdb");
  Postgres pg(conninfo, static_cast<pid_t>(std::atol(pid)));
  bdb.Setup();
  pg.Setup();
  // The same requests against an earlier build, in the same rounds: the
  // before/after of a change to the request path.
  std::unique_ptr<Branchdb> before;
  if (const char* b = std::getenv("BRANCHDB_BENCH_BEFORE_BINARY"); b != nullptr && *b != 0) {
    before = std::make_unique<Branchdb>(dir.path(), b, "branchdb_before");
    before->Setup();
  }
  std::fprintf(stderr, "%d rows each; %.1f s per run, %d rounds\n", static_cast<int>(kRows),
               seconds, rounds);

  struct Point {
    Load load;
    int clients;
  };
  std::vector<Point> points;
  for (Load l : {Load::kSelect, Load::kInsert}) {
    for (int c : {1, 2, 4, 8}) points.push_back({l, c});
  }
  points.push_back({Load::kInsertOwnDb, 8});
  // results[system][point] = one RunResult per round.
  std::map<std::string, std::vector<std::vector<RunResult>>> results;
  std::vector<System*> systems = {&bdb, &pg};
  if (before) systems.push_back(before.get());
  for (auto* s : systems) results[s->name()].resize(points.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t p = 0; p < points.size(); ++p) {
      for (size_t k = 0; k < systems.size(); ++k) {
        System* s = systems[(k + r) % systems.size()];
        RunResult res = Run(*s, points[p].load, points[p].clients, seconds);
        std::fprintf(stderr,
                     "round %d %-8s %-13s %d clients: %8.0f req/s  %6.0f us CPU/req "
                     "(user %.0f, system %.0f)  client %6.0f us CPU/req  load %.2f\n",
                     r + 1, s->name().c_str(), LoadName(points[p].load), points[p].clients,
                     res.rate, res.cpu_us, res.user_us, res.system_us, res.client_cpu_us,
                     res.load1);
        results[s->name()][p].push_back(res);
      }
    }
  }
  for (size_t p = 0; p < points.size(); ++p) {
    auto med = [&](const std::string& sys, double RunResult::*field) {
      std::vector<double> v;
      for (const RunResult& x : results[sys][p]) v.push_back(x.*field);
      return Median(v);
    };
    const Point& pt = points[p];
    const std::string tag = std::string(LoadName(pt.load)) + "_" + std::to_string(pt.clients) +
                            (pt.clients == 1 ? "_client" : "_clients");
    const double load1 = Median([&] {
      std::vector<double> v;
      for (auto* s : systems)
        for (const RunResult& x : results[s->name()][p]) v.push_back(x.load1);
      return v;
    }());
    Metric rate;
    rate.bench = "postgres";
    rate.metric = tag + "_rate";
    rate.value = med("branchdb", &RunResult::rate);
    rate.unit = "requests/s";
    rate.baseline_name = "postgres";
    rate.baseline = med("postgres", &RunResult::rate);
    if (pt.clients == 1 || pt.clients == 8) {
      rate.target = ">= 1.0x PostgreSQL";
      rate.met = rate.value >= *rate.baseline;
    }
    rate.extra = {{"clients", pt.clients}, {"load1", load1}};
    Emit(rate);
    Metric cpu;
    cpu.bench = "postgres";
    cpu.metric = tag + "_server_cpu_per_request";
    cpu.value = med("branchdb", &RunResult::cpu_us);
    cpu.unit = "us";
    cpu.baseline_name = "postgres";
    cpu.baseline = med("postgres", &RunResult::cpu_us);
    cpu.lower_is_better = true;
    // The split of each side's CPU (medians of the rounds' user and system
    // times, so they need not add up to the median total exactly).
    cpu.extra = {{"clients", pt.clients},
                 {"load1", load1},
                 {"user_us", med("branchdb", &RunResult::user_us)},
                 {"system_us", med("branchdb", &RunResult::system_us)},
                 {"baseline_user_us", med("postgres", &RunResult::user_us)},
                 {"baseline_system_us", med("postgres", &RunResult::system_us)}};
    Emit(cpu);
    Metric client = cpu;
    client.metric = tag + "_client_cpu_per_request";
    client.value = med("branchdb", &RunResult::client_cpu_us);
    client.baseline_name = "postgres (libpq client)";
    client.baseline = med("postgres", &RunResult::client_cpu_us);
    client.extra = {{"clients", pt.clients}, {"load1", load1}};
    Emit(client);
    if (before) {
      rate.metric = tag + "_rate_vs_before";
      rate.baseline_name = "branchdb before (BRANCHDB_BENCH_BEFORE_BINARY)";
      rate.baseline = med("branchdb_before", &RunResult::rate);
      rate.target.clear();
      rate.met.reset();
      rate.extra = {{"load1", load1}};  // not a point of the clients plot
      Emit(rate);
      cpu.metric = tag + "_server_cpu_per_request_vs_before";
      cpu.baseline_name = rate.baseline_name;
      cpu.baseline = med("branchdb_before", &RunResult::cpu_us);
      cpu.extra = {{"load1", load1},
                   {"user_us", med("branchdb", &RunResult::user_us)},
                   {"system_us", med("branchdb", &RunResult::system_us)},
                   {"baseline_user_us", med("branchdb_before", &RunResult::user_us)},
                   {"baseline_system_us", med("branchdb_before", &RunResult::system_us)}};
      Emit(cpu);
    }
  }

  if (const char* only = std::getenv("BRANCHDB_BENCH_PG_REQUESTS_ONLY");
      only != nullptr && std::string(only) == "1") {
    return 0;  // no copies: a request-path change measured alone
  }
  std::vector<int> sizes = {10, 100};
  if (gigabyte) sizes.push_back(1024);
  for (int mb : sizes) Copies(bdb, pg, mb, mb >= 1024 ? 1 : rounds);
  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
