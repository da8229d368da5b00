// Export and import, streamed: memory per transfer is one buffer of
// config.transfer_buffer_bytes, whatever the database's size.
//   GET  /v1/projects/{p}/branches/{b}/export[?lsn=N]   (application/vnd.sqlite3)
//   POST /v1/projects/{p}/import?branch=NAME            (body: a SQLite database file)
// Export pins one state (sql::ExportSnapshot, server/sql/snapshot.h) and
// sends its database file from a content provider, a buffer at a time.
// Import reads the body as it arrives into a buffer and appends each full
// buffer to the catalog's ImportWriter (a hidden timeline), which names the
// branch in one step once the whole file is in and passes quick_check: an
// import is atomic, also across a crash (catalog/catalog.h, ImportWriter).
#include <httplib.h>

#include <algorithm>
#include <memory>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "server/guard/guard.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/sql/snapshot.h"

namespace branchdb::server::routes {
namespace {

constexpr size_t kPageSize = storage::kPageSize;

size_t BufferBytes(const Services& s) {
  int64_t b = std::max<int64_t>(s.config->transfer_buffer_bytes, kPageSize);
  return static_cast<size_t>(b) / kPageSize * kPageSize;
}

// One export, alive until its response is written (the content provider
// holds it): the pinned state (sql::ExportSnapshot) and the buffer.
class ExportStream {
 public:
  ExportStream(std::unique_ptr<sql::ExportSnapshot> snapshot, size_t buffer_bytes,
               http::Metrics* metrics)
      : snapshot_(std::move(snapshot)), buffer_bytes_(buffer_bytes), metrics_(metrics) {}
  ExportStream(const ExportStream&) = delete;
  ExportStream& operator=(const ExportStream&) = delete;

  // Sends the file from offset on, at most one buffer of it. REQUIRES:
  // offset a multiple of the page size (every earlier call sent whole pages).
  bool Send(size_t offset, size_t length, httplib::DataSink& sink) {
    size_t n = std::min(length, buffer_bytes_);
    if (buffer_.size() < n) {
      buffer_.resize(n);
      metrics_->SetMax(http::kTransferBufferPeak, {{"direction", "export"}},
                       static_cast<double>(buffer_.capacity()));
    }
    // The state gone (collected, or the project deleted): the client sees a
    // short body.
    if (!snapshot_->Read(offset, n, buffer_.data())) return false;
    metrics_->Increment(http::kTransferChunks, {{"direction", "export"}});
    return sink.write(buffer_.data(), n);
  }

 private:
  const std::unique_ptr<sql::ExportSnapshot> snapshot_;
  const size_t buffer_bytes_;
  http::Metrics* metrics_;
  std::string buffer_;
};

}  // namespace

void HandleExport(Call& c) {
  BRANCHDB_TRY_SEND(c.res, lsn, QueryInt(c.req, "lsn", kLsnRange));
  BRANCHDB_TRY_SEND(c.res, snapshot,
                    sql::ExportSnapshot::Open(*c.s.catalog, c.project, c.branch, *lsn));
  const uint64_t size = (*snapshot)->size_bytes();
  c.res.set_header("X-Branchdb-Lsn", std::to_string((*snapshot)->lsn()));
  std::string name = c.branch;
  std::replace(name.begin(), name.end(), '/', '_');
  c.res.set_header("Content-Disposition",
                   "attachment; filename=\"" + c.project + "-" + name + ".sqlite\"");
  if (size == 0) return c.res.set_content("", "application/vnd.sqlite3");
  auto stream = std::make_shared<ExportStream>(std::move(*snapshot), BufferBytes(c.s), c.s.metrics);
  c.res.set_content_provider(size, "application/vnd.sqlite3",
                             [stream](size_t offset, size_t length, httplib::DataSink& sink) {
                               return stream->Send(offset, length, sink);
                             });
}

namespace {

Status TooLarge(uint64_t max_bytes) {
  return Status::ResourceExhausted("body: the database exceeds the branch size cap of " +
                                       std::to_string(max_bytes) + " bytes (sql.max_branch_bytes)",
                                   "branch_size_limit");
}

// Reads an import's body into whole-page pieces of at most buffer_bytes and
// appends each full piece to the writer. After the first error it keeps
// reading (and discarding) the body, so that the connection stays in step.
class ImportSink {
 public:
  ImportSink(catalog::ImportWriter* writer, size_t buffer_bytes, uint64_t max_bytes,
             http::Metrics* metrics)
      : writer_(writer), buffer_bytes_(buffer_bytes), max_bytes_(max_bytes), metrics_(metrics) {}

  bool Receive(const char* data, size_t n) {
    if (!status_.ok()) return true;
    total_ += n;
    if (total_ > max_bytes_) {
      status_ = TooLarge(max_bytes_);
      return true;
    }
    while (n > 0 && status_.ok()) {
      if (buffer_.capacity() < buffer_bytes_) {
        buffer_.reserve(buffer_bytes_);
        metrics_->SetMax(http::kTransferBufferPeak, {{"direction", "import"}},
                         static_cast<double>(buffer_.capacity()));
      }
      size_t take = std::min(n, buffer_bytes_ - buffer_.size());
      buffer_.append(data, take);
      data += take;
      n -= take;
      if (buffer_.size() == buffer_bytes_) {
        status_ = writer_->Append(buffer_);
        metrics_->Increment(http::kTransferChunks, {{"direction", "import"}});
        buffer_.clear();
      }
    }
    return true;
  }

  const Status& status() const { return status_; }
  uint64_t total() const { return total_; }
  // The bytes after the last full piece.
  const std::string& rest() const { return buffer_; }

 private:
  catalog::ImportWriter* writer_;
  const size_t buffer_bytes_;
  const uint64_t max_bytes_;
  http::Metrics* metrics_;
  std::string buffer_;
  uint64_t total_ = 0;
  Status status_;
};

void Discard(const http::BodyReader& read) {
  (void)read([](const char*, size_t) { return true; });
}

}  // namespace

void HandleImport(Call& c) {
  const http::BodyReader& read = *c.body;
  auto refuse = [&](const Status& st) {
    Discard(read);
    http::SendError(c.res, st);
  };
  std::string branch = c.req.get_param_value("branch");
  auto who = http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kCreateBranch,
                               c.project, branch);
  if (!who) return Discard(read);
  if (!c.s.auth->Allows(*who, auth::Operation::kSqlWrite, c.project, branch)) {
    return refuse(Status::PermissionDenied("import needs scope sql:write", "insufficient_scope"));
  }
  if (branch.empty()) {
    return refuse(Status::InvalidArgument("query parameter branch: the new branch's name",
                                          "invalid_argument"));
  }
  const uint64_t max_bytes = static_cast<uint64_t>(c.s.config->max_branch_bytes);
  if (c.req.has_header("Content-Length") &&
      c.req.get_header_value<uint64_t>("Content-Length") > max_bytes) {
    return refuse(TooLarge(max_bytes));
  }
  guard::Refusal refused;
  if (c.s.guard != nullptr) {  // max_branches, max_bytes: early, on the declared length
    const uint64_t declared = c.req.has_header("Content-Length")
                                  ? c.req.get_header_value<uint64_t>("Content-Length")
                                  : 0;
    Status st = c.s.guard->CheckImport(c.project, who->client_id, declared, &refused);
    if (!st.ok()) {
      Discard(read);
      return http::SendError(c.res, st, refused.Details());
    }
  }
  auto writer = c.s.catalog->BeginImport(c.project, branch, {who->client_id, c.ctx.request_id});
  if (!writer.ok()) return refuse(writer.status());
  ImportSink sink(writer->get(), BufferBytes(c.s), max_bytes, c.s.metrics);
  bool whole = read([&sink](const char* data, size_t n) { return sink.Receive(data, n); });
  if (!whole) {
    return http::SendError(
        c.res, Status::InvalidArgument("body: the upload ended early", "bad_request"));
  }
  if (!sink.status().ok()) return http::SendError(c.res, sink.status());
  std::optional<guard::Guard::ProjectLock> quota_lock;
  if (c.s.guard != nullptr) {  // again on the real size, with the branch named under the lock
    quota_lock.emplace(c.s.guard->LockProject(c.project));
    Status st = c.s.guard->CheckImport(c.project, who->client_id, sink.total(), &refused);
    if (!st.ok()) return http::SendError(c.res, st, refused.Details());
  }
  auto b = (*writer)->Finish(sink.rest(),
                             "import of a " + std::to_string(sink.total()) + "-byte database");
  if (!b.ok()) return http::SendError(c.res, b.status());
  // A client with a maximum branch TTL makes only branches that expire
  // (docs/auth.md): the imported one gets that TTL.
  if (who->max_branch_ttl_seconds > 0) {
    Status st = c.s.catalog->SetTtl(c.project, branch, who->max_branch_ttl_seconds * 1000000);
    if (!st.ok()) return http::SendError(c.res, st);
    b = c.s.catalog->GetBranch(c.project, branch);
    if (!b.ok()) return http::SendError(c.res, b.status());
  }
  if (c.s.guard != nullptr) {
    c.s.guard->BranchCreated(c.project, branch, who->client_id);
    c.s.guard->Committed(c.project, branch, who->client_id);
  }
  http::SendJson(c.res, 201, BranchJson(*b, c.s.config->idle_timeout_seconds));
}

}  // namespace branchdb::server::routes
