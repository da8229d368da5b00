// The branchdb binary. `branchdb serve` runs the HTTP service.
//
// For now the server answers GET /healthz; the API grows route by route
// (see docs/ and the issues).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>

#include "storage/env/env.h"

namespace {

struct ServeFlags {
  std::string data_dir = "./data";
  std::string listen = "127.0.0.1:8080";
};

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = listen.substr(0, colon);
  try {
    size_t used = 0;
    *port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) return false;
  } catch (...) {
    return false;
  }
  return *port >= 0 && *port <= 65535;
}

int Serve(const ServeFlags& flags) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(flags.listen, &host, &port)) {
    std::fprintf(stderr, "branchdb serve: --listen %s: expected HOST:PORT, e.g. 127.0.0.1:8080\n",
                 flags.listen.c_str());
    return 2;
  }
  branchdb::Env* env = branchdb::Env::Default();
  if (auto s = env->CreateDirs(flags.data_dir); !s.ok()) {
    std::fprintf(stderr, "branchdb serve: data directory: %s\n", s.ToString().c_str());
    return 1;
  }

  // Signals are taken by a dedicated thread (sigwait), which stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  httplib::Server server;
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"status", "ok"}}.dump(), "application/json");
  });

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("event=shutdown signal={}", sig);
    server.stop();
  });

  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    std::fprintf(stderr, "branchdb serve: cannot listen on %s (in use? try --listen %s:8081)\n",
                 flags.listen.c_str(), host.c_str());
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    return 1;
  }
  spdlog::info("event=listening address=http://{}:{} data_dir={}", host, port, flags.data_dir);
  server.listen_after_bind();
  signal_thread.join();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"branchdb: database branches for agents, CI and developers"};
  app.require_subcommand(1);
  ServeFlags flags;
  CLI::App* serve = app.add_subcommand("serve", "Run the branchdb HTTP server");
  serve->add_option("--data-dir", flags.data_dir, "Data directory")->capture_default_str();
  serve->add_option("--listen", flags.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) return Serve(flags);
  return 0;
}
