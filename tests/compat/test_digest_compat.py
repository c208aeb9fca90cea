"""Our digests, encoding and refs against weave 0.51.59's own code.

weave runs only in its pinned venv (``.venv-compat``), so one subprocess there
(per module) computes weave's side:

- weave's client encoding (``map_to_refs`` + ``serialize.to_json``, then the
  pydantic dump its HTTP client sends) of the same sample values, built by the
  same source in both interpreters;
- the digests weave's own ``SqliteTraceServer`` returns for *our* encoded values
  (``obj_create``), rows and tables (``table_create``) and files (``file_create``),
  i.e. what a server answers to what we send;
- ``str_digest``/``bytes_digest``, and weave's parsing and printing of refs.

A missing ``.venv-compat`` fails the test and says to run ``./scripts/bootstrap``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from weave_client._digest import bytes_digest, json_digest, row_digest, str_digest, table_digest
from weave_client._refs import ObjectRef, parse_ref
from weave_client._serialize import encode_for_save

from ._weave_side import compat_python, run_weave_side

pytestmark = pytest.mark.compat

# Built the same way in both interpreters (stdlib + pydantic only). Values whose
# encoding we deliberately do differently from weave (plain objects, plain Enums,
# bytes: weave stores their repr; datetime: weave adds a project-specific load_op
# ref) are compared separately below or not at all.
SAMPLES_SRC = r"""
import dataclasses, enum, math, datetime
from collections import namedtuple
import pydantic

class Inner(pydantic.BaseModel):
    label: str
    score: float = 0.5

class Outer(pydantic.BaseModel):
    name: str
    inner: Inner
    tags: list = []
    maybe: Inner | None = None

@dataclasses.dataclass
class Point:
    x: int
    y: float

@dataclasses.dataclass
class Path3(Point):
    z: int = 0

@dataclasses.dataclass
class Holder:
    model: Outer
    points: list

class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2

Pair = namedtuple("Pair", ["left", "right"])

def build_samples():
    return {
        "none": None,
        "true": True,
        "int": 7,
        "big_int": 2**70,
        "float": 0.1,
        "neg_zero": -0.0,
        "tiny": 1e-300,
        "str": "plain",
        "unicode": "héllo ✓ 日本 \u2028 \"quoted\" \\ back",
        "ref_like": "weave:///e/p/object/x:y",
        "empty_dict": {},
        "empty_list": [],
        "flat": {"b": 1, "a": "two", "c": [1, 2, 3]},
        "nested": {"z": {"y": {"x": [1, {"w": None, "v": 2.5}]}}, "a": [[], {}]},
        "tuple": {"t": (1, "a", (2, 3))},
        "nan_inf": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "list": [math.nan, 1.0]},
        "int_enum": {"level": Level.HIGH},
        "namedtuple": Pair(1, [2, 3]),
        "pydantic": Outer(name="o", inner=Inner(label="i"), tags=["x", "y"]),
        "pydantic_nested": Outer(name="o", inner=Inner(label="i", score=2.0), maybe=Inner(label="m")),
        "dataclass": Point(1, 2.5),
        "dataclass_subclass": Path3(1, 2.0, 3),
        "dataclass_nested": Holder(Outer(name="h", inner=Inner(label="q")), [Point(0, 0.0), Path3(1, 1.0)]),
        "list_of_models": [Inner(label="a"), Inner(label="b", score=1.0)],
    }

def build_datetimes():
    tz = datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))
    return [
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc),
        datetime.datetime(2020, 1, 1, 0, 0),
        datetime.datetime(1999, 12, 31, 12, 0, 1, 5, tzinfo=tz),
    ]
"""

WEAVE_SIDE = r"""
import base64, json, sys, tempfile, os
exec(SAMPLES_SRC)
from weave.trace.weave_client import map_to_refs
from weave.trace.serialization.serialize import to_json
from weave.trace.refs import ObjectRef, parse_uri
from weave.trace_server import trace_server_interface as tsi
from weave.trace_server.sqlite_trace_server import SqliteTraceServer
from weave.trace_server.trace_server_interface_util import bytes_digest, str_digest
from weave.type_handlers.DateTime.datetime import save as save_datetime

request = json.load(sys.stdin)
out = {"weave_json": {}, "server_obj": {}, "tables": [], "files": [], "str": [], "bytes": [],
       "datetimes": [], "uris": [], "weave_uris": []}

for name, value in build_samples().items():
    encoded = to_json(map_to_refs(value), "e/p", None)
    # What weave's HTTP client puts on the wire for this value.
    req = tsi.ObjCreateReq(obj=tsi.ObjSchemaForInsert(project_id="e/p", object_id="x", val=encoded))
    out["weave_json"][name] = json.loads(req.model_dump_json())["obj"]["val"]

with tempfile.TemporaryDirectory() as tmp:
    server = SqliteTraceServer(os.path.join(tmp, "trace.db"))
    server.setup_tables()
    for name, body in request["objects"].items():
        # Exactly the bytes we would send, parsed as weave's server parses a body.
        req = tsi.ObjCreateReq.model_validate_json(body)
        out["server_obj"][name] = server.obj_create(req).digest
    for rows_body in request["tables"]:
        req = tsi.TableCreateReq.model_validate_json(rows_body)
        res = server.table_create(req)
        out["tables"].append({"digest": res.digest, "row_digests": res.row_digests})
    for content in request["files"]:
        req = tsi.FileCreateReq(project_id="e/p", name="obj.bin", content=base64.b64decode(content))
        out["files"].append(server.file_create(req).digest)

out["str"] = [str_digest(s) for s in request["strings"]]
out["bytes"] = [bytes_digest(base64.b64decode(b)) for b in request["files"]]
out["datetimes"] = [save_datetime(d) for d in build_datetimes()]
for uri in request["uris"]:
    ref = parse_uri(uri)
    out["uris"].append([type(ref).__name__, ref.uri()])
for e, p, n, d, extra in request["weave_refs"]:
    out["weave_uris"].append(ObjectRef(e, p, n, d, tuple(extra)).uri())
json.dump(out, sys.stdout)
"""

STRINGS = ["", "hello", "ünïcode ✓", '{"a": 1}', "x" * 10000]
FILES = [b"", b"\x00\x01\x02", bytes(range(256)) * 40, b"def f():\n    return 1\n"]
URIS = [
    "weave:///e/p/object/name:abc",
    "weave:///e/p/op/my_op:abc",
    "weave:///e/p/table/abcdef",
    "weave:///e/p/call/0192f0c1-7d1e-7b2a-9c3d-1e2f3a4b5c6d",
    "weave:///e/p/object/name:abc/attr/x/key/y/index/0",
    "weave:///e/p/object/ds:abc/attr/rows/id/rowdigest",
    "weave:///e/p/object/name:abc/key/a%2Fb%3Ac%20d%25%C3%A9",
]
WEAVE_REFS = [
    ("e", "p", "n", "d", ["key", "a/b c:d%é", "index", "3", "attr", "x.y"]),
    ("ent", "proj", "obj", "dig", []),
]
TABLES = [
    [{"a": 1}, {"a": 2}, {"a": 1}],
    [{"z": "x", "b": [1, 2], "n": None}],
    [],
]


def _exec_samples() -> dict[str, Any]:
    # dont_inherit: this module's `from __future__ import annotations` would
    # otherwise leak into the samples and leave the pydantic models undefined.
    namespace: dict[str, Any] = {}
    exec(compile(SAMPLES_SRC, "<samples>", "exec", dont_inherit=True), namespace)
    return namespace


def _samples() -> dict[str, Any]:
    namespace = _exec_samples()
    samples: dict[str, Any] = namespace["build_samples"]()
    return samples


def _datetimes() -> list[dt.datetime]:
    namespace = _exec_samples()
    values: list[dt.datetime] = namespace["build_datetimes"]()
    return values


def _our_json() -> dict[str, Any]:
    return {name: encode_for_save(v).json for name, v in _samples().items()}


def _our_rows() -> list[list[Any]]:
    return [[encode_for_save(r).json for r in rows] for rows in TABLES]


@pytest.fixture(scope="module")
def weave_side() -> dict[str, Any]:
    ours = _our_json()
    request = {
        # The request bodies we send: our encoded values, as JSON text.
        "objects": {
            name: json.dumps({"obj": {"project_id": "e/p", "object_id": name, "val": val}})
            for name, val in ours.items()
        },
        "tables": [
            json.dumps({"table": {"project_id": "e/p", "rows": rows}}) for rows in _our_rows()
        ],
        "files": [base64.b64encode(f).decode() for f in FILES],
        "strings": STRINGS,
        "uris": URIS,
        "weave_refs": WEAVE_REFS,
    }
    return run_weave_side(
        f"SAMPLES_SRC = {SAMPLES_SRC!r}\n{WEAVE_SIDE}",
        request,
        what="computing weave's digests",
        timeout=180,
    )


def test_str_and_bytes_digests_equal_weaves(weave_side: dict[str, Any]) -> None:
    assert weave_side["str"] == [str_digest(s) for s in STRINGS]
    assert weave_side["bytes"] == [bytes_digest(f) for f in FILES]


def test_file_digests_equal_what_weaves_server_returns(weave_side: dict[str, Any]) -> None:
    assert weave_side["files"] == [bytes_digest(f) for f in FILES]


@pytest.mark.parametrize("name", sorted(_samples()))
def test_encoding_equals_weaves(weave_side: dict[str, Any], name: str) -> None:
    ours = encode_for_save(_samples()[name]).json
    theirs = weave_side["weave_json"][name]
    # Same JSON value (our dicts are key-sorted, weave's in insertion order) ...
    assert ours == theirs
    # ... so the same digest once both are canonical.
    assert json_digest(ours) == json_digest(theirs)


@pytest.mark.parametrize("name", sorted(_samples()))
def test_object_digest_equals_what_weaves_server_returns(
    weave_side: dict[str, Any], name: str
) -> None:
    ours = encode_for_save(_samples()[name])
    assert weave_side["server_obj"][name] == ours.digest


def test_row_and_table_digests_equal_what_weaves_server_returns(
    weave_side: dict[str, Any],
) -> None:
    for rows, theirs in zip(_our_rows(), weave_side["tables"], strict=True):
        ours_rows = [row_digest(r) for r in rows]
        assert theirs["row_digests"] == ours_rows
        assert theirs["digest"] == table_digest(ours_rows)


def test_datetime_values_equal_weaves(weave_side: dict[str, Any]) -> None:
    ours = [encode_for_save(d).json["val"] for d in _datetimes()]
    assert ours == weave_side["datetimes"]


def test_refs_print_and_parse_like_weaves(weave_side: dict[str, Any]) -> None:
    for uri, (kind, weave_uri) in zip(URIS, weave_side["uris"], strict=True):
        ours = parse_ref(uri)
        assert type(ours).__name__ == kind
        assert ours.uri() == weave_uri == uri
    for (e, p, n, d, extra), weave_uri in zip(WEAVE_REFS, weave_side["weave_uris"], strict=True):
        assert ObjectRef(e, p, n, d, tuple(extra)).uri() == weave_uri
        assert parse_ref(weave_uri) == ObjectRef(e, p, n, d, tuple(extra))


def test_missing_compat_venv_fails_and_says_to_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run \./scripts/bootstrap"):
        compat_python(tmp_path / "no-such-venv" / "bin" / "python")
