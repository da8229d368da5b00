#include "sdk/cli/settings.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace branchdb::cli {

namespace {

// One place's values (flags, environment or config file).
struct Layer {
  std::string name;                           // "flags", "environment", "config file <path>"
  std::map<std::string, std::string> values;  // url, project, token, client_id, ...

  const std::string* Get(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  }
};

constexpr const char* kKeys[] = {"url",       "project",       "token",
                                 "client_id", "client_secret", "data_dir"};

bool ReadFile(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *text = s.str();
  return static_cast<bool>(in) || in.eof();
}

bool LoadConfigFile(const std::string& path, Layer* layer, std::string* error) {
  std::string text;
  if (!ReadFile(path, &text)) {
    *error =
        "config file " + path + ": cannot read it (pass --config FILE or unset BRANCHDB_CONFIG)";
    return false;
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ": " << e.description();
    *error = m.str();
    return false;
  }
  layer->name = "config file " + path;
  for (const auto& [key, node] : root) {
    std::string k(key.str());
    bool known = false;
    for (const char* name : kKeys) known = known || k == name;
    if (!known) {
      *error = path + ":" + std::to_string(node.source().begin.line) + ": unknown key \"" + k +
               "\" (the CLI's config file holds url, project, token, client_id, client_secret, "
               "data_dir; the server's settings belong in `branchdb serve --config`)";
      return false;
    }
    if (!node.is_string()) {
      *error =
          path + ":" + std::to_string(node.source().begin.line) + ": " + k + ": expected a string";
      return false;
    }
    layer->values[k] = *node.value<std::string>();
  }
  return true;
}

// Reads DATA_DIR/admin-credentials.json; false when absent or unreadable.
// *url: the server the file names (its token_url without /oauth/token), or
// "" when it names none.
bool LoadAdminCredentials(const std::string& data_dir, std::string* id, std::string* secret,
                          std::string* url, std::string* path_out) {
  std::string path = data_dir + "/admin-credentials.json";
  std::string text;
  if (!ReadFile(path, &text)) return false;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("client_id") || !j.contains("client_secret") ||
      !j["client_id"].is_string() || !j["client_secret"].is_string()) {
    return false;
  }
  *id = j["client_id"].get<std::string>();
  *secret = j["client_secret"].get<std::string>();
  url->clear();
  const std::string suffix = "/oauth/token";
  if (j.contains("token_url") && j["token_url"].is_string()) {
    std::string t = j["token_url"].get<std::string>();
    if (t.size() > suffix.size() && t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0) {
      *url = t.substr(0, t.size() - suffix.size());
    }
  }
  *path_out = path;
  return true;
}

// A URL the SDK can use: http(s)://HOST[:PORT][/prefix], the port 1..65535.
bool ValidUrl(const std::string& url) {
  size_t scheme = url.rfind("https://", 0) == 0 ? 8 : url.rfind("http://", 0) == 0 ? 7 : 0;
  if (scheme == 0) return false;
  std::string authority = url.substr(scheme, url.find_first_of("/?#", scheme) - scheme);
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (authority.empty() || authority[0] == ':' || authority.find('@') != std::string::npos) {
    return false;
  }
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) return true;
  std::string port = authority.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int n = std::stoi(port);
  return n >= 1 && n <= 65535;
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

namespace {

void Put(Layer& l, const char* key, const std::optional<std::string>& v) {
  if (v && !v->empty()) l.values[key] = *v;
}

// The config file to read: --config, else BRANCHDB_CONFIG (both required to
// exist), else the XDG default (read only when it exists). "" for none.
std::string ConfigPath(const SettingsFlags& flags, const GetEnvFn& env, bool* required) {
  *required = true;
  if (flags.config && !flags.config->empty()) return *flags.config;
  if (auto c = env("BRANCHDB_CONFIG")) return *c;
  *required = false;
  if (auto xdg = env("XDG_CONFIG_HOME")) return *xdg + "/branchdb/config.toml";
  if (auto home = env("HOME")) return *home + "/.config/branchdb/config.toml";
  return "";
}

// The credentials of the first layer that gives any (a token, or a client id
// and secret), into out. False (error set) when a layer gives half a pair;
// true with out->credentials_from empty when no layer gives any.
bool PickCredentials(const Layer* const* layers, size_t n, const Layer& from_flags,
                     const Layer& from_env, Settings* out, std::string* error) {
  for (size_t i = 0; i < n; ++i) {
    const Layer* l = layers[i];
    const std::string* token = l->Get("token");
    const std::string* id = l->Get("client_id");
    const std::string* secret = l->Get("client_secret");
    if (token) {
      out->token = *token;
    } else if (id && secret) {
      out->client_id = *id;
      out->client_secret = *secret;
    } else if (id || secret) {
      bool is_flags = l == &from_flags, is_env = l == &from_env;
      std::string have = is_flags ? (id ? "--client-id" : "--client-secret")
                         : is_env ? (id ? "BRANCHDB_CLIENT_ID" : "BRANCHDB_CLIENT_SECRET")
                                  : (id ? "client_id" : "client_secret");
      std::string need = is_flags ? (id ? "--client-secret" : "--client-id")
                         : is_env ? (id ? "BRANCHDB_CLIENT_SECRET" : "BRANCHDB_CLIENT_ID")
                                  : (id ? "client_secret" : "client_id");
      *error = l->name + ": " + have + " is set but " + need + " is not; give both (or a token)";
      return false;
    } else {
      continue;
    }
    out->credentials_from = l->name;
    return true;
  }
  return true;
}

}  // namespace

bool ResolveSettings(const SettingsFlags& flags, const GetEnvFn& env, Settings* out,
                     std::string* error) {
  Layer from_flags{"flags", {}};
  Put(from_flags, "url", flags.url);
  Put(from_flags, "project", flags.project);
  Put(from_flags, "token", flags.token);
  Put(from_flags, "client_id", flags.client_id);
  Put(from_flags, "client_secret", flags.client_secret);
  Put(from_flags, "data_dir", flags.data_dir);

  Layer from_env{"environment", {}};
  Put(from_env, "url", env("BRANCHDB_URL"));
  Put(from_env, "project", env("BRANCHDB_PROJECT"));
  Put(from_env, "token", env("BRANCHDB_TOKEN"));
  Put(from_env, "client_id", env("BRANCHDB_CLIENT_ID"));
  Put(from_env, "client_secret", env("BRANCHDB_CLIENT_SECRET"));
  Put(from_env, "data_dir", env("BRANCHDB_DATA_DIR"));

  Layer from_file{"", {}};
  bool required = true;
  std::string config_path = ConfigPath(flags, env, &required);
  *out = Settings{};
  if (!config_path.empty()) {
    std::ifstream probe(config_path);
    if (required || probe.good()) {
      if (!LoadConfigFile(config_path, &from_file, error)) return false;
      out->config_file = config_path;
    }
  }

  const Layer* layers[] = {&from_flags, &from_env, &from_file};
  auto pick = [&](const char* key, const std::string& fallback) {
    for (const Layer* l : layers) {
      if (const std::string* v = l->Get(key)) return *v;
    }
    return fallback;
  };
  std::string url_from = "the default";
  for (const Layer* l : layers) {
    if (l->Get("url")) {
      url_from = l == &from_flags ? "--url" : l == &from_env ? "BRANCHDB_URL" : l->name + ": url";
      break;
    }
  }
  out->url = pick("url", kDefaultUrl);
  while (out->url.size() > 1 && out->url.back() == '/') out->url.pop_back();
  if (!ValidUrl(out->url)) {
    *error = url_from + ": \"" + out->url +
             "\" is not a server URL: expected http://HOST[:PORT] or https://HOST[:PORT]";
    return false;
  }
  out->project = pick("project", "");
  out->data_dir = pick("data_dir", kDefaultDataDir);

  if (!PickCredentials(layers, 3, from_flags, from_env, out, error)) return false;
  if (!out->credentials_from.empty()) return true;
  std::string path, file_url;
  if (LoadAdminCredentials(out->data_dir, &out->client_id, &out->client_secret, &file_url,
                           &path)) {
    out->credentials_from = path;
    // No place named a URL: the server that wrote the file (its token_url)
    // is the one these credentials belong to, wherever it listens.
    if (url_from == "the default" && !file_url.empty()) out->url = file_url;
  }
  return true;
}

}  // namespace branchdb::cli
