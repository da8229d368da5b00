#include "server/object_storage/segment_uploader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <map>
#include <sstream>
#include <vector>

#include "base/mutex.h"
#include "catalog/catalog.h"
#include "server/config.h"
#include "server/http/metrics.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/bucket_log.h"
#include "storage/log_format.h"
#include "storage/segment_reader.h"

namespace branchdb::server {
namespace {

// The number of "seg-NNNNNN.log"; -1 for any other name.
int64_t SegmentNumber(const std::string& name) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".log";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size() - kSuffix.size();
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(begin, end, n);
  return ec == std::errc() && ptr == end ? n : -1;
}

using Uploaded = UploadRecord::Sealed;
using Tail = UploadRecord::Tail;

constexpr std::string_view kTailTag = "tail:";  // the record's tail line
constexpr std::string_view kLeftOutTag = "skip:";  // an output an older build left out

struct Pending {
  std::string project;
  std::string name;
  uint64_t size = 0;
  // A compaction's output whose records the bucket holds (OutputFate::
  // kRedundant): it goes up after the tail, and remote commits never wait
  // for it.
  bool redundant = false;
};

}  // namespace

std::string SegmentName(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "seg-%06llu.log", static_cast<unsigned long long>(number));
  return buf;
}

UploadRecord UploadRecord::Parse(std::string_view text) {
  UploadRecord r;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name, second, third;
    int64_t epoch = 0;  // absent: 0 (a record from before epochs named keys)
    if (!(fields >> name >> second >> third)) continue;
    if (name.rfind(kLeftOutTag, 0) == 0) {
      r.left_out.insert(name.substr(kLeftOutTag.size()));
      continue;
    }
    fields >> epoch;
    uint64_t a = 0, b = 0;
    std::from_chars(second.data(), second.data() + second.size(), a);
    if (name.rfind(kTailTag, 0) == 0) {
      std::from_chars(third.data(), third.data() + third.size(), b);
      r.tail = Tail{name.substr(kTailTag.size()), a, b};
      continue;
    }
    r.sealed[name] = {a, third, epoch};
  }
  return r;
}

std::string UploadRecord::Format() const {
  std::string text;
  for (const auto& [name, u] : sealed) {
    text += name + " " + std::to_string(u.size) + " " + u.etag +
            (u.epoch > 0 ? " " + std::to_string(u.epoch) : "") + "\n";
  }
  // A build that reads "NAME SIZE ETAG" lines only takes these for segments
  // that do not exist.
  for (const std::string& name : left_out) text += std::string(kLeftOutTag) + name + " 0 -\n";
  if (!tail.name.empty()) {
    text += std::string(kTailTag) + tail.name + " " + std::to_string(tail.offset) + " " +
            std::to_string(tail.lsn) + "\n";
  }
  return text;
}

std::string UploadRecordPath(const std::string& data_dir, const std::string& project_id) {
  return JoinPath(JoinPath(data_dir, "object_storage"), project_id + ".uploaded");
}

OutputFate CompactionOutputFate(Env* env, const std::string& dir, const std::string& name,
                                const std::function<bool(const std::string&)>& accounted,
                                SegmentHeaders* headers) {
  const std::string path = JoinPath(dir, name);
  SegmentHeaders once;  // without a cache: read, and forgotten
  SegmentHeaders* h = headers != nullptr ? headers : &once;
  auto size = env->GetFileSize(path);
  if (!size.ok()) return OutputFate::kNotOutput;  // uploaded as any segment (or not found)
  auto facts = h->Get(env, path, *size, /*trailer=*/false);
  if (!facts.ok() || !facts->output) return OutputFate::kNotOutput;
  OutputFate fate = OutputFate::kRedundant;
  for (uint64_t number : facts->supersedes) {
    const std::string superseded = SegmentName(number);
    if (accounted(superseded)) continue;
    if (!env->FileExists(JoinPath(dir, superseded))) return OutputFate::kOnlyCopy;
    fate = OutputFate::kWaits;  // it goes up first (it is sealed), or is deleted
  }
  return fate;
}

std::function<bool(uint64_t segment)> RewritableSegments(Env* env, const std::string& data_dir,
                                                         const std::string& project_id) {
  auto text = env->ReadFileToString(UploadRecordPath(data_dir, project_id));
  // No record (none uploaded yet, or unreadable): nothing may be rewritten.
  auto rec = std::make_shared<const UploadRecord>(text.ok() ? UploadRecord::Parse(*text)
                                                            : UploadRecord());
  return [rec](uint64_t segment) { return rec->sealed.count(SegmentName(segment)) != 0; };
}

std::string SegmentObjectKey(const std::string& prefix, const std::string& project_id,
                             const std::string& segment_name, int64_t epoch) {
  return (prefix.empty() ? "" : prefix + "/") + project_id + "/" + EpochDir(epoch) + segment_name;
}

std::string TailChunkKey(const std::string& prefix, const std::string& project_id,
                         const std::string& segment_name, uint64_t offset, int64_t epoch) {
  return SegmentObjectKey(prefix, project_id, TailChunkSuffix(segment_name, offset), epoch);
}

struct SegmentUploader::Impl {
  // One project's uploads: a pass's and a remote waiter's take its mu.
  struct Project {
    Mutex mu;  // before Impl::mu
    bool loaded GUARDED_BY(mu) = false;  // the state file was read
    UploadRecord rec GUARDED_BY(mu);  // what is in the bucket
    // Uploads started by waiters, and the last one's outcome (group commit:
    // a waiter fails with an upload that started after it arrived).
    uint64_t attempts GUARDED_BY(mu) = 0;
    Status last_error GUARDED_BY(mu);
    // A remote waiter's upload is running: its tail records stay in memory
    // (tail_unrecorded) and the next pass writes them to the state file.
    bool waiter GUARDED_BY(mu) = false;
    bool tail_unrecorded GUARDED_BY(mu) = false;
    // The tail's recorded point last reported behind (UploadTail): logged once.
    std::string behind_reported GUARDED_BY(mu);
    // Tail chunks in the bucket, by segment name, as listed once for the
    // epoch `chunks_epoch` (-1: not listed since this uploader started)
    // (DropLeftoverChunks).
    std::map<std::string, std::vector<std::string>> listed_chunks GUARDED_BY(mu);
    int64_t chunks_epoch GUARDED_BY(mu) = -1;
  };

  SegmentUploaderOptions options;
  std::unique_ptr<objstore::S3Client> client;
  std::string projects_dir;
  std::string state_dir;

  Mutex pass_mu ACQUIRED_BEFORE(projects_mu);  // held for a whole pass
  Mutex projects_mu ACQUIRED_BEFORE(mu);       // held briefly
  std::map<std::string, std::shared_ptr<Project>> projects GUARDED_BY(projects_mu);

  mutable Mutex mu;  // a leaf
  UploadStats stats GUARDED_BY(mu);
  SegmentHeaders headers;  // of the segments FindPending found waiting (its own lock)
  PassThread passes;  // last: stopped (joined) before the rest goes

  std::string StatePath(const std::string& project) const {
    return UploadRecordPath(options.data_dir, project);
  }

  std::shared_ptr<Project> GetProject(const std::string& id) {
    MutexLock l(projects_mu);
    auto& p = projects[id];
    if (!p) p = std::make_shared<Project>();
    return p;
  }

  void SetUploadedLsn(const std::string& project, storage::Lsn lsn) {
    MutexLock l(mu);
    stats.uploaded_lsn[project] = lsn;
  }

  // Reads the project's state file once.
  void Load(const std::string& project, Project& p) REQUIRES(p.mu) {
    if (p.loaded) return;
    p.loaded = true;
    auto text = options.env->ReadFileToString(StatePath(project));
    if (!text.ok()) return;
    p.rec = UploadRecord::Parse(*text);
    if (p.rec.tail.lsn > 0) SetUploadedLsn(project, p.rec.tail.lsn);
  }

  Status WriteState(const std::string& project, const Project& p) REQUIRES(p.mu) {
    return options.env->WriteFileAtomic(StatePath(project), p.rec.Format(), 0600);
  }


  Result<std::string> ReadRange(const std::string& path, uint64_t offset, uint64_t size) {
    auto file = options.env->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    std::string data(size, '\0');
    for (uint64_t done = 0; done < size;) {
      auto n = (*file)->Read(offset + done, size - done, data.data() + done);
      if (!n.ok()) return n.status();
      if (*n == 0) return Status::IOError(path + ": shorter than its size");
      done += *n;
    }
    return data;
  }

  // The project's sealed segments not yet uploaded, in number order: those
  // below its active segment `active` (0: unknown, then all but the newest).
  // A compaction numbers its output above the active segment; in the bucket
  // a sealed segment above the tail would make a restore take the tail's
  // chunks for an older segment's (BucketLog::TailSegment) and drop them, so
  // such an output waits until the segment below it is sealed. An output
  // also waits while a segment it supersedes is on disk and not yet up
  // (CompactionOutputFate: kWaits).
  std::vector<Pending> FindPending(const std::string& project, Project& p, uint64_t active)
      REQUIRES(p.mu) {
    std::vector<Pending> pending;
    const std::string dir = JoinPath(projects_dir, project);
    auto names = options.env->GetChildren(dir);
    if (!names.ok()) return pending;  // not a directory, or deleted meanwhile
    headers.Prune(dir, *names);  // compacted away
    std::vector<std::pair<int64_t, std::string>> segments;
    for (const std::string& name : *names) {
      if (int64_t n = SegmentNumber(name); n >= 0) segments.emplace_back(n, name);
    }
    std::sort(segments.begin(), segments.end());
    // Numbers from `limit` on are not uploaded yet: the newest is the
    // unsealed tail, or sealed a moment ago.
    const int64_t limit = active > 0 ? static_cast<int64_t>(active)
                          : segments.empty() ? 0 : segments.back().first;
    Load(project, p);
    const auto& sealed = p.rec.sealed;
    const auto& left_out = p.rec.left_out;
    auto accounted = [&sealed, &left_out](const std::string& name) {
      return sealed.count(name) != 0 || left_out.count(name) != 0;
    };
    for (const auto& [number, name] : segments) {
      if (sealed.count(name) || number >= limit) continue;
      // A stat; its header and trailer are read once while it waits here.
      const std::string path = JoinPath(dir, name);
      auto size = options.env->GetFileSize(path);
      if (!size.ok()) continue;
      auto facts = headers.Get(options.env, path, *size, /*trailer=*/true);
      if (!facts.ok() || !facts->sealed) continue;
      const OutputFate fate = CompactionOutputFate(options.env, dir, name, accounted, &headers);
      if (fate == OutputFate::kWaits) continue;
      // Not needed by a restore: only once the store says which segment is
      // active (without it, the highest number may be an output above it).
      if (fate == OutputFate::kRedundant && active == 0) continue;
      pending.push_back({project, name, *size, fate == OutputFate::kRedundant});
    }
    return pending;
  }

  // Deletes the tail chunks of a segment whose sealed copy is verified in
  // the bucket (best effort: a chunk left behind is only garbage).
  // The chunks of segment name that epoch wrote (those of older epochs, and
  // those a crash left: DropLeftoverChunks).
  void DropTailChunks(const std::string& project, const std::string& name, int64_t epoch) {
    const std::string dir = SegmentObjectKey(options.prefix, project, "tail/" + name + "/", epoch);
    auto listed = client->ListAll(dir);
    if (!listed.ok()) return;
    for (const objstore::ObjectInfo& o : *listed) (void)client->Delete(o.key);
  }

  // Deletes the tail chunks, of `epoch` or an older one, of the segments
  // recorded verified in the bucket (p.rec.sealed: uploaded by this node, or
  // taken by the restore it took the project over with): older epochs'
  // (DropTailChunks deletes only its own epoch's), and this epoch's that a
  // crash between a sealed upload's record and DropTailChunks left. A
  // restore reads no chunk of a segment whose sealed copy the fences allow
  // (bucket_log.h), and every later taker's fence allows those (its listing
  // sees them: sealed copies are never deleted). The project's keys are
  // listed once per epoch and uploader start; chunks an older epoch lands
  // after that listing are fenced off (never read) and stay. Best effort,
  // as DropTailChunks.
  // REQUIRES: this node owns the project with `epoch` (checked just before).
  void DropLeftoverChunks(const std::string& project, Project& p, int64_t epoch) REQUIRES(p.mu) {
    if (p.chunks_epoch != epoch) {
      const std::string root = SegmentObjectKey(options.prefix, project, "");
      auto listed = client->ListAll(root);
      if (!listed.ok()) return;  // tried again after the next seal
      p.listed_chunks.clear();
      for (const objstore::ObjectInfo& o : *listed) {
        int64_t e = 0;
        std::string rest, segment;
        uint64_t offset = 0;
        if (!SplitEpoch(o.key.substr(root.size()), &e, &rest) || e > epoch) continue;
        if (ParseTailChunk(rest, &segment, &offset)) p.listed_chunks[segment].push_back(o.key);
      }
      p.chunks_epoch = epoch;
    }
    for (auto it = p.listed_chunks.begin(); it != p.listed_chunks.end();) {
      if (p.rec.sealed.count(it->first) == 0) {
        ++it;  // the only copy of its bytes, maybe: kept
        continue;
      }
      for (const std::string& key : it->second) (void)client->Delete(key);
      it = p.listed_chunks.erase(it);
    }
  }

  // The epoch this node may upload project with now (0 without [cluster]).
  Result<int64_t> MayUpload(const std::string& project) {
    return options.may_upload ? options.may_upload(project) : Result<int64_t>(int64_t{0});
  }

  // Uploads one sealed segment, verifies it and records it.
  Status Upload(const Pending& pd, Project& p) REQUIRES(p.mu) {
    const std::string path = JoinPath(JoinPath(projects_dir, pd.project), pd.name);
    auto data = ReadRange(path, 0, pd.size);
    if (!data.ok()) return data.status();
    auto epoch = MayUpload(pd.project);  // names the key: a late PUT is fenced off
    if (!epoch.ok()) return epoch.status();
    const std::string key = SegmentObjectKey(options.prefix, pd.project, pd.name, *epoch);
    auto put = client->Put(key, *data);
    if (!put.ok()) return put.status();
    auto head = client->Head(key);
    if (!head.ok()) return head.status();
    const std::string expected = objstore::ExpectedETag(*data, options.client_options);
    if (head->size != data->size() || head->etag != expected) {
      return Status::Corruption("uploaded " + key + " reads back as " +
                                std::to_string(head->size) + " bytes, ETag " + head->etag +
                                "; expected " + std::to_string(data->size()) + " bytes, ETag " +
                                expected);
    }
    p.rec.sealed[pd.name] = {data->size(), head->etag, *epoch};
    const bool was_left_out = p.rec.left_out.erase(pd.name) != 0;  // by an older build
    Status written = WriteState(pd.project, p);
    if (!written.ok()) {
      p.rec.sealed.erase(pd.name);  // uploaded again on a later pass: same bytes, same key
      if (was_left_out) p.rec.left_out.insert(pd.name);
      return written.WithContext("upload state of project " + pd.project);
    }
    headers.Forget(path);  // recorded: FindPending never asks again
    // Its chunks go only while this node still owns the project with that
    // epoch: a new owner may have restored from them (a paused old owner's
    // sealed copy, landing late, is fenced off; its chunks must stay). A
    // compaction's output never had chunks.
    if (pd.redundant) return Status::OK();
    if (auto still = MayUpload(pd.project); still.ok() && *still == *epoch) {
      DropTailChunks(pd.project, pd.name, *epoch);
      DropLeftoverChunks(pd.project, p, *epoch);
    }
    return Status::OK();
  }

  // Uploads the sealed segments in `pending` (those still missing); counts
  // them. OK, or the first error (after an unreachable bucket, the rest
  // waits).
  Status UploadSealed(const std::vector<Pending>& pending, Project& p) REQUIRES(p.mu) {
    Status first;
    for (const Pending& pd : pending) {
      if (passes.stopping()) return Status::Unavailable("the uploader is stopping");
      if (p.rec.sealed.count(pd.name)) continue;  // a waiter uploaded it meanwhile
      Status s = Upload(pd, p);
      MutexLock l(mu);
      if (s.ok()) {
        if (stats.lag_segments > 0) --stats.lag_segments;
        stats.lag_bytes -= std::min(stats.lag_bytes, pd.size);
        ++stats.uploaded_segments;
        stats.uploaded_bytes += pd.size;
        options.logger->info("event=s3_segment_uploaded project={} segment={} bytes={}",
                             pd.project, pd.name, pd.size);
        continue;
      }
      ++stats.errors;
      options.logger->warn("event=s3_upload_failed project={} segment={} error=\"{}\"",
                           pd.project, pd.name, s.ToString());
      if (first.ok()) first = s;
      if (s.IsUnavailable()) break;  // the bucket is unreachable: the rest waits
    }
    return first;
  }

  // Uploads the durable bytes of the active segment not yet in the bucket as
  // chunks of at most max_chunk_bytes, each recorded once it is in.
  // REQUIRES: every sealed segment below it uploaded.
  Status UploadTail(const std::string& project, Project& p, const storage::DurablePoint& d)
      REQUIRES(p.mu) {
    const std::string name = SegmentName(d.segment);
    if (p.rec.tail.name != name) p.rec.tail = Tail{name, 0, p.rec.tail.lsn};
    if (d.bytes < p.rec.tail.offset && d.lsn <= p.rec.tail.lsn) {
      // d was read before a remote waiter uploaded past it (a pass reads
      // every project's end first): nothing to do. Never a reset, which
      // would delete chunks that acknowledged commits are in.
      return Status::OK();
    }
    if (d.bytes < p.rec.tail.offset) {
      // The store holds less of the segment than its chunks in the bucket,
      // with records after the recorded point: it lost bytes (or its
      // directory was replaced) behind the uploader's back. The chunks may be
      // the only copy of acknowledged commits: they are neither deleted nor
      // written over. The tail waits for the segment's sealed copy, which
      // supersedes them (a restore prefers it: bucket_log.h); meanwhile
      // `remote` commits are refused.
      const std::string point = name + " " + std::to_string(p.rec.tail.offset);
      if (p.behind_reported != point) {
        p.behind_reported = point;
        options.logger->error(
            "event=s3_tail_behind project={} segment={} recorded={} recorded_lsn={} durable={} "
            "durable_lsn={}",
            project, name, p.rec.tail.offset, p.rec.tail.lsn, d.bytes, d.lsn);
      }
      return Status::Corruption("segment " + name + " holds " + std::to_string(d.bytes) +
                                    " durable bytes, fewer than the " +
                                    std::to_string(p.rec.tail.offset) +
                                    " its chunks in the bucket hold: they are kept, the tail "
                                    "waits for the segment's sealed copy",
                                "tail_behind");
    }
    const std::string path = JoinPath(JoinPath(projects_dir, project), name);
    while (p.rec.tail.offset < d.bytes) {
      const uint64_t offset = p.rec.tail.offset;
      const uint64_t len = std::min(d.bytes - offset, options.max_chunk_bytes);
      auto data = ReadRange(path, offset, len);
      if (!data.ok()) return data.status();
      auto epoch = MayUpload(project);  // names the key: a late PUT is fenced off
      if (!epoch.ok()) return epoch.status();
      const std::string key = TailChunkKey(options.prefix, project, name, offset, *epoch);
      auto put = client->Put(key, *data);
      if (!put.ok()) return put.status();
      const std::string expected = objstore::ExpectedETag(*data, options.client_options);
      if (!put->etag.empty() && put->etag != expected) {
        return Status::Corruption("uploaded " + key + " has ETag " + put->etag + "; expected " +
                                  expected);
      }
      const Tail before = p.rec.tail;
      p.rec.tail.offset = offset + len;
      if (p.rec.tail.offset == d.bytes) p.rec.tail.lsn = std::max(p.rec.tail.lsn, d.lsn);
      if (Status written = RecordTail(project, p); !written.ok()) {
        p.rec.tail = before;  // uploaded again (a superset, same key) on a later try
        return written.WithContext("upload state of project " + project);
      }
      MutexLock l(mu);
      ++stats.tail_chunks;
      stats.tail_bytes += len;
    }
    return RecordCovered(project, p, d.lsn);
  }

  // Records the tail's upload point in the state file; for a remote waiter
  // only in memory, written by the next pass: the acknowledgement needs the
  // bytes in the bucket, not the record (a sync and a rename per group commit,
  // as much as its PUT). A crash before the record only means that the next
  // chunk starts at the recorded offset, with the same bytes and more, under
  // the same key (or a newer epoch's, read first: bucket_log.h).
  Status RecordTail(const std::string& project, Project& p) REQUIRES(p.mu) {
    if (p.waiter) {
      p.tail_unrecorded = true;
      return Status::OK();
    }
    BRANCHDB_RETURN_IF_ERROR(WriteState(project, p));
    p.tail_unrecorded = false;
    return Status::OK();
  }

  // Records that every record up to lsn is in the bucket.
  Status RecordCovered(const std::string& project, Project& p, storage::Lsn lsn) REQUIRES(p.mu) {
    if (p.rec.tail.lsn < lsn) {
      const storage::Lsn before = p.rec.tail.lsn;
      p.rec.tail.lsn = lsn;
      if (Status written = RecordTail(project, p); !written.ok()) {
        p.rec.tail.lsn = before;
        return written.WithContext("upload state of project " + project);
      }
    }
    SetUploadedLsn(project, p.rec.tail.lsn);
    return Status::OK();
  }

  // The project's sealed segments, then (with its durable end, read first,
  // so that the segment it names is never taken for sealed) its tail.
  Status SyncProject(const std::string& project, Project& p,
                     const std::optional<storage::DurablePoint>& d) REQUIRES(p.mu) {
    if (auto may = MayUpload(project); !may.ok()) {
      p.loaded = false;  // read again once allowed (a takeover rewrites the file)
      p.rec = UploadRecord{};
      p.tail_unrecorded = false;
      p.listed_chunks.clear();
      p.chunks_epoch = -1;
      return may.status();
    }
    std::vector<Pending> pending = FindPending(project, p, d ? d->segment : 0);
    // The segments as written first, then the tail; the compactions' outputs
    // whose records the bucket holds last, by the pass only (a remote commit
    // never waits for one: they only make the output evictable).
    std::vector<Pending> outputs;
    std::erase_if(pending, [&outputs](const Pending& pd) {
      if (pd.redundant) outputs.push_back(pd);
      return pd.redundant;
    });
    Load(project, p);
    if (p.tail_unrecorded && !p.waiter) (void)RecordTail(project, p);  // retried next pass
    Status s = UploadSealed(pending, p);
    Status t = s.IsUnavailable() ? Status::OK() : SyncTail(project, p, pending, d);
    if (!p.waiter && !s.IsUnavailable() && !t.IsUnavailable()) {
      Status o = UploadSealed(outputs, p);
      if (s.ok()) s = o;
    }
    return s.ok() ? t : s;
  }

  // The tail after the sealed segments (pending: those found missing).
  Status SyncTail(const std::string& project, Project& p, const std::vector<Pending>& pending,
                  const std::optional<storage::DurablePoint>& d) REQUIRES(p.mu) {
    if (!d || d->segment == 0) return Status::OK();
    for (const Pending& pd : pending) {
      if (!p.rec.sealed.count(pd.name) && SegmentNumber(pd.name) < static_cast<int64_t>(d->segment)) {
        return Status::OK();  // the tail would not count: a segment before it is missing
      }
    }
    // Sealed since d was read, and uploaded whole: that copy covers d.
    const bool sealed = p.rec.sealed.count(SegmentName(d->segment)) != 0;
    Status t = sealed ? RecordCovered(project, p, d->lsn) : UploadTail(project, p, *d);
    if (!t.ok()) {
      MutexLock l(mu);
      ++stats.errors;
      options.logger->warn("event=s3_tail_upload_failed project={} segment={} error=\"{}\"",
                           project, SegmentName(d->segment), t.ToString());
    }
    return t;
  }

  std::map<std::string, SegmentUploaderOptions::ProjectEnd> DurableEnds() {
    if (!options.durable_ends) return {};
    return options.durable_ends();
  }

  Status Pass() {
    MutexLock pass(pass_mu);
    std::map<std::string, SegmentUploaderOptions::ProjectEnd> ends = DurableEnds();
    auto names = options.env->GetChildren(projects_dir);
    std::vector<std::string> ids = names.ok() ? *names : std::vector<std::string>{};
    std::sort(ids.begin(), ids.end());
    // The lag as of the pass's start, counted down as segments go up.
    uint64_t lag_segments = 0, lag_bytes = 0;
    for (const std::string& id : ids) {
      std::shared_ptr<Project> p = GetProject(id);
      auto end = ends.find(id);
      const uint64_t active = end == ends.end() ? 0 : end->second.durable.segment;
      MutexLock l(p->mu);
      for (const Pending& pd : FindPending(id, *p, active)) {
        ++lag_segments;
        lag_bytes += pd.size;
      }
    }
    {
      MutexLock l(mu);
      stats.lag_segments = lag_segments;
      stats.lag_bytes = lag_bytes;
      ++stats.passes;
    }
    Status first;
    for (const std::string& id : ids) {
      if (passes.stopping()) break;
      std::shared_ptr<Project> p = GetProject(id);
      auto end = ends.find(id);
      MutexLock l(p->mu);
      Status s = SyncProject(id, *p,
                             end == ends.end() ? std::nullopt
                                               : std::optional<storage::DurablePoint>(
                                                     end->second.durable));
      if (NotOurs(s)) continue;  // another node's (a cluster): not an error
      if (first.ok()) first = s;
      if (s.IsUnavailable()) break;  // the bucket is unreachable: the rest waits
    }
    return first;
  }

  Status WaiterSync(const std::string& project, Project& p, const storage::DurablePoint& d)
      REQUIRES(p.mu) {
    p.waiter = true;
    Status s = SyncProject(project, p, d);
    p.waiter = false;
    return s;
  }

  Status WaitUploaded(const std::string& project, storage::Lsn lsn) {
    std::shared_ptr<Project> p = GetProject(project);
    uint64_t arrived_after = 0;
    {
      MutexLock l(p->mu);
      if (p->rec.tail.lsn >= lsn) return Status::OK();
      arrived_after = p->attempts;
    }
    MutexLock l(p->mu);  // a leader uploading for others holds it
    Load(project, *p);
    if (p->rec.tail.lsn >= lsn) return Status::OK();  // covered by that upload
    if (p->attempts > arrived_after && !p->last_error.ok()) return Refused(p->last_error);
    ++p->attempts;
    std::map<std::string, SegmentUploaderOptions::ProjectEnd> ends = DurableEnds();
    auto end = ends.find(project);
    Status s = end == ends.end()
                   ? Status::NotFound("project " + project + " has no open store")
                   : WaiterSync(project, *p, end->second.durable);
    if (s.ok() && p->rec.tail.lsn < lsn) {
      s = Status::FailedPrecondition("LSN " + std::to_string(lsn) +
                                     " is not durable locally (uploaded up to " +
                                     std::to_string(p->rec.tail.lsn) + ")");
    }
    p->last_error = s;
    if (NotOurs(s)) return s;  // 503 not_owner / lease_lost: never acknowledged
    return s.ok() ? s : Refused(s);
  }

  static bool NotOurs(const Status& s) {
    return s.reason() == "not_owner" || s.reason() == "lease_lost" ||
           s.reason() == "etcd_unavailable";
  }

  static Status Refused(const Status& why) {
    return Status::Unavailable(
        "the commit is durable locally but could not be copied to object storage "
        "(durability = \"remote\"); it is not acknowledged: " + why.ToString(),
        "remote_durability_unavailable");
  }

};

SegmentUploader::SegmentUploader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SegmentUploader::~SegmentUploader() { impl_->passes.Stop(); }

Result<std::unique_ptr<SegmentUploader>> SegmentUploader::Start(
    SegmentUploaderOptions options, std::unique_ptr<objstore::S3Client> client) {
  if (options.env == nullptr || !options.logger || options.data_dir.empty() || !client) {
    return Status::InvalidArgument("SegmentUploader: env, logger, data_dir and client are required");
  }
  BRANCHDB_RETURN_IF_ERROR(client->CreateBucketIfMissing().WithContext(
      "object storage bucket " + options.client_options.bucket));
  auto impl = std::make_unique<Impl>();
  impl->projects_dir = JoinPath(options.data_dir, "projects");
  impl->state_dir = JoinPath(options.data_dir, "object_storage");
  BRANCHDB_RETURN_IF_ERROR(options.env->CreateDirs(impl->state_dir));
  impl->options = std::move(options);
  impl->client = std::move(client);
  Impl* raw = impl.get();
  std::unique_ptr<SegmentUploader> uploader(new SegmentUploader(std::move(impl)));
  raw->passes.Start(raw->options.interval_ms, [raw] { return raw->Pass(); });
  return uploader;
}

Status SegmentUploader::RunOnce() { return impl_->Pass(); }

Status SegmentUploader::WaitUploaded(const std::string& project, storage::Lsn lsn) {
  return impl_->WaitUploaded(project, lsn);
}

Result<std::unique_ptr<SegmentUploader>> StartSegmentUploader(
    const Config& config, Env* env, std::shared_ptr<spdlog::logger> logger,
    http::Metrics& metrics, catalog::Catalog* catalog,
    std::function<Result<int64_t>(const std::string& project_id)> may_upload) {
  SegmentUploaderOptions options;
  options.may_upload = std::move(may_upload);
  options.durable_ends = [catalog] {
    std::map<std::string, SegmentUploaderOptions::ProjectEnd> ends;
    for (const catalog::ProjectInfo& info : catalog->ListProjects()) {
      auto store = catalog->Store(info.name);
      if (store.ok()) ends[info.id] = {info.name, (*store)->DurableEnd()};
    }
    return ends;
  };
  options.data_dir = config.data_dir;
  options.prefix = config.object_storage_prefix;
  options.interval_ms = config.object_storage_upload_interval_ms;
  options.env = env;
  options.logger = logger;
  options.client_options = ObjectStorageClientOptions(config);
  options.client_options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(options.client_options);
  if (!client.ok()) return client.status();
  // Never the secret: the endpoint, bucket, prefix and key id only.
  logger->info("event=object_storage endpoint={} bucket={} prefix={} access_key_id={} durability={}",
               config.object_storage_endpoint, config.object_storage_bucket,
               config.object_storage_prefix, config.object_storage_access_key_id,
               config.object_storage_durability);
  auto uploader = SegmentUploader::Start(std::move(options), std::move(*client));
  if (!uploader.ok()) return uploader.status();
  metrics.DescribeGauge("branchdb_s3_upload_lag_segments",
                        "Sealed segments not yet uploaded to the bucket (as of the last pass).");
  metrics.DescribeGauge("branchdb_s3_upload_lag_bytes",
                        "Bytes of sealed segments not yet uploaded to the bucket.");
  metrics.DescribeCounter("branchdb_s3_uploaded_segments_total",
                          "Segments uploaded to the bucket and verified.");
  metrics.DescribeCounter("branchdb_s3_uploaded_bytes_total",
                          "Bytes of segments uploaded to the bucket and verified.");
  metrics.DescribeCounter("branchdb_s3_errors_total",
                          "Failed uploads, verifications, reads and upload-state writes.");
  metrics.DescribeCounter("branchdb_s3_upload_passes_total",
                          "Passes of the uploader over the projects' sealed segments.");
  metrics.DescribeCounter("branchdb_s3_tail_chunks_total",
                          "Chunks of unsealed segments' durable bytes uploaded to the bucket.");
  metrics.DescribeCounter("branchdb_s3_tail_bytes_total",
                          "Bytes of unsealed segments uploaded to the bucket as tail chunks.");
  metrics.DescribeGauge("branchdb_s3_uploaded_lsn",
                        "Per project: every record up to this LSN is in the bucket.");
  metrics.AddCollector([u = uploader->get(), catalog](http::Metrics& m) {
    const UploadStats s = u->stats();
    m.SetCounter("branchdb_s3_tail_chunks_total", {}, static_cast<double>(s.tail_chunks));
    m.SetCounter("branchdb_s3_tail_bytes_total", {}, static_cast<double>(s.tail_bytes));
    for (const catalog::ProjectInfo& info : catalog->ListProjects()) {
      auto it = s.uploaded_lsn.find(info.id);
      m.Set("branchdb_s3_uploaded_lsn", {{"project", info.name}},
            it == s.uploaded_lsn.end() ? 0.0 : static_cast<double>(it->second));
    }
    m.Set("branchdb_s3_upload_lag_segments", {}, static_cast<double>(s.lag_segments));
    m.Set("branchdb_s3_upload_lag_bytes", {}, static_cast<double>(s.lag_bytes));
    m.SetCounter("branchdb_s3_uploaded_segments_total", {}, static_cast<double>(s.uploaded_segments));
    m.SetCounter("branchdb_s3_uploaded_bytes_total", {}, static_cast<double>(s.uploaded_bytes));
    m.SetCounter("branchdb_s3_errors_total", {}, static_cast<double>(s.errors));
    m.SetCounter("branchdb_s3_upload_passes_total", {}, static_cast<double>(s.passes));
  });
  return uploader;
}

UploadStats SegmentUploader::stats() const {
  MutexLock l(impl_->mu);
  return impl_->stats;
}

}  // namespace branchdb::server
