// Catalog::BeginImport and its ImportWriter: a new branch from an uploaded
// SQLite file, written in bounded pieces to a hidden timeline and named in one
// catalog step at the end (see ImportWriter in catalog.h).
#include <cstring>

#include "catalog/catalog_internal.h"

namespace branchdb::catalog {
namespace {

constexpr size_t kPageSize = storage::kPageSize;
constexpr char kMagic[] = "SQLite format 3";  // 16 bytes with its NUL

Status Invalid(const std::string& msg) {
  return Status::InvalidArgument("body: " + msg, "invalid_database");
}

uint32_t BigEndian(const char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Checks page 1's header; returns it with a WAL-mode file format (2) set to
// rollback mode (1), as the branch is the main database file alone.
Result<std::string> CheckFirstPage(std::string_view page) {
  if (std::memcmp(page.data(), kMagic, sizeof kMagic) != 0) {
    return Invalid("expected a SQLite database file");
  }
  uint32_t page_size = BigEndian(page.data() + 16, 2);
  if (page_size == 1) page_size = 65536;
  if (page_size != kPageSize) {
    return Invalid("page_size " + std::to_string(page_size) +
                   ": databases must use page_size 4096 (PRAGMA page_size=4096; VACUUM)");
  }
  std::string out(page);
  for (int off : {18, 19}) {
    unsigned char v = static_cast<unsigned char>(out[off]);
    if (v != 1 && v != 2) return Invalid("unsupported file format version");
    out[off] = 1;
  }
  return out;
}

// The database size the header states, or 0 when the header does not vouch for
// it (SQLite then uses the file size).
uint32_t HeaderPages(const std::string& page1) {
  uint32_t pages = BigEndian(page1.data() + 28, 4);
  bool valid = BigEndian(page1.data() + 24, 4) == BigEndian(page1.data() + 92, 4);
  return valid ? pages : 0;
}

Status QuickCheck(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &stmt, nullptr) != SQLITE_OK) {
    return Invalid(std::string("not a readable SQLite database: ") + sqlite3_errmsg(db));
  }
  std::string result;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && result.size() < 1024) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    if (!result.empty()) result += "; ";
    result += t ? reinterpret_cast<const char*>(t) : "";
  }
  std::string error = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    if (Status vfs = storage::LastVfsError(db); !vfs.ok()) return vfs;
    return Invalid("not a readable SQLite database: " + error);
  }
  if (result != "ok") return Invalid("database fails quick_check: " + result);
  return Status::OK();
}

class ImportWriterImpl final : public ImportWriter {
 public:
  ImportWriterImpl(Catalog::Impl* im, std::shared_ptr<Project> p, std::string name,
                   TimelineId parent, Lsn base, TimelineId t, Actor actor)
      : im_(im), project_(std::move(p)), name_(std::move(name)), parent_(parent), base_(base),
        timeline_(t), head_(0), actor_(std::move(actor)) {}

  ~ImportWriterImpl() override { (void)Abort(); }

  Status Init() {
    auto head = project_->store->Head(timeline_);
    if (!head.ok()) return head.status();
    head_ = *head;
    return Status::OK();
  }

  Status Append(std::string_view pages) override {
    if (pages.empty()) return Status::InvalidArgument("no pages", "invalid_argument");
    return Write(pages, InternalAnnotation());
  }

  Result<BranchInfo> Finish(std::string_view last_pages, const std::string& summary) override {
    Annotation a;
    a.kind = "sql";
    a.client_id = actor_.client_id;
    a.request_id = actor_.request_id;
    a.summary = summary;
    Status st = Write(last_pages, EncodeAnnotation(a));
    if (st.ok() && pages_ == 0) st = Abort(Invalid("expected a SQLite database file (empty body)"));
    if (st.ok() && header_pages_ > pages_) {
      st = Abort(Invalid("truncated: the header states " + std::to_string(header_pages_) +
                         " pages, the file has " + std::to_string(pages_)));
    }
    if (st.ok()) st = Check();
    if (!st.ok()) return Abort(st);
    return Name();
  }

  uint64_t pages() const override { return pages_; }

 private:
  std::string InternalAnnotation() const {
    Annotation a;
    a.kind = "internal";
    a.client_id = actor_.client_id;
    a.request_id = actor_.request_id;
    a.summary = "import of '" + name_ + "' in progress";
    return EncodeAnnotation(a);
  }

  // One commit of the given pages after those already written.
  Status Write(std::string_view bytes, const std::string& annotation) {
    if (!status_.ok()) return status_;
    if (bytes.size() % kPageSize != 0) {
      return Abort(Invalid("the file size is not a multiple of the page size 4096"));
    }
    uint64_t n = bytes.size() / kPageSize;
    if (pages_ + n > UINT32_MAX) return Abort(Invalid("too many pages"));
    std::string first;
    std::vector<storage::PageWrite> writes;
    writes.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view page = bytes.substr(i * kPageSize, kPageSize);
      if (pages_ + i == 0) {
        auto checked = CheckFirstPage(page);
        if (!checked.ok()) return Abort(checked.status());
        first = std::move(*checked);
        header_pages_ = HeaderPages(first);
        page = first;
      }
      writes.push_back({static_cast<storage::PageNo>(pages_ + i + 1), page});
    }
    auto lsn = project_->store->Commit(timeline_, head_, writes,
                                       static_cast<uint32_t>(pages_ + n), annotation);
    if (!lsn.ok()) return Abort(lsn.status());
    head_ = *lsn;
    pages_ += n;
    return Status::OK();
  }

  // PRAGMA quick_check on the written image, read-only at the hidden head.
  Status Check() {
    storage::ConnectionOptions o;
    o.store = project_->store;
    o.timeline = timeline_;
    o.as_of = head_;
    o.cache_pages = 256;  // bounded memory whatever the file's size
    auto db = storage::OpenConnection(o);
    if (!db.ok()) return db.status();
    return QuickCheck(db->get());
  }

  // The one catalog step that makes the import visible under its name.
  Result<BranchInfo> Name() {
    Catalog::Impl& im = *im_;
    auto locked = im.WriteProject(project_);  // NotFound once the project was deleted
    if (!locked.ok()) return Abort(locked.status());
    if (im.FindBranch(*project_, name_).ok()) {
      return Abort(Status::AlreadyExists("branch '" + name_ + "' exists", "branch_exists"));
    }
    BranchRow row;
    row.name = name_;
    row.timeline = timeline_;
    row.parent_timeline = parent_;
    row.branch_point = base_;
    row.created_micros = im.Now();
    if (Status st = im.InsertBranch(*project_, row); !st.ok()) return Abort(st);
    named_ = true;
    return im.MakeInfo(*project_, row, false);
  }

  // Drops the hidden timeline (once) and makes every later call fail with st.
  Status Abort(Status st = Status::FailedPrecondition("import abandoned", "import_aborted")) {
    if (status_.ok()) status_ = st;
    if (!named_ && !dropped_) {
      dropped_ = true;
      (void)project_->store->DropTimeline(timeline_);
    }
    return st;
  }

  Catalog::Impl* const im_;
  const std::shared_ptr<Project> project_;
  const std::string name_;
  const TimelineId parent_;
  const Lsn base_;
  const TimelineId timeline_;
  Lsn head_;
  const Actor actor_;
  uint64_t pages_ = 0;
  uint32_t header_pages_ = 0;
  Status status_;
  bool named_ = false;
  bool dropped_ = false;
};

}  // namespace

Result<std::unique_ptr<ImportWriter>> Catalog::BeginImport(const std::string& project,
                                                           const std::string& name,
                                                           const Actor& actor) {
  BRANCHDB_RETURN_IF_ERROR(ValidateBranchName(name));
  Impl& im = *impl_;
  auto pr = im.ReadProject(project);
  if (!pr.ok()) return pr.status();
  std::shared_ptr<Project> p = pr->project;  // the writer keeps it, and so its store
  if (im.FindBranch(*p, name).ok()) {
    return Status::AlreadyExists("branch '" + name + "' exists", "branch_exists");
  }
  auto parent = im.FindBranch(*p, p->info.default_branch);
  if (!parent.ok()) return parent.status();
  auto base = p->store->Head(parent->timeline);
  if (!base.ok()) return base.status();
  Annotation a;
  a.kind = "create";
  a.branch = name;
  a.client_id = actor.client_id;
  a.request_id = actor.request_id;
  a.target = *base;
  // Store only: without a catalog row the timeline is an orphan that Open drops.
  auto t = p->store->CreateTimeline(*base, EncodeAnnotation(a));
  if (!t.ok()) return t.status();
  auto w = std::make_unique<ImportWriterImpl>(&im, p, name, parent->timeline, *base, *t, actor);
  BRANCHDB_RETURN_IF_ERROR(w->Init());
  return std::unique_ptr<ImportWriter>(std::move(w));
}

}  // namespace branchdb::catalog
