// Scopes, operations and the scope each operation needs.
#include <array>

#include "auth/auth.h"

namespace branchdb::auth {
namespace {

struct ScopeEntry {
  Scope scope;
  std::string_view name;
};
constexpr std::array<ScopeEntry, 9> kScopes = {{
    {Scope::kAdmin, "admin"},
    {Scope::kProjectsRead, "projects:read"},
    {Scope::kProjectsWrite, "projects:write"},
    {Scope::kBranchesRead, "branches:read"},
    {Scope::kBranchesWrite, "branches:write"},
    {Scope::kSqlRead, "sql:read"},
    {Scope::kSqlWrite, "sql:write"},
    {Scope::kBranchesPromoteProtected, "branches:promote_protected"},
    {Scope::kBranchesProtect, "branches:protect"},
}};

// The scopes that grant `s`: itself, admin, and the write scope for a read scope.
uint32_t Granting(Scope s) {
  uint32_t bits = static_cast<uint32_t>(s) | static_cast<uint32_t>(Scope::kAdmin);
  switch (s) {
    case Scope::kProjectsRead: bits |= static_cast<uint32_t>(Scope::kProjectsWrite); break;
    case Scope::kBranchesRead: bits |= static_cast<uint32_t>(Scope::kBranchesWrite); break;
    case Scope::kSqlRead: bits |= static_cast<uint32_t>(Scope::kSqlWrite); break;
    default: break;
  }
  return bits;
}

}  // namespace

std::string_view ScopeName(Scope scope) {
  for (const auto& e : kScopes) {
    if (e.scope == scope) return e.name;
  }
  return "unknown";
}

std::optional<Scope> ParseScopeName(std::string_view name) {
  for (const auto& e : kScopes) {
    if (e.name == name) return e.scope;
  }
  return std::nullopt;
}

ScopeSet::ScopeSet(std::initializer_list<Scope> scopes) {
  for (Scope s : scopes) Add(s);
}

Result<ScopeSet> ScopeSet::Parse(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("empty scope");
  ScopeSet set;
  size_t pos = 0;
  while (true) {
    size_t sp = text.find(' ', pos);
    std::string_view token = text.substr(pos, sp == std::string_view::npos ? sp : sp - pos);
    if (token.empty()) return Status::InvalidArgument("malformed scope list");
    auto s = ParseScopeName(token);
    if (!s) return Status::InvalidArgument("unknown scope '" + std::string(token) + "'");
    set.Add(*s);
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  return set;
}

bool ScopeSet::Covers(Scope required) const { return (bits_ & Granting(required)) != 0; }

bool ScopeSet::CoversAll(const ScopeSet& other) const {
  for (const auto& e : kScopes) {
    if (other.Has(e.scope) && !Covers(e.scope)) return false;
  }
  return true;
}

std::vector<std::string> ScopeSet::Names() const {
  std::vector<std::string> out;
  for (const auto& e : kScopes) {
    if (Has(e.scope)) out.emplace_back(e.name);
  }
  return out;
}

std::string ScopeSet::ToString() const {
  std::string out;
  for (const auto& n : Names()) {
    if (!out.empty()) out += ' ';
    out += n;
  }
  return out;
}

namespace {
struct OperationEntry {
  Operation op;
  std::string_view name;
  Scope scope;
  bool write;
};
constexpr std::array<OperationEntry, 27> kOperations = {{
    {Operation::kListProjects, "list_projects", Scope::kProjectsRead, false},
    {Operation::kGetProject, "get_project", Scope::kProjectsRead, false},
    {Operation::kCreateProject, "create_project", Scope::kProjectsWrite, true},
    {Operation::kUpdateProject, "update_project", Scope::kProjectsWrite, true},
    {Operation::kDeleteProject, "delete_project", Scope::kProjectsWrite, true},
    {Operation::kListBranches, "list_branches", Scope::kBranchesRead, false},
    {Operation::kGetBranch, "get_branch", Scope::kBranchesRead, false},
    {Operation::kCreateBranch, "create_branch", Scope::kBranchesWrite, true},
    {Operation::kDeleteBranch, "delete_branch", Scope::kBranchesWrite, true},
    {Operation::kResetBranch, "reset_branch", Scope::kBranchesWrite, true},
    {Operation::kRollbackBranch, "rollback_branch", Scope::kBranchesWrite, true},
    {Operation::kCreateCheckpoint, "create_checkpoint", Scope::kBranchesWrite, true},
    {Operation::kListCheckpoints, "list_checkpoints", Scope::kBranchesRead, false},
    {Operation::kDiffBranch, "diff_branch", Scope::kBranchesRead, false},
    {Operation::kPromoteBranch, "promote_branch", Scope::kBranchesWrite, true},
    {Operation::kPromoteProtectedBranch, "promote_protected_branch",
     Scope::kBranchesPromoteProtected, true},
    {Operation::kSqlRead, "sql_read", Scope::kSqlRead, false},
    {Operation::kSqlWrite, "sql_write", Scope::kSqlWrite, true},
    {Operation::kExportBranch, "export_branch", Scope::kSqlRead, false},
    {Operation::kIssueReadCredential, "issue_read_credential", Scope::kSqlRead, false},
    {Operation::kIssueReadWriteCredential, "issue_read_write_credential", Scope::kSqlWrite,
     true},
    {Operation::kManageClients, "manage_clients", Scope::kAdmin, true},
    {Operation::kRotateKeys, "rotate_keys", Scope::kAdmin, true},
    {Operation::kIntrospectAnyToken, "introspect_any_token", Scope::kAdmin, false},
    {Operation::kProtectBranch, "protect_branch", Scope::kBranchesProtect, true},
    {Operation::kReadAudit, "read_audit", Scope::kAdmin, false},
    {Operation::kReadCluster, "read_cluster", Scope::kAdmin, false},
}};

const OperationEntry& Find(Operation op) {
  for (const auto& e : kOperations) {
    if (e.op == op) return e;
  }
  return kOperations.back();  // unreachable for valid enum values; admin is the safe default
}
}  // namespace

Scope RequiredScope(Operation op) { return Find(op).scope; }
std::string_view OperationName(Operation op) { return Find(op).name; }
bool IsWriteOperation(Operation op) { return Find(op).write; }

bool ClientInfo::MayAccessProject(std::string_view project) const {
  if (projects.empty()) return true;
  for (const auto& p : projects) {
    if (p == project) return true;
  }
  return false;
}

Status ValidateBranchPattern(std::string_view pattern) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        "invalid branch pattern '" + std::string(pattern) + "': " + why +
            " (1-128 chars of A-Z a-z 0-9 . _ - / and at most one '*', e.g. \"agent/*\")",
        "invalid_branch_pattern");
  };
  if (pattern.empty() || pattern.size() > 128) return bad("length");
  int stars = 0;
  for (char c : pattern) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c == '*') {
      ++stars;
    } else if (!(alnum || c == '.' || c == '_' || c == '-' || c == '/')) {
      return bad("character");
    }
  }
  if (stars > 1) return bad("more than one '*'");
  return Status::OK();
}

bool BranchPatternMatches(std::string_view pattern, std::string_view name) {
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == name;
  std::string_view prefix = pattern.substr(0, star);
  std::string_view suffix = pattern.substr(star + 1);
  return name.size() >= prefix.size() + suffix.size() && name.substr(0, prefix.size()) == prefix &&
         name.substr(name.size() - suffix.size()) == suffix;
}

bool AnyBranchPatternMatches(const std::vector<std::string>& patterns, std::string_view name) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns) {
    if (BranchPatternMatches(p, name)) return true;
  }
  return false;
}

}  // namespace branchdb::auth
