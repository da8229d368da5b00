// Export and import, streamed: memory per transfer is one buffer of
// config.transfer_buffer_bytes, whatever the database's size.
//   GET  /v1/projects/{p}/branches/{b}/export[?lsn=N]   (application/vnd.sqlite3)
//   POST /v1/projects/{p}/import?branch=NAME            (body: a SQLite database file)
// Export pins one snapshot (a read transaction of a read-only connection) and
// sends that state's pages, read from the page store as stored (the VFS
// serves page 1 with an adjusted schema cookie), from a content provider, a
// buffer at a time. Import reads
// the body as it arrives into a buffer and appends each full buffer to the
// catalog's ImportWriter (a hidden timeline), which names the branch in one
// step once the whole file is in and passes quick_check: an import is atomic,
// also across a crash (catalog/catalog.h, ImportWriter).
#include <httplib.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::routes {
namespace {

constexpr size_t kPageSize = storage::kPageSize;

size_t BufferBytes(const Services& s) {
  int64_t b = std::max<int64_t>(s.config->transfer_buffer_bytes, kPageSize);
  return static_cast<size_t>(b) / kPageSize * kPageSize;
}

// One export's state, alive until its response is written (the content
// provider holds it): the project's store (held, so a deletion of the project
// meanwhile cuts the body short instead of pulling the store away), the read
// transaction that pins the snapshot, and the buffer.
class ExportStream {
 public:
  ExportStream(storage::SqliteHandle conn, std::shared_ptr<const storage::PageStore> store,
               storage::Lsn state, size_t buffer_bytes, http::Metrics* metrics)
      : conn_(std::move(conn)), store_(std::move(store)), state_(state),
        buffer_bytes_(buffer_bytes), metrics_(metrics) {}
  ExportStream(const ExportStream&) = delete;
  ExportStream& operator=(const ExportStream&) = delete;

  // Sends the pages from offset on, at most one buffer of them. REQUIRES:
  // offset a multiple of the page size (every earlier call sent whole pages).
  bool Send(size_t offset, size_t length, httplib::DataSink& sink) {
    size_t n = std::min(length, buffer_bytes_);
    if (buffer_.size() < n) {
      buffer_.resize(n);
      metrics_->SetMax(http::kTransferBufferPeak, {{"direction", "export"}},
                       static_cast<double>(buffer_.capacity()));
    }
    for (size_t done = 0; done < n; done += kPageSize) {
      auto pgno = static_cast<storage::PageNo>((offset + done) / kPageSize + 1);
      if (!store_->ReadPageAt(state_, pgno, &page_).ok()) {
        // The state is gone (collected, or the project deleted): the client
        // sees a short body.
        return false;
      }
      std::memcpy(buffer_.data() + done, page_.data(), std::min(kPageSize, n - done));
    }
    metrics_->Increment(http::kTransferChunks, {{"direction", "export"}});
    return sink.write(buffer_.data(), n);
  }

 private:
  storage::SqliteHandle conn_;
  const std::shared_ptr<const storage::PageStore> store_;
  const storage::Lsn state_;
  const size_t buffer_bytes_;
  http::Metrics* metrics_;
  std::string buffer_;
  std::string page_;
};

}  // namespace

void HandleExport(Call& c) {
  Services* s = &c.s;
  const httplib::Request& req = c.req;
  httplib::Response& res = c.res;
  const std::string& project = c.project;
  const std::string& branch = c.branch;
  BRANCHDB_TRY_SEND(res, lsn, QueryInt(req, "lsn", kLsnRange));
  catalog::ConnectionRequest r;
  r.read_only = true;
  if (*lsn) r.as_of = **lsn;
  BRANCHDB_TRY_SEND(res, conn, s->catalog->OpenBranchConnection(project, branch, r));
  sqlite3* db = conn->get();
  BRANCHDB_TRY_SEND(res, store, s->catalog->Store(project));
  // A read transaction pins one snapshot for the whole copy.
  if (sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_schema;", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    Status vfs = storage::LastVfsError(db);
    return http::SendError(res, !vfs.ok() ? vfs
                                          : Status::IOError(std::string("export failed: ") +
                                                                sqlite3_errmsg(db),
                                                            "sql_io_error"));
  }
  const storage::Lsn state = storage::SnapshotLsn(db);
  BRANCHDB_TRY_SEND(res, pages, (*store)->DbSizeAt(state));
  const size_t size = static_cast<size_t>(*pages) * kPageSize;
  res.set_header("X-Branchdb-Lsn", std::to_string(state));
  std::string name = branch;
  std::replace(name.begin(), name.end(), '/', '_');
  res.set_header("Content-Disposition",
                 "attachment; filename=\"" + project + "-" + name + ".sqlite\"");
  if (size == 0) return res.set_content("", "application/vnd.sqlite3");
  auto stream = std::make_shared<ExportStream>(std::move(*conn), std::move(*store), state,
                                               BufferBytes(*s), s->metrics);
  res.set_content_provider(size, "application/vnd.sqlite3",
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
  Services* s = &c.s;
  const httplib::Request& req = c.req;
  httplib::Response& res = c.res;
  const http::BodyReader& read = *c.body;
  auto refuse = [&](const Status& st) {
    Discard(read);
    http::SendError(res, st);
  };
  const std::string& project = c.project;
  std::string branch = req.get_param_value("branch");
  auto who = http::RequireAuth(*s, req, res, auth::Operation::kCreateBranch, project, branch);
  if (!who) return Discard(read);
  if (!s->auth->Allows(*who, auth::Operation::kSqlWrite, project, branch)) {
    return refuse(Status::PermissionDenied("import needs scope sql:write", "insufficient_scope"));
  }
  if (branch.empty()) {
    return refuse(Status::InvalidArgument("query parameter branch: the new branch's name",
                                          "invalid_argument"));
  }
  const uint64_t max_bytes = static_cast<uint64_t>(s->config->max_branch_bytes);
  if (req.has_header("Content-Length") &&
      req.get_header_value<uint64_t>("Content-Length") > max_bytes) {
    return refuse(TooLarge(max_bytes));
  }
  auto writer = s->catalog->BeginImport(project, branch, {who->client_id, c.ctx.request_id});
  if (!writer.ok()) return refuse(writer.status());
  ImportSink sink(writer->get(), BufferBytes(*s), max_bytes, s->metrics);
  bool whole = read([&sink](const char* data, size_t n) { return sink.Receive(data, n); });
  if (!whole) {
    return http::SendError(
        res, Status::InvalidArgument("body: the upload ended early", "bad_request"));
  }
  if (!sink.status().ok()) return http::SendError(res, sink.status());
  auto b = (*writer)->Finish(
      sink.rest(), "import of a " + std::to_string(sink.total()) + "-byte database");
  if (!b.ok()) return http::SendError(res, b.status());
  http::SendJson(res, 201, BranchJson(*b, s->config->idle_timeout_seconds));
}

}  // namespace branchdb::server::routes
