"""branchdb: Python SDK for the branchdb HTTP API (copy-on-write SQLite branches).

Standard library only. Quick start::

    import branchdb
    client = branchdb.Client.from_env()          # BRANCHDB_URL, BRANCHDB_PROJECT, ...
    with client.ephemeral_branch("production", ttl=3600) as b:
        b.sql("UPDATE accounts SET balance = 0")
        print(b.sql("SELECT count(*) FROM accounts").scalar())

See docs/sdk-python.md.
"""

from .client import BranchHandle, Client, new_idempotency_key
from .errors import (ApiError, BadRequest, BranchdbError, ConcurrentWrite, ConfigurationError,
                     Conflict, IdempotencyKeyReused, NetworkError, NotFound, NotReplayable,
                     ParentMoved, PayloadTooLarge, PermissionDenied, RateLimited, ReplayFailed,
                     ServerError, StatementTimeout, Unauthenticated, Unavailable,
                     UnexpectedResponse, VerifyFailed)
from ._http import ClientCredentials, Response, StaticToken, TokenSource
from .models import (AuditEvent, AuditPage, Branch, Checkpoint, CheckpointPage, ClientInfo, ComputeState, Credential,
                     DataDiff, DataPatch, Diff, Export, NewClient, Project, PromotedAction,
                     PromoteResult,
                     PromoteVerify, RollbackResult, RowChange,
                     Schema, SchemaDiff, SchemaObject, SchemaObjectDiff, SqlResult,
                     StatementResult, TableDiff, Token, Usage, parse_time)

__version__ = "0.1.0"

__all__ = [
    "Client", "BranchHandle", "new_idempotency_key",
    "BranchdbError", "ConfigurationError", "NetworkError", "ApiError", "BadRequest",
    "Unauthenticated", "PermissionDenied", "NotFound", "StatementTimeout", "Conflict",
    "PayloadTooLarge", "IdempotencyKeyReused", "RateLimited", "ServerError", "Unavailable",
    "UnexpectedResponse", "ParentMoved", "NotReplayable", "ReplayFailed", "VerifyFailed",
    "ConcurrentWrite",
    "ClientCredentials", "StaticToken", "TokenSource", "Response",
    "Project", "Branch", "Checkpoint", "CheckpointPage", "StatementResult", "SqlResult",
    "RollbackResult", "PromoteResult", "PromotedAction", "PromoteVerify", "Schema", "SchemaObject", "SchemaDiff", "SchemaObjectDiff", "DataDiff", "DataPatch",
    "TableDiff", "RowChange", "Diff", "Credential", "ComputeState", "ClientInfo", "NewClient",
    "Export", "Token", "Usage", "AuditEvent", "AuditPage", "parse_time",
]
