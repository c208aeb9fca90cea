"""Refs: construction, URIs, parsing of every form, and precise errors."""

from __future__ import annotations

import pickle

import pytest

from weave_client._errors import InvalidNameError, InvalidRefError
from weave_client._refs import (
    CallRef,
    ObjectRef,
    OpRef,
    TableRef,
    is_ref_uri,
    parse_ref,
    sanitize_object_name,
    validate_entity_project,
    validate_object_name,
)


def test_object_ref_uri_and_fields() -> None:
    ref = ObjectRef("ent", "proj", "my-object", "abc123")
    assert ref.uri() == "weave:///ent/proj/object/my-object:abc123"
    assert str(ref) == ref.uri()
    assert ref.project_id == "ent/proj"
    assert (ref.entity, ref.project, ref.name, ref.digest, ref.extra) == (
        "ent",
        "proj",
        "my-object",
        "abc123",
        (),
    )
    assert ref.ui_url == "https://wandb.ai/ent/proj/weave/objects/my-object/versions/abc123"


def test_refs_are_frozen_hashable_and_picklable() -> None:
    a = ObjectRef("e", "p", "n", "d")
    b = ObjectRef("e", "p", "n", "d")
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a.with_key("k"))) == a.with_key("k")
    # An op ref is an object ref, but never equal to the object ref of the same name.
    op = OpRef("e", "p", "n", "d")
    assert isinstance(op, ObjectRef)
    assert op != a


def test_extra_paths_build_and_quote() -> None:
    ref = ObjectRef("e", "p", "obj", "d").with_attr("rows").with_key("a/b c").with_index(3)
    assert ref.extra == ("attr", "rows", "key", "a/b c", "index", "3")
    assert ref.uri() == "weave:///e/p/object/obj:d/attr/rows/key/a%2Fb%20c/index/3"
    assert ref.without_extra() == ObjectRef("e", "p", "obj", "d")
    row = TableRef("e", "p", "tdig").with_id("rowdig")
    assert row.uri() == "weave:///e/p/table/tdig/id/rowdig"
    assert ObjectRef("e", "p", "ds", "d").with_attr("rows").with_id("r").uri() == (
        "weave:///e/p/object/ds:d/attr/rows/id/r"
    )


def test_op_table_and_call_uris() -> None:
    op = OpRef("e", "p", "my_op", "v0dig")
    assert op.uri() == "weave:///e/p/op/my_op:v0dig"
    assert op.with_attr("x").uri() == "weave:///e/p/op/my_op:v0dig/attr/x"
    assert type(op.with_attr("x")) is OpRef
    assert op.ui_url == "https://wandb.ai/e/p/weave/ops/my_op/versions/v0dig"
    assert TableRef("e", "p", "td").uri() == "weave:///e/p/table/td"
    call = CallRef("e", "p", "0192-abc")
    assert call.uri() == "weave:///e/p/call/0192-abc"
    assert call.ui_url == "https://wandb.ai/e/p/weave/calls/0192-abc"
    assert call.ui_url_for("https://my.wandb.io/") == "https://my.wandb.io/e/p/weave/calls/0192-abc"


@pytest.mark.parametrize(
    "uri",
    [
        "weave:///e/p/object/name:abc",
        "weave:///e/p/object/name:latest",
        "weave:///e/p/object/name:v3",
        "weave:///e/p/op/my_op:abc",
        "weave:///e/p/table/abcdef",
        "weave:///e/p/call/0192f0c1-7d1e-7b2a-9c3d-1e2f3a4b5c6d",
        "weave:///e/p/object/name:abc/attr/x/key/y/index/0",
        "weave:///e/p/object/ds:abc/attr/rows/id/rowdigest",
        "weave:///e/p/table/t/id/rowdigest/key/col",
        "weave:///e/p/call/cid/attr/output",
        "weave:///e/p/object/name:abc/key/a%2Fb%3Ac%20d%25",
    ],
)
def test_parse_round_trips(uri: str) -> None:
    ref = parse_ref(uri)
    assert ref.uri() == uri
    assert parse_ref(str(ref)) == ref


def test_parse_gives_the_right_types_and_unquotes_extras() -> None:
    ref = parse_ref("weave:///ent/proj/object/name:abc/key/a%2Fb%3Ac/index/2")
    assert type(ref) is ObjectRef
    assert ref.extra == ("key", "a/b:c", "index", "2")
    assert type(parse_ref("weave:///e/p/op/o:d")) is OpRef
    t = parse_ref("weave:///e/p/table/dig")
    assert isinstance(t, TableRef) and t.digest == "dig"
    c = parse_ref("weave:///e/p/call/cid")
    assert isinstance(c, CallRef) and c.id == "cid"
    # one trailing slash is tolerated
    assert parse_ref("weave:///e/p/object/n:d/") == ObjectRef("e", "p", "n", "d")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("weave:///e/p/object/name", "missing digest in 'weave:///e/p/object/name'"),
        ("weave:///e/p/op/name:", "missing digest in 'weave:///e/p/op/name:'"),
        ("weave:///e/p/object/:abc", "missing name in 'weave:///e/p/object/:abc'"),
        ("weave:///e/p/objet/name:abc", "unknown kind 'objet'"),
        ("weave:///e/p/object/n:d/attr", "odd number of extra path parts"),
        ("weave:///e/p/object/n:d/attr/x/key", "odd number of extra path parts"),
        ("weave:///e/p/object/n:d/index/x", "index 'x' is not an integer"),
        ("weave:///e/p/object/n:d/color/red", "unknown edge 'color'"),
        ("weave:///e/p/object/n:d/attr//key/y", "empty extra path part"),
        ("weave:///e/p/table", "missing digest in 'weave:///e/p/table'"),
        ("weave:///e/p/call/", "missing id in 'weave:///e/p/call/'"),
        ("weave:///e", "missing entity or project in 'weave:///e'"),
        ("weave:////p/object/n:d", "missing entity or project"),
        ("weave://e/p/object/n:d", "not a weave ref: 'weave://e/p/object/n:d'"),
        ("https://wandb.ai/e/p", "not a weave ref"),
        ("weave:///e/p/object/n:d:x", "digest 'd:x' contains ':'"),
    ],
)
def test_parse_errors_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(InvalidRefError) as exc_info:
        parse_ref(uri)
    assert message in str(exc_info.value)
    assert isinstance(exc_info.value, ValueError)  # callers may catch ValueError


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidRefError, match="expected a weave:/// URI string, got int"):
        parse_ref(42)  # type: ignore[arg-type]


def test_constructors_validate() -> None:
    with pytest.raises(InvalidRefError, match="name 'a/b' contains '/'"):
        ObjectRef("e", "p", "a/b", "d")
    with pytest.raises(InvalidRefError, match="digest 'x:y' contains ':'"):
        ObjectRef("e", "p", "n", "x:y")
    with pytest.raises(InvalidRefError, match="entity is empty"):
        TableRef("", "p", "d")
    with pytest.raises(InvalidRefError, match="odd number"):
        CallRef("e", "p", "id", ("attr",))
    with pytest.raises(InvalidRefError, match="unknown edge"):
        ObjectRef("e", "p", "n", "d", ("nope", "x"))
    # a list given as extra is stored as a tuple, so the ref stays hashable
    ref = ObjectRef("e", "p", "n", "d", ["key", "k"])  # type: ignore[arg-type]
    assert ref.extra == ("key", "k") and hash(ref)


def test_is_ref_uri() -> None:
    assert is_ref_uri("weave:///e/p/object/n:d")
    assert not is_ref_uri("weave://x")
    assert not is_ref_uri(3)


def test_validate_object_name() -> None:
    assert validate_object_name("my-object_v1.2") == "my-object_v1.2"
    assert validate_object_name("ünï") == "ünï"
    with pytest.raises(
        InvalidNameError, match=r"invalid object name 'my object/x': contains ' ', '/'"
    ):
        validate_object_name("my object/x")
    with pytest.raises(InvalidNameError, match="object name is empty"):
        validate_object_name("")
    with pytest.raises(InvalidNameError, match="129 characters"):
        validate_object_name("a" * 129)
    assert validate_object_name("a" * 128)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("my object", "my-object"),
        ("  spaced  out!! ", "spaced-out"),
        ("a..b__c", "a-b-c"),
        ("__init__", "init"),
        ("ok-name", "ok-name"),
        ("x" * 200, "x" * 128),
    ],
)
def test_sanitize_object_name(raw: str, clean: str) -> None:
    assert sanitize_object_name(raw) == clean
    validate_object_name(clean)


def test_sanitize_object_name_rejects_names_with_nothing_left() -> None:
    with pytest.raises(InvalidNameError, match="'!!!'"):
        sanitize_object_name("!!!")


def test_validate_entity_project() -> None:
    validate_entity_project("my-team", "my project 2")
    with pytest.raises(InvalidNameError, match="project name is empty"):
        validate_entity_project("e", "")
    with pytest.raises(InvalidNameError, match=r"invalid entity name 'a/b': contains '/'"):
        validate_entity_project("a/b", "p")
    with pytest.raises(InvalidNameError, match="surrounding whitespace"):
        validate_entity_project("e", " p")
    with pytest.raises(InvalidNameError, match="'#'"):
        validate_entity_project("e", "p#1")
