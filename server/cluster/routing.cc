// See routing.h.
#include "server/cluster/routing.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <strings.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "base/mutex.h"
#include "cluster/cluster.h"
#include "server/http/errors.h"
#include "server/http/log_value.h"

namespace branchdb::server::cluster_routing {
namespace {

constexpr char kForwardedBy[] = "X-Branchdb-Forwarded-By";
// Answers up to this size (by their Content-Length) are read whole before
// they are passed on, so that the router's post-processing (idempotency's
// stored answer, error redaction) sees the body; larger or unsized ones
// (exports) are streamed.
constexpr uint64_t kBufferedAnswerBytes = 8 << 20;
// What a streamed answer may hold in memory between the owner and the caller.
constexpr size_t kPipeBytes = 4 << 20;

bool HopByHop(const std::string& name) {
  for (const char* h : {"Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer",
                        "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Content-Length",
                        "Host", "REMOTE_ADDR", "REMOTE_PORT", "LOCAL_ADDR", "LOCAL_PORT"}) {
    if (strcasecmp(name.c_str(), h) == 0) return true;
  }
  return false;
}

// The owner's answer, passed from the client thread to the caller's.
struct Pipe {
  Mutex mu;
  CondVar cv;
  bool headers_ready GUARDED_BY(mu) = false;
  int status GUARDED_BY(mu) = 0;
  httplib::Headers headers GUARDED_BY(mu);
  std::deque<std::string> chunks GUARDED_BY(mu);
  size_t queued GUARDED_BY(mu) = 0;
  bool done GUARDED_BY(mu) = false;      // the client call returned
  bool failed GUARDED_BY(mu) = false;    // ... without a whole answer
  std::string error GUARDED_BY(mu);
  bool cancelled GUARDED_BY(mu) = false;  // the caller went away
  // The call's client: stop() from another thread shuts its socket, and the
  // call returns (the owner lost the project while the caller waited).
  std::shared_ptr<httplib::Client> client;
  std::thread thread;
};

std::shared_ptr<httplib::Client> ClientFor(const std::string& url) {
  auto client = std::make_shared<httplib::Client>(url);
  client->set_connection_timeout(2, 0);
  client->set_read_timeout(300, 0);  // a long export or SQL script
  client->set_write_timeout(300, 0);
  client->set_keep_alive(false);
  return client;
}

void SendUnreachable(httplib::Response& res, const std::string& node, const std::string& why) {
  http::SendError(res, Status::Unavailable("the project's owner node " + node +
                                               " did not answer (" + why + "); retry shortly",
                                           "owner_unreachable"));
  res.set_header("Retry-After", "1");
}

void CopyAnswerHeaders(const httplib::Headers& from, httplib::Response& res) {
  for (const auto& [name, value] : from) {
    if (HopByHop(name) || strcasecmp(name.c_str(), "Content-Type") == 0) continue;
    // The router sets X-Request-Id itself (the caller's, echoed, as the owner did).
    if (strcasecmp(name.c_str(), "X-Request-Id") == 0) continue;
    res.headers.emplace(name, value);
  }
}

// A request whose body is streamed (imports): sent with a content provider
// reading the caller's body; the (small, JSON) answer is read whole.
void ForwardStreamingBody(const std::string& url, const std::string& node,
                          const httplib::Request& req, httplib::Response& res,
                          const httplib::Headers& headers, const http::BodyReader& body) {
  auto client = ClientFor(url);
  const uint64_t length = req.get_header_value<uint64_t>("Content-Length");
  bool read_ok = true, started = false;
  auto provider = [&](size_t, size_t, httplib::DataSink& sink) {
    if (started) return read_ok;
    started = true;
    read_ok = body([&](const char* data, size_t n) { return sink.write(data, n); });
    return read_ok;
  };
  auto answer = client->Post(req.target, headers, static_cast<size_t>(length), provider,
                             req.get_header_value("Content-Type"));
  if (!answer) return SendUnreachable(res, node, httplib::to_string(answer.error()));
  res.status = answer->status;
  CopyAnswerHeaders(answer->headers, res);
  res.set_content(answer->body, answer->get_header_value("Content-Type"));
}

// Sends req (its body in req.body) to the owner at url on a thread of its
// own, the answer flowing into the returned pipe.
std::shared_ptr<Pipe> StartOwnerCall(const std::string& url, const httplib::Request& req,
                                     const httplib::Headers& headers) {
  auto pipe = std::make_shared<Pipe>();
  httplib::Request out;
  out.method = req.method;
  out.path = req.target;  // as sent: percent-encoding and query intact
  out.headers = headers;
  out.body = req.body;
  out.response_handler = [pipe](const httplib::Response& r) {
    MutexLock l(pipe->mu);
    pipe->status = r.status;
    pipe->headers = r.headers;
    pipe->headers_ready = true;
    pipe->cv.SignalAll();
    return true;
  };
  out.content_receiver = [pipe](const char* data, size_t n, uint64_t, uint64_t) {
    MutexLock l(pipe->mu);
    while (pipe->queued > kPipeBytes && !pipe->cancelled) pipe->cv.Wait(pipe->mu);
    if (pipe->cancelled) return false;
    pipe->chunks.emplace_back(data, n);
    pipe->queued += n;
    pipe->cv.SignalAll();
    return true;
  };
  pipe->client = ClientFor(url);
  pipe->thread = std::thread([pipe, out = std::move(out)]() mutable {
    auto result = pipe->client->send(out);
    MutexLock l(pipe->mu);
    pipe->done = true;
    if (!result) {
      pipe->failed = true;
      pipe->error = httplib::to_string(result.error());
    }
    pipe->cv.SignalAll();
  });
  return pipe;
}

// Waits until the owner's answer has its headers (headers) or has ended. A
// paused or cut-off owner would keep the caller up to the read timeout
// (300 s): every second the view is asked whether the owner still holds the
// project (owner_holds, run without pipe.mu), and when it no longer does the
// call is stopped. False then.
bool WaitWhileOwner(Pipe& pipe, bool headers, const std::function<bool()>& owner_holds)
    REQUIRES(pipe.mu) {
  while (!(pipe.done || (headers && pipe.headers_ready))) {
    pipe.cv.WaitFor(pipe.mu, std::chrono::seconds(1));
    if (pipe.done || (headers && pipe.headers_ready)) break;
    pipe.mu.Unlock();
    const bool holds = owner_holds();
    pipe.mu.Lock();
    if (!holds) {
      pipe.client->stop();
      while (!pipe.done) pipe.cv.Wait(pipe.mu);
      return false;
    }
  }
  return true;
}

void SendOwnerLost(httplib::Response& res, const std::string& node) {
  http::SendError(res, Status::Unavailable("the project's owner node " + node +
                                               " stopped answering and lost the project while "
                                               "the request waited; retry (another node serves "
                                               "it once it is taken over)",
                                           "owner_lost"));
  res.set_header("Retry-After", "1");
}

void Forward(const std::string& url, const std::string& node, const std::string& self,
             const httplib::Request& req, httplib::Response& res, const http::BodyReader* body,
             const std::function<bool()>& owner_holds) {
  httplib::Headers headers;
  for (const auto& [name, value] : req.headers) {
    if (!HopByHop(name)) headers.emplace(name, value);
  }
  headers.emplace(kForwardedBy, self);
  headers.emplace("X-Forwarded-For", req.remote_addr);
  if (body != nullptr) return ForwardStreamingBody(url, node, req, res, headers, *body);

  std::shared_ptr<Pipe> pipe = StartOwnerCall(url, req, headers);
  MutexLock l(pipe->mu);
  if (!WaitWhileOwner(*pipe, /*headers=*/true, owner_holds)) {
    l.Unlock();
    pipe->thread.join();
    return SendOwnerLost(res, node);
  }
  if (!pipe->headers_ready) {
    const std::string error = pipe->error;
    l.Unlock();
    pipe->thread.join();
    return SendUnreachable(res, node, error);
  }
  res.status = pipe->status;
  CopyAnswerHeaders(pipe->headers, res);
  const std::string type = httplib::detail::get_header_value(pipe->headers, "Content-Type", 0, "");
  const std::string length = httplib::detail::get_header_value(pipe->headers, "Content-Length", 0, "");
  if (req.method == "HEAD" || (!length.empty() && std::stoull(length) <= kBufferedAnswerBytes)) {
    if (!WaitWhileOwner(*pipe, /*headers=*/false, owner_holds)) {
      l.Unlock();
      pipe->thread.join();
      return SendOwnerLost(res, node);
    }
    const bool failed = pipe->failed;
    const std::string error = pipe->error;
    std::string whole;
    for (const std::string& c : pipe->chunks) whole += c;
    l.Unlock();
    pipe->thread.join();
    if (failed) return SendUnreachable(res, node, error);
    if (!whole.empty() || !type.empty()) res.set_content(whole, type.c_str());
    return;
  }
  l.Unlock();
  res.set_chunked_content_provider(
      type.empty() ? "application/octet-stream" : type,
      [pipe](size_t, httplib::DataSink& sink) {
        MutexLock l(pipe->mu);
        while (pipe->chunks.empty() && !pipe->done) pipe->cv.Wait(pipe->mu);
        if (!pipe->chunks.empty()) {
          std::string chunk = std::move(pipe->chunks.front());
          pipe->chunks.pop_front();
          pipe->queued -= chunk.size();
          pipe->cv.SignalAll();
          l.Unlock();
          return sink.write(chunk.data(), chunk.size());
        }
        if (pipe->failed) return false;  // cut short: the caller sees a broken chunked body
        l.Unlock();
        sink.done();
        return true;
      },
      [pipe](bool) {
        {
          MutexLock l(pipe->mu);
          pipe->cancelled = true;
          pipe->cv.SignalAll();
        }
        if (pipe->thread.joinable()) pipe->thread.join();
      });
}

bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD"; }

}  // namespace

bool RouteToOwner(Services& s, const httplib::Request& req, httplib::Response& res,
                  const std::string& project, const http::BodyReader* body) {
  if (s.cluster == nullptr || project.empty()) return false;
  auto discard_body = [body] {
    if (body != nullptr) (void)(*body)([](const char*, size_t) { return true; });
  };
  const cluster::Location at = s.cluster->Locate(project);
  switch (at.kind) {
    case cluster::Location::Kind::kUnknown:
      return false;  // the local catalog answers (404 project_not_found)
    case cluster::Location::Kind::kLocal:
      if (IsWrite(req.method)) {
        if (Status st = s.cluster->CheckWrite(project); !st.ok()) {
          s.logger->warn("event=cluster_write_refused project={} reason={}",
                         http::LogValue(project), st.reason());
          discard_body();
          http::SendError(res, st);
          res.set_header("Retry-After", "1");
          return true;
        }
      }
      return false;
    case cluster::Location::Kind::kUnavailable:
      discard_body();
      http::SendError(res, Status::Unavailable(
                               "project " + project + " is not served now: its node " + at.node +
                                   " is down (it is served again when that node returns)",
                               "project_unavailable"));
      res.set_header("Retry-After", "5");
      return true;
    case cluster::Location::Kind::kTaking:
      discard_body();
      http::SendError(res, Status::Unavailable("project " + project + " is being taken over by node " +
                                                   at.node + " (restored from object storage); retry shortly",
                                               "project_unavailable"));
      res.set_header("Retry-After", "1");
      return true;
    case cluster::Location::Kind::kRemote:
      break;
  }
  if (req.has_header(kForwardedBy)) {
    // The sender thought this node the owner: the views differ for a moment.
    discard_body();
    http::SendError(res, Status::Unavailable("project " + project + " moved to node " + at.node +
                                                 " while the request was forwarded; retry",
                                             "owner_moved"));
    res.set_header("Retry-After", "1");
    return true;
  }
  auto owner_holds = [&s, &project, &at] {
    const cluster::Location now = s.cluster->Locate(project);
    return now.kind == cluster::Location::Kind::kRemote && now.node == at.node &&
           now.epoch == at.epoch;
  };
  Forward(at.url, at.node, s.cluster->node_name(), req, res, body, owner_holds);
  return true;
}

Status ClaimProject(Services& s, const std::string& project) {
  if (s.cluster == nullptr) return Status::OK();
  auto epoch = s.cluster->ClaimNew(project);
  return epoch.ok() ? Status::OK() : epoch.status();
}

bool ListsHere(Services& s, const std::string& project) {
  if (s.cluster == nullptr) return true;
  const cluster::Location::Kind kind = s.cluster->Locate(project).kind;
  return kind == cluster::Location::Kind::kLocal || kind == cluster::Location::Kind::kUnknown;
}

void GatherProjects(Services& s, const httplib::Request& req, nlohmann::json* projects,
                    std::vector<std::string>* unreachable) {
  if (s.cluster == nullptr || req.has_header(kForwardedBy)) return;
  auto view = s.cluster->View();
  if (!view.ok()) {
    unreachable->push_back("etcd");
    return;
  }
  struct Ask {
    const cluster::NodeInfo* node;
    std::optional<nlohmann::json> listed;  // set when it answered 200 with a list
  };
  std::vector<Ask> asks;
  for (const cluster::NodeInfo& n : view->nodes) {
    if (n.name != s.cluster->node_name()) asks.push_back(Ask{&n, std::nullopt});
  }
  httplib::Headers headers = {{kForwardedBy, s.cluster->node_name()}};
  if (req.has_header("Authorization")) {
    headers.emplace("Authorization", req.get_header_value("Authorization"));
  }
  std::vector<std::thread> threads;
  for (Ask& ask : asks) {
    threads.emplace_back([&ask, &headers] {
      httplib::Client client(ask.node->url);
      client.set_connection_timeout(2, 0);
      client.set_read_timeout(kListTimeoutSeconds, 0);
      client.set_keep_alive(false);
      auto r = client.Get("/v1/projects", headers);
      if (!r || r->status != 200) return;
      nlohmann::json body = nlohmann::json::parse(r->body, nullptr, false);
      if (body.is_object() && body.contains("projects") && body["projects"].is_array()) {
        ask.listed = std::move(body["projects"]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (Ask& ask : asks) {
    if (!ask.listed) {
      unreachable->push_back(ask.node->name);
      continue;
    }
    for (nlohmann::json& p : *ask.listed) projects->push_back(std::move(p));
  }
}

void ReleaseProject(Services& s, const std::string& project) {
  if (s.cluster == nullptr) return;
  if (Status st = s.cluster->Release(project); !st.ok()) {
    s.logger->warn("event=cluster_release_failed project={} error=\"{}\"", http::LogValue(project),
                   http::LogValue(st.ToString()));
  }
}

}  // namespace branchdb::server::cluster_routing
