#include "server/hrana/stream.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <charconv>
#include <chrono>
#include <vector>

namespace branchdb::server::hrana {
namespace {

// 128 random bits as 32 hex characters.
std::string NewSecret() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Status BadBaton(const std::string& why) {
  return Status::InvalidArgument("baton: " + why, "BATON_INVALID");
}

}  // namespace

StreamTable::StreamTable(StreamTableOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<StreamTable>> StreamTable::Create(StreamTableOptions options) {
  if (options.clock == nullptr || options.idle_timeout_seconds < 1 || options.max_streams < 1) {
    return Status::InvalidArgument("StreamTable needs a clock, a timeout and max_streams >= 1");
  }
  std::unique_ptr<StreamTable> table(new StreamTable(std::move(options)));
  if (table->options_.sweep_interval_ms > 0) {
    table->sweeper_ = std::thread([t = table.get()] { t->SweeperLoop(); });
  }
  return table;
}

StreamTable::~StreamTable() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  stop_cv_.SignalAll();
  if (sweeper_.joinable()) sweeper_.join();
  std::map<uint64_t, Entry> entries;
  {
    MutexLock l(mu_);
    entries.swap(entries_);
  }
  for (auto& [id, e] : entries) {
    if (!e.in_use) e.stream->DropConnection();
  }
}

void StreamTable::SweeperLoop() {
  MutexLock l(mu_);
  while (!stopping_) {
    stop_cv_.WaitFor(mu_, std::chrono::milliseconds(options_.sweep_interval_ms));
    if (stopping_) break;
    l.Unlock();
    (void)Sweep();
    l.Lock();
  }
}

Result<std::shared_ptr<Stream>> StreamTable::Open(const std::string& project,
                                                  const std::string& branch,
                                                  const std::string& owner) {
  auto stream = std::make_shared<Stream>();
  stream->project = project;
  stream->branch = branch;
  stream->owner = owner;
  MutexLock l(mu_);
  if (open_ >= options_.max_streams) {
    return Status::Unavailable("the server has " + std::to_string(open_) +
                                   " Hrana streams open (libsql.max_streams); close streams "
                                   "or retry shortly",
                               "STREAMS_EXHAUSTED");
  }
  stream->id = next_id_++;
  Entry& e = entries_[stream->id];
  e.stream = stream;
  e.in_use = true;
  e.last_used_nanos = options_.clock->NowMonotonicNanos();
  ++open_;
  return stream;
}

Result<std::shared_ptr<Stream>> StreamTable::Checkout(const std::string& baton,
                                                      const std::string& project,
                                                      const std::string& branch,
                                                      const std::string& owner) {
  size_t dot = baton.find('.');
  uint64_t id = 0;
  if (dot == std::string::npos) return BadBaton("not a baton of this server");
  auto [end, ec] = std::from_chars(baton.data(), baton.data() + dot, id);
  if (ec != std::errc() || end != baton.data() + dot) return BadBaton("not a baton of this server");
  const std::string secret = baton.substr(dot + 1);
  MutexLock l(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return BadBaton("no such stream (closed, or expired long ago)");
  Entry& e = it->second;
  // The secret first: nothing about a stream is told to who cannot name it.
  if (e.secret.size() != secret.size() ||
      CRYPTO_memcmp(e.secret.data(), secret.data(), secret.size()) != 0) {
    return BadBaton("not the stream's current baton (each baton serves one request)");
  }
  if (e.stream->owner != owner || e.stream->project != project || e.stream->branch != branch) {
    return BadBaton("the stream belongs to another caller or branch");
  }
  if (e.expired) {
    return Status::InvalidArgument(
        "the stream expired after " + std::to_string(options_.idle_timeout_seconds) +
            " s without a request (libsql.stream_idle_timeout_seconds); its transaction was "
            "rolled back",
        "STREAM_EXPIRED");
  }
  if (e.in_use)
    return Status::InvalidArgument("the stream is in use by another request", "BATON_REUSED");
  e.in_use = true;
  e.secret.clear();  // a baton serves one request
  return e.stream;
}

std::string StreamTable::Return(const std::shared_ptr<Stream>& stream, bool close) {
  std::string secret = close ? "" : NewSecret();
  {
    MutexLock l(mu_);
    auto it = entries_.find(stream->id);
    if (it == entries_.end()) return "";
    if (close || secret.empty()) {
      entries_.erase(it);
      --open_;
    } else {
      it->second.in_use = false;
      it->second.secret = secret;
      it->second.last_used_nanos = options_.clock->NowMonotonicNanos();
    }
  }
  if (close || secret.empty()) {
    stream->DropConnection();
    return "";
  }
  return std::to_string(stream->id) + "." + secret;
}

int StreamTable::Sweep() {
  const int64_t now = options_.clock->NowMonotonicNanos();
  const int64_t idle = options_.idle_timeout_seconds * 1'000'000'000;
  std::vector<std::shared_ptr<Stream>> expired;
  {
    MutexLock l(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = it->second;
      if (e.in_use) {
        ++it;
        continue;
      }
      if (e.expired) {
        // Told STREAM_EXPIRED for ten more timeouts, then forgotten.
        if (now - e.last_used_nanos > 11 * idle) {
          it = entries_.erase(it);
          continue;
        }
      } else if (now - e.last_used_nanos > idle) {
        e.expired = true;
        --open_;
        expired.push_back(e.stream);
      }
      ++it;
    }
  }
  for (auto& s : expired) s->DropConnection();  // outside mu_: closing rolls back
  return static_cast<int>(expired.size());
}

int StreamTable::Count() const {
  MutexLock l(mu_);
  return open_;
}

}  // namespace branchdb::server::hrana
