// Diff support: connections at a state, schema reading, page-to-table map, and
// the schema diff.
#include <algorithm>
#include <set>

#include "catalog/diff_internal.h"

namespace branchdb::catalog {

// --- States -------------------------------------------------------------------

Result<Lsn> ResolveState(Catalog::Impl& im, Project& p, const StateRef& ref) {
  std::optional<BranchRow> row;
  if (!ref.branch.empty()) {
    auto r = im.FindBranch(p, ref.branch);
    if (!r.ok()) return r.status();
    row = *r;
  }
  if (ref.lsn) {
    if (*ref.lsn == 0) return Lsn{0};
    auto rec = p.store->GetRecord(*ref.lsn);
    if (!rec.ok() || rec->kind == storage::RecordKind::kDrop) {
      return Status::NotFound("checkpoint " + std::to_string(*ref.lsn) + " not found",
                              "checkpoint_not_found");
    }
    return *ref.lsn;
  }
  if (!row) return Status::InvalidArgument("a state needs a branch or an LSN", "invalid_argument");
  return p.store->Head(row->timeline);
}

StateConnection::~StateConnection() {
  db_.reset();
  if (scratch_ != 0 && project_) (void)project_->store->DropTimeline(scratch_);
}

Result<std::unique_ptr<StateConnection>> StateConnection::Open(Catalog::Impl& im,
                                                               std::shared_ptr<Project> p,
                                                               Lsn state) {
  auto sc = std::make_unique<StateConnection>();
  sc->project_ = p;
  sc->state_ = state;
  storage::ConnectionOptions o;
  o.store = p->store;
  o.as_of = state;
  if (state != 0) {
    for (const BranchRow& r : im.AllBranches(*p)) {
      auto resolved = p->store->ResolveLsn(r.timeline, state);
      if (resolved.ok() && *resolved == state) {
        o.timeline = r.timeline;
        break;
      }
    }
  }
  if (o.timeline == 0 && state != 0) {
    o.state = state;  // e.g. a rolled-back head that no live branch has now
  } else if (o.timeline == 0) {
    // The empty database: no record names it, so read it through a scratch
    // timeline created from nothing.
    Annotation a;
    a.kind = "internal";
    a.summary = "diff";
    auto t = p->store->CreateTimeline(state, EncodeAnnotation(a));
    if (!t.ok()) return t.status();
    sc->scratch_ = *t;
    o.timeline = *t;
    auto head = p->store->Head(*t);
    if (!head.ok()) return head.status();
    o.as_of = *head;
  }
  auto db = storage::OpenConnection(o);
  if (!db.ok()) return db.status();
  sc->db_ = std::move(*db);
  return sc;
}

Status StateReadError(sqlite3* db, const std::string& what) {
  if (Status vfs = storage::LastVfsError(db); !vfs.ok()) return vfs.WithContext(what);
  return Status::IOError(what + ": " + sqlite3_errmsg(db));
}

// --- Schema -------------------------------------------------------------------

Result<SchemaMap> ReadSchema(sqlite3* db) {
  SchemaMap out;
  {
    Stmt s(db, "SELECT type, name, tbl_name, coalesce(sql, ''), rootpage FROM sqlite_schema");
    if (!s.ok()) return StateReadError(db, "read schema");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      SchemaObject o;
      o.type = s.Text(0);
      o.name = s.Text(1);
      o.tbl_name = s.Text(2);
      o.sql = s.Text(3);
      o.rootpage = static_cast<uint32_t>(s.Int(4));
      o.internal = o.name.rfind("sqlite_", 0) == 0;
      out[{o.type, o.name}] = std::move(o);
    }
    if (rc != SQLITE_DONE) return StateReadError(db, "read schema");
  }
  for (auto& [key, o] : out) {
    if (o.type != "table") continue;
    Stmt s(db, "SELECT name, type, \"notnull\", coalesce(dflt_value, ''), pk "
               "FROM pragma_table_info(?1)");
    s.Bind(1, o.name);
    while (s.Step() == SQLITE_ROW) {
      ColumnDef c;
      c.name = s.Text(0);
      c.type = s.Text(1);
      c.notnull = s.Int(2) != 0;
      c.dflt = s.Text(3);
      c.pk = static_cast<int>(s.Int(4));
      o.columns.push_back(std::move(c));
    }
  }
  return out;
}

// --- Pages ----------------------------------------------------------------------

namespace {

uint32_t Be32(const std::string& b, size_t off) {
  if (off + 4 > b.size()) return 0;
  return (uint32_t(uint8_t(b[off])) << 24) | (uint32_t(uint8_t(b[off + 1])) << 16) |
         (uint32_t(uint8_t(b[off + 2])) << 8) | uint32_t(uint8_t(b[off + 3]));
}
uint32_t Be16(const std::string& b, size_t off) {
  if (off + 2 > b.size()) return 0;
  return (uint32_t(uint8_t(b[off])) << 8) | uint32_t(uint8_t(b[off + 1]));
}

struct Walker {
  const storage::PageStore& store;
  Lsn state;
  uint32_t db_size;
  PageMap& out;

  // Children of an interior page (cell child pointers + right-most pointer).
  std::vector<uint32_t> Children(const std::string& page, size_t hdr) {
    std::vector<uint32_t> kids;
    uint32_t n = Be16(page, hdr + 3);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t off = Be16(page, hdr + 12 + 2 * i);
      kids.push_back(Be32(page, off));
    }
    kids.push_back(Be32(page, hdr + 8));
    return kids;
  }

  Status Walk(uint32_t pgno, const std::string& owner, int depth) {
    if (pgno == 0 || pgno > db_size || depth > 40 || out.count(pgno)) return Status::OK();
    std::string page;
    BRANCHDB_RETURN_IF_ERROR(store.ReadPageAt(state, pgno, &page));
    size_t hdr = pgno == 1 ? 100 : 0;
    uint8_t type = page.size() > hdr ? uint8_t(page[hdr]) : 0;
    out[pgno] = PageOwner{owner, type == 0x0d};
    if (type != 0x02 && type != 0x05) return Status::OK();  // a leaf
    std::vector<uint32_t> kids = Children(page, hdr);
    if (kids.empty()) return Status::OK();
    // B-trees are balanced: if the first child is a leaf, all are.
    std::string first;
    if (kids[0] == 0 || kids[0] > db_size) return Status::OK();
    BRANCHDB_RETURN_IF_ERROR(store.ReadPageAt(state, kids[0], &first));
    uint8_t kid_type = first.empty() ? 0 : uint8_t(first[0]);
    if (kid_type == 0x02 || kid_type == 0x05) {
      for (uint32_t k : kids) BRANCHDB_RETURN_IF_ERROR(Walk(k, owner, depth + 1));
    } else {
      for (uint32_t k : kids) {
        if (k != 0 && k <= db_size) out.emplace(k, PageOwner{owner, kid_type == 0x0d});
      }
    }
    return Status::OK();
  }
};

}  // namespace

Result<PageMap> MapPages(const storage::PageStore& store, Lsn state, const SchemaMap& schema) {
  PageMap out;
  auto size = store.DbSizeAt(state);
  if (!size.ok()) return size.status();
  if (*size == 0) return out;
  Walker w{store, state, *size, out};
  BRANCHDB_RETURN_IF_ERROR(w.Walk(1, "sqlite_schema", 0));
  for (const auto& [key, o] : schema) {
    if (o.rootpage == 0) continue;
    BRANCHDB_RETURN_IF_ERROR(w.Walk(o.rootpage, o.type == "table" ? o.name : o.tbl_name, 0));
  }
  // Free list: trunk pages and their leaves hold no live content.
  std::string p1;
  BRANCHDB_RETURN_IF_ERROR(store.ReadPageAt(state, 1, &p1));
  uint32_t trunk = Be32(p1, 32);
  for (int guard = 0; trunk != 0 && trunk <= *size && guard < 1000000; ++guard) {
    std::string t;
    BRANCHDB_RETURN_IF_ERROR(store.ReadPageAt(state, trunk, &t));
    out.emplace(trunk, PageOwner{});
    uint32_t n = std::min<uint32_t>(Be32(t, 4), (storage::kPageSize - 8) / 4);
    for (uint32_t i = 0; i < n; ++i) out.emplace(Be32(t, 8 + 4 * i), PageOwner{});
    trunk = Be32(t, 0);
  }
  return out;
}

namespace {
// SQLite varint at b[*off] (1..9 bytes, big-endian 7-bit groups).
uint64_t Varint(const std::string& b, size_t* off) {
  uint64_t v = 0;
  for (int i = 0; i < 9 && *off < b.size(); ++i) {
    uint8_t c = uint8_t(b[(*off)++]);
    if (i == 8) return (v << 8) | c;
    v = (v << 7) | (c & 0x7f);
    if (!(c & 0x80)) return v;
  }
  return v;
}
}  // namespace

Status LeafRowids(const storage::PageStore& store, Lsn state, storage::PageNo pgno,
                  std::vector<int64_t>* out) {
  std::string page;
  BRANCHDB_RETURN_IF_ERROR(store.ReadPageAt(state, pgno, &page));
  size_t hdr = pgno == 1 ? 100 : 0;
  if (page.size() <= hdr || uint8_t(page[hdr]) != 0x0d) {
    return Status::Corruption("page " + std::to_string(pgno) + " is not a table leaf");
  }
  uint32_t n = Be16(page, hdr + 3);
  for (uint32_t i = 0; i < n; ++i) {
    size_t off = Be16(page, hdr + 8 + 2 * i);
    (void)Varint(page, &off);  // payload size
    out->push_back(static_cast<int64_t>(Varint(page, &off)));
  }
  return Status::OK();
}

// --- Schema diff ------------------------------------------------------------------

namespace {

std::vector<std::string> DumpLines(const SchemaMap& m) {
  std::vector<std::string> lines;
  for (const auto& [key, o] : m) {
    if (o.internal || o.sql.empty()) continue;
    std::string sql = o.sql + ";";
    size_t start = 0;
    while (start <= sql.size()) {
      size_t end = sql.find('\n', start);
      if (end == std::string::npos) end = sql.size();
      lines.push_back(sql.substr(start, end - start));
      start = end + 1;
    }
  }
  return lines;
}

// Unified diff of two line lists (LCS), 3 lines of context.
std::string UnifiedDiff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                        const std::string& name_a, const std::string& name_b) {
  size_t n = a.size(), m = b.size();
  // ops: ' ' keep, '-' from a, '+' from b.
  std::vector<std::pair<char, std::string>> ops;
  if (n * m <= 4'000'000) {
    std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] == b[j]) {
        ops.push_back({' ', a[i++]});
        ++j;
      } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
        ops.push_back({'-', a[i++]});  // removals first, as diff -u prints them
      } else {
        ops.push_back({'+', b[j++]});
      }
    }
  } else {
    for (const auto& l : a) ops.push_back({'-', l});
    for (const auto& l : b) ops.push_back({'+', l});
  }
  bool any = std::any_of(ops.begin(), ops.end(), [](auto& o) { return o.first != ' '; });
  if (!any) return "";
  std::string out = "--- " + name_a + "\n+++ " + name_b + "\n";
  const size_t kCtx = 3;
  size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].first == ' ') {
      ++k;
      continue;
    }
    // A hunk from the first change at k, extended while changes are close.
    size_t start = k >= kCtx ? k - kCtx : 0;
    size_t end = k;
    while (end < ops.size()) {
      if (ops[end].first != ' ') {
        ++end;
        continue;
      }
      size_t run = end;
      while (run < ops.size() && ops[run].first == ' ') ++run;
      if (run == ops.size() || run - end > 2 * kCtx) {
        end = std::min(ops.size(), end + kCtx);
        break;
      }
      end = run;
    }
    size_t a_line = 1, b_line = 1;
    for (size_t x = 0; x < start; ++x) {
      if (ops[x].first != '+') ++a_line;
      if (ops[x].first != '-') ++b_line;
    }
    size_t a_count = 0, b_count = 0;
    for (size_t x = start; x < end; ++x) {
      if (ops[x].first != '+') ++a_count;
      if (ops[x].first != '-') ++b_count;
    }
    out += "@@ -" + std::to_string(a_count ? a_line : a_line - 1) + "," +
           std::to_string(a_count) + " +" + std::to_string(b_count ? b_line : b_line - 1) + "," +
           std::to_string(b_count) + " @@\n";
    for (size_t x = start; x < end; ++x) out += ops[x].first + ops[x].second + "\n";
    k = end;
  }
  return out;
}

}  // namespace

Result<SchemaDiff> Catalog::DiffSchema(const std::string& project, const StateRef& from,
                                       const StateRef& to) {
  Impl& im = *impl_;
  std::unique_ptr<StateConnection> a, b;
  {
    auto pr = im.ReadProject(project);
    if (!pr.ok()) return pr.status();
    auto la = ResolveState(im, **pr, from);
    if (!la.ok()) return la.status();
    auto lb = ResolveState(im, **pr, to);
    if (!lb.ok()) return lb.status();
    auto ca = StateConnection::Open(im, pr->project, *la);
    if (!ca.ok()) return ca.status();
    auto cb = StateConnection::Open(im, pr->project, *lb);
    if (!cb.ok()) return cb.status();
    a = std::move(*ca);
    b = std::move(*cb);
  }
  // The connections hold the project's store; the comparison runs unlocked.
  auto sa = ReadSchema(a->db());
  if (!sa.ok()) return sa.status();
  auto sb = ReadSchema(b->db());
  if (!sb.ok()) return sb.status();
  SchemaDiff d;
  d.from_lsn = a->state();
  d.to_lsn = b->state();
  std::set<std::pair<std::string, std::string>> keys;
  for (auto& [k, o] : *sa) if (!o.internal) keys.insert(k);
  for (auto& [k, o] : *sb) if (!o.internal) keys.insert(k);
  for (const auto& k : keys) {
    auto ia = sa->find(k);
    auto ib = sb->find(k);
    SchemaObjectDiff od;
    od.type = k.first;
    od.name = k.second;
    if (ia == sa->end()) {
      od.change = "added";
      od.new_sql = ib->second.sql;
      for (auto& c : ib->second.columns) od.columns_added.push_back(c.name);
    } else if (ib == sb->end()) {
      od.change = "removed";
      od.old_sql = ia->second.sql;
      for (auto& c : ia->second.columns) od.columns_removed.push_back(c.name);
    } else {
      const SchemaObject& x = ia->second;
      const SchemaObject& y = ib->second;
      if (x.sql == y.sql && x.columns == y.columns) continue;
      od.change = "changed";
      od.old_sql = x.sql;
      od.new_sql = y.sql;
      for (const ColumnDef& c : y.columns) {
        auto it = std::find_if(x.columns.begin(), x.columns.end(),
                               [&](const ColumnDef& o) { return o.name == c.name; });
        if (it == x.columns.end()) od.columns_added.push_back(c.name);
        else if (!(*it == c)) od.columns_changed.push_back(c.name);
      }
      for (const ColumnDef& c : x.columns) {
        auto it = std::find_if(y.columns.begin(), y.columns.end(),
                               [&](const ColumnDef& o) { return o.name == c.name; });
        if (it == y.columns.end()) od.columns_removed.push_back(c.name);
      }
    }
    d.objects.push_back(std::move(od));
  }
  d.unified = UnifiedDiff(DumpLines(*sa), DumpLines(*sb), "schema@" + std::to_string(d.from_lsn),
                          "schema@" + std::to_string(d.to_lsn));
  return d;
}

}  // namespace branchdb::catalog
