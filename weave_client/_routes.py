"""The trace API's paths, named once: the API client calls them, the local server serves them.

I/O-free and flavour-free (imports neither ``_async`` nor ``_sync``). The paths
are the hosted service's (weave's ``remote_http_trace_server``).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CALLS_DELETE",
    "CALLS_QUERY",
    "CALLS_QUERY_STATS",
    "CALLS_STREAM_QUERY",
    "CALLS_WATCH",
    "CALL_END",
    "CALL_READ",
    "CALL_START",
    "CALL_UPDATE",
    "CALL_UPSERT_BATCH",
    "COST_CREATE",
    "COST_PURGE",
    "COST_QUERY",
    "FEEDBACK_BATCH_CREATE",
    "FEEDBACK_CREATE",
    "FEEDBACK_PURGE",
    "FEEDBACK_QUERY",
    "FEEDBACK_REPLACE",
    "FILE_CONTENT",
    "FILE_CONTENT_ALIAS",
    "FILE_CREATE",
    "FILE_CREATE_ALIAS",
    "HEALTH",
    "OBJS_QUERY",
    "OBJ_CREATE",
    "OBJ_DELETE",
    "OBJ_READ",
    "REFS_READ_BATCH",
    "SERVER_INFO",
    "TABLE_CREATE",
    "TABLE_QUERY",
    "TABLE_QUERY_STATS",
    "TABLE_QUERY_STREAM",
    "TABLE_UPDATE",
    "THREADS_STREAM_QUERY",
]

# -- service --------------------------------------------------------------------
HEALTH: Final = "/health"
SERVER_INFO: Final = "/server_info"

# -- calls ----------------------------------------------------------------------
CALL_START: Final = "/call/start"
CALL_END: Final = "/call/end"
CALL_UPSERT_BATCH: Final = "/call/upsert_batch"
CALL_READ: Final = "/call/read"
CALL_UPDATE: Final = "/call/update"
CALLS_DELETE: Final = "/calls/delete"
CALLS_QUERY: Final = "/calls/query"
CALLS_STREAM_QUERY: Final = "/calls/stream_query"
CALLS_QUERY_STATS: Final = "/calls/query_stats"
# A WebSocket (this project's extension; see _live.py and server/_live.py).
CALLS_WATCH: Final = "/calls/watch"

# -- threads --------------------------------------------------------------------
THREADS_STREAM_QUERY: Final = "/threads/stream_query"

# -- objects --------------------------------------------------------------------
OBJ_CREATE: Final = "/obj/create"
OBJ_READ: Final = "/obj/read"
OBJS_QUERY: Final = "/objs/query"
OBJ_DELETE: Final = "/obj/delete"

# -- tables ---------------------------------------------------------------------
TABLE_CREATE: Final = "/table/create"
TABLE_UPDATE: Final = "/table/update"
TABLE_QUERY: Final = "/table/query"
TABLE_QUERY_STREAM: Final = "/table/query_stream"
TABLE_QUERY_STATS: Final = "/table/query_stats"

# -- refs and files -------------------------------------------------------------
REFS_READ_BATCH: Final = "/refs/read_batch"
FILE_CREATE: Final = "/file/create"
FILE_CONTENT: Final = "/file/content"
# The plural spellings some weave versions post to; served, not documented.
FILE_CREATE_ALIAS: Final = "/files/create"
FILE_CONTENT_ALIAS: Final = "/files/content"

# -- feedback -------------------------------------------------------------------
FEEDBACK_CREATE: Final = "/feedback/create"
FEEDBACK_BATCH_CREATE: Final = "/feedback/batch/create"
FEEDBACK_QUERY: Final = "/feedback/query"
FEEDBACK_PURGE: Final = "/feedback/purge"
FEEDBACK_REPLACE: Final = "/feedback/replace"

# -- costs ----------------------------------------------------------------------
COST_CREATE: Final = "/cost/create"
COST_QUERY: Final = "/cost/query"
COST_PURGE: Final = "/cost/purge"
