"""SQLite schema of the local trace server.

The ``calls`` table is fixed here because two modules depend on it: the write
path (``upsert_batch`` etc.) and the query compiler (``_calls_query``). Other
tables (objects, tables, files, feedback) are added by the storage module.

Conventions for ``calls``:
- timestamps are TEXT in one fixed-width UTC form, ``2025-01-31T12:00:00.123456+00:00``
  (see ``format_timestamp``), so text order is time order and
  ``julianday()`` works on them;
- ``attributes``, ``inputs``, ``output``, ``summary``, ``input_refs`` and
  ``output_refs`` are JSON text (``output``/``summary`` NULL until the call ends);
- a start and an end of the same (project_id, id) are upserts into one row, in
  either order, any number of times.
"""

from __future__ import annotations

from datetime import UTC, datetime

CALLS_DDL = """
CREATE TABLE IF NOT EXISTS calls (
    project_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    trace_id     TEXT,
    parent_id    TEXT,
    op_name      TEXT,
    display_name TEXT,
    started_at   TEXT,
    ended_at     TEXT,
    exception    TEXT,
    attributes   TEXT NOT NULL DEFAULT '{}',
    inputs       TEXT NOT NULL DEFAULT '{}',
    output       TEXT,
    summary      TEXT,
    input_refs   TEXT NOT NULL DEFAULT '[]',
    output_refs  TEXT NOT NULL DEFAULT '[]',
    wb_user_id   TEXT,
    wb_run_id    TEXT,
    thread_id    TEXT,
    turn_id      TEXT,
    deleted_at   TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (project_id, started_at);
CREATE INDEX IF NOT EXISTS calls_trace ON calls (project_id, trace_id);
CREATE INDEX IF NOT EXISTS calls_parent ON calls (project_id, parent_id);
CREATE INDEX IF NOT EXISTS calls_op ON calls (project_id, op_name);
"""

# Columns added to ``calls`` after its first release, with their types: a database
# made before them gets them with ``ALTER TABLE ... ADD COLUMN`` (existing rows read
# NULL), then the indexes that use them. See ``Database.__init__``.
CALLS_ADDED_COLUMNS = (("thread_id", "TEXT"), ("turn_id", "TEXT"))
CALLS_MIGRATED_DDL = """
CREATE INDEX IF NOT EXISTS calls_thread ON calls (project_id, thread_id)
    WHERE thread_id IS NOT NULL;
"""

# Columns of ``calls`` that hold JSON text.
CALLS_JSON_COLUMNS = frozenset(
    {"attributes", "inputs", "output", "summary", "input_refs", "output_refs"}
)


def format_timestamp(value: datetime) -> str:
    """The one stored form of a timestamp: fixed-width ISO 8601 in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # %Y does not pad years below 1000 ("312-02-17..."), which fromisoformat rejects
    # on read and which would sort wrongly as text; pad it by hand.
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.%f+00:00")


# The other tables belong to the storage module alone.
#
# - ``objects``: one row per (project, object_id, digest); ``version_index``
#   counts every version ever made of the object (deleted ones too, as weave
#   does), ``is_latest`` marks the newest version not deleted.
# - ``tables`` + ``table_entries``: a table version is its ordered list of row
#   digests; keeping the order as rows (not one JSON array) makes a page of a
#   100,000-row table an index range instead of a parse of the whole list.
# - ``table_rows``: row values, content-addressed and shared by table versions.
# - ``files``: file bytes by digest.
# - ``feedback``: as weave's feedback table (``payload_dump`` is JSON text).
STORE_DDL = """
CREATE TABLE IF NOT EXISTS objects (
    project_id        TEXT NOT NULL,
    object_id         TEXT NOT NULL,
    digest            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    base_object_class TEXT,
    leaf_object_class TEXT,
    val_dump          TEXT NOT NULL,
    version_index     INTEGER NOT NULL,
    is_latest         INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    deleted_at        TEXT,
    wb_user_id        TEXT,
    PRIMARY KEY (project_id, object_id, digest)
);
CREATE INDEX IF NOT EXISTS objects_latest ON objects (project_id, object_id, is_latest);
CREATE TABLE IF NOT EXISTS tables (
    project_id TEXT NOT NULL,
    digest     TEXT NOT NULL,
    row_count  INTEGER NOT NULL,
    PRIMARY KEY (project_id, digest)
);
CREATE TABLE IF NOT EXISTS table_entries (
    project_id   TEXT NOT NULL,
    table_digest TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    row_digest   TEXT NOT NULL,
    PRIMARY KEY (project_id, table_digest, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS table_rows (
    project_id TEXT NOT NULL,
    digest     TEXT NOT NULL,
    val        TEXT NOT NULL,
    PRIMARY KEY (project_id, digest)
);
CREATE TABLE IF NOT EXISTS files (
    project_id TEXT NOT NULL,
    digest     TEXT NOT NULL,
    val        BLOB NOT NULL,
    PRIMARY KEY (project_id, digest)
);
CREATE TABLE IF NOT EXISTS feedback (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL,
    weave_ref      TEXT NOT NULL,
    wb_user_id     TEXT,
    creator        TEXT,
    created_at     TEXT NOT NULL,
    feedback_type  TEXT NOT NULL,
    payload_dump   TEXT NOT NULL,
    annotation_ref TEXT,
    runnable_ref   TEXT,
    call_ref       TEXT,
    trigger_ref    TEXT
);
CREATE INDEX IF NOT EXISTS feedback_ref ON feedback (project_id, weave_ref);
-- Project token prices (/cost/create); the built-in table (weave_client._prices) is the default.
CREATE TABLE IF NOT EXISTS llm_token_prices (
    id                         TEXT PRIMARY KEY,
    pricing_level              TEXT NOT NULL,
    pricing_level_id           TEXT NOT NULL,
    provider_id                TEXT NOT NULL,
    llm_id                     TEXT NOT NULL,
    effective_date             TEXT NOT NULL,
    prompt_token_cost          REAL NOT NULL,
    completion_token_cost      REAL NOT NULL,
    prompt_token_cost_unit     TEXT NOT NULL,
    completion_token_cost_unit TEXT NOT NULL,
    created_by                 TEXT NOT NULL,
    created_at                 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS llm_token_prices_llm ON llm_token_prices (pricing_level_id, llm_id);
"""
