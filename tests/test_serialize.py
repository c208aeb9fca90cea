"""Encoding for save and for traces, and decoding back (all I/O-free)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import json
import math
import socket
import threading
from collections import OrderedDict, namedtuple
from typing import Any

import pydantic
import pytest

from weave_client._digest import bytes_digest, json_digest
from weave_client._errors import UnsaveableValueError
from weave_client._refs import CallRef, ObjectRef, OpRef, Ref, TableRef
from weave_client._serialize import (
    CustomObject,
    EncodedValue,
    WeaveObject,
    decode,
    encode_custom_files,
    encode_for_save,
    encode_for_trace,
    files_to_fetch,
)


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(str, enum.Enum):  # noqa: UP042 - the mixin form, as older code writes it
    FAST = "fast"


class Inner(pydantic.BaseModel):
    label: str
    score: float = 0.0


class Outer(pydantic.BaseModel):
    name: str
    inner: Inner
    tags: list[str] = []
    secret: str = pydantic.Field(default="x", exclude=True)
    kind: str = pydantic.Field(default="k", alias="type")


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    model: Inner | None = None


class Plain:
    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b
        self._private = threading.Lock()  # private state is not saved


class Slotted:
    __slots__ = ("_hidden", "v")

    def __init__(self, v: Any) -> None:
        self.v = v
        self._hidden = 1


Pair = namedtuple("Pair", ["left", "right"])


def save_json(value: Any, **kw: Any) -> Any:
    return encode_for_save(value, **kw).json


# --- save: primitives and containers ---------------------------------------------


def test_primitives_and_containers() -> None:
    value = {"s": "x", "i": 3, "f": 1.5, "b": True, "n": None, "l": [1, [2]], "t": (1, 2)}
    assert save_json(value) == {
        "b": True,
        "f": 1.5,
        "i": 3,
        "l": [1, [2]],
        "n": None,
        "s": "x",
        "t": [1, 2],
    }


def test_dicts_come_out_key_sorted_at_every_level() -> None:
    out = save_json({"b": {"z": 1, "a": 2}, "a": [{"d": 1, "c": 2}]})
    assert list(out) == ["a", "b"]
    assert list(out["b"]) == ["a", "z"]
    assert list(out["a"][0]) == ["c", "d"]
    # so any JSON dump of it, in insertion order, is the canonical text
    assert json.dumps(out) == json.dumps(out, sort_keys=True)


def test_nan_and_infinities_become_null_as_weave_sends_them() -> None:
    out = save_json({"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 0.1})
    assert out == {"inf": None, "nan": None, "ninf": None, "ok": 0.1}


def test_result_shares_no_containers_with_the_input() -> None:
    value = {"l": [1, 2], "d": {"k": "v"}}
    out = save_json(value)
    value["l"].append(3)
    value["d"]["k"] = "changed"
    assert out == {"d": {"k": "v"}, "l": [1, 2]}


def test_subclasses_of_builtins_become_plain_builtins() -> None:
    class MyStr(str):
        pass

    class MyInt(int):
        pass

    out = save_json({"s": MyStr("a"), "i": MyInt(4), "od": OrderedDict(b=1, a=2)})
    assert out == {"i": 4, "od": {"a": 2, "b": 1}, "s": "a"}
    assert type(out["s"]) is str and type(out["i"]) is int and type(out["od"]) is dict


def test_namedtuple_becomes_a_dict_of_fields() -> None:
    assert save_json(Pair(1, "r")) == {"left": 1, "right": "r"}


# --- save: objects -------------------------------------------------------------


def test_pydantic_model_uses_weaves_object_record_shape() -> None:
    out = save_json(Outer(name="o", inner=Inner(label="i", score=2.0), tags=["a"]))
    assert out == {
        "_bases": ["BaseModel"],
        "_class_name": "Outer",
        "_type": "Outer",
        "inner": {
            "_bases": ["BaseModel"],
            "_class_name": "Inner",
            "_type": "Inner",
            "label": "i",
            "score": 2.0,
        },
        "name": "o",
        "tags": ["a"],
        "type": "k",  # by alias; the excluded field is left out
    }


def test_dataclass_nested_with_pydantic_and_bases() -> None:
    @dataclasses.dataclass
    class Special(Point):
        z: int = 0

    out = save_json(Shape("tri", [Point(0, 0), Special(1, 1, 2)], Inner(label="m")))
    assert out["_type"] == out["_class_name"] == "Shape"
    assert out["_bases"] == []
    assert out["points"][0] == {
        "_bases": [],
        "_class_name": "Point",
        "_type": "Point",
        "x": 0,
        "y": 0,
    }
    assert out["points"][1]["_bases"] == ["Point"]
    assert out["points"][1]["z"] == 2
    assert out["model"]["_class_name"] == "Inner"


def test_plain_objects_save_their_public_attributes() -> None:
    out = save_json(Plain(1, [Point(1, 2)]))
    assert out == {
        "_bases": [],
        "_class_name": "Plain",
        "_type": "Plain",
        "a": 1,
        "b": [{"_bases": [], "_class_name": "Point", "_type": "Point", "x": 1, "y": 2}],
    }
    assert save_json(Slotted("v")) == {
        "_bases": [],
        "_class_name": "Slotted",
        "_type": "Slotted",
        "v": "v",
    }


def test_enums() -> None:
    out = save_json({"c": Color.RED, "g": Color.GREEN, "l": Level.HIGH, "m": Mode.FAST})
    assert out["c"] == {
        "_bases": ["Enum"],
        "_class_name": "Color",
        "_type": "Color",
        "name": "RED",
        "value": 1,
    }
    assert out["g"]["value"] == "g"
    # int/str enums are stored as their value, as weave (and JSON) store them
    assert out["l"] == 2 and type(out["l"]) is int
    assert out["m"] == "fast" and type(out["m"]) is str


def test_datetime_is_weaves_inline_custom_type() -> None:
    aware = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2024, 5, 6, 7, 8, 9)
    out = save_json({"aware": aware, "naive": naive})
    assert out["aware"] == {
        "_type": "CustomWeaveType",
        "val": "2024-05-06T07:08:09.123456+02:00",
        "weave_type": {"type": "datetime.datetime"},
    }
    assert out["naive"]["val"] == "2024-05-06T07:08:09+00:00"  # naive = UTC, as weave


def test_bytes_become_a_file_to_upload() -> None:
    ev = encode_for_save({"a": b"\x00\x01", "b": bytearray(b"\x00\x01"), "c": memoryview(b"zz")})
    d = bytes_digest(b"\x00\x01")
    assert ev.json["a"] == {
        "_type": "CustomWeaveType",
        "files": {"obj.bin": d},
        "weave_type": {"type": "builtins.bytes"},
    }
    assert ev.json["b"] == ev.json["a"]
    # one pending upload per distinct content
    assert set(ev.files) == {d, bytes_digest(b"zz")}
    assert ev.files[d].content == b"\x00\x01"
    assert ev.files[d].name == "obj.bin"
    assert files_to_fetch(ev.json) == set(ev.files)


def test_refs_and_ref_of() -> None:
    saved = Inner(label="saved")
    saved_ref = ObjectRef("e", "p", "inner", "dig")
    table = TableRef("e", "p", "tdig")

    def ref_of(v: object) -> Ref | None:
        return saved_ref if v is saved else None

    ev = encode_for_save({"m": saved, "t": table, "c": CallRef("e", "p", "cid")}, ref_of=ref_of)
    assert ev.json == {
        "c": "weave:///e/p/call/cid",
        "m": "weave:///e/p/object/inner:dig",
        "t": "weave:///e/p/table/tdig",
    }
    # the value being saved is itself never replaced by its own ref
    assert encode_for_save(saved, ref_of=ref_of).json["label"] == "saved"


def test_digest_is_stable_for_equal_content_and_differs_otherwise() -> None:
    a = encode_for_save(Shape("s", [Point(1, 2)]))
    b = encode_for_save(Shape("s", [Point(1, 2)]))
    c = encode_for_save(Shape("s", [Point(2, 1)]))
    assert isinstance(a, EncodedValue)
    assert a.digest == b.digest == json_digest(a.json)
    assert a.digest != c.digest
    # same fields but a different class is a different object
    assert encode_for_save(Point(1, 2)).digest != encode_for_save({"x": 1, "y": 2}).digest


def test_encode_custom_files_is_the_op_shape() -> None:
    ev = encode_custom_files("Op", {"obj.py": b"def f(): pass\n"})
    d = bytes_digest(b"def f(): pass\n")
    assert ev.json == {
        "_type": "CustomWeaveType",
        "files": {"obj.py": d},
        "weave_type": {"type": "Op"},
    }
    assert ev.files[d].name == "obj.py"


# --- save: errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "type_name", "words"),
    [
        (
            {"a": [0, 1, 2, Plain(1, threading.Lock())]},
            'obj["a"][3].b',
            "_thread.lock",
            "no public attributes",
        ),
        ({"s": {1, 2}}, 'obj["s"]', "set", "sorted list"),
        ([len], "obj[0]", "builtin_function_or_method", "cannot be saved"),
        ({"f": lambda: 1}, 'obj["f"]', "function", "@op"),
        ({"d": dt.date(2024, 1, 1)}, 'obj["d"]', "datetime.date", "datetime"),
        ({"t": Point}, 'obj["t"]', "type", "cannot be saved"),
        (Shape("s", [Point(1, 2), Point(object(), 1)]), "obj.points[1].x", "object", "no public"),
        (
            {'we"ird': {"k": threading.Event().wait}},
            'obj["we\\"ird"]["k"]',
            "method",
            "cannot be saved",
        ),
    ],
)
def test_unsaveable_values_name_their_path_and_type(
    value: Any, path: str, type_name: str, words: str
) -> None:
    with pytest.raises(UnsaveableValueError) as exc_info:
        encode_for_save(value)
    err = exc_info.value
    assert isinstance(err, TypeError)
    assert err.path == path
    assert err.type_name == type_name
    assert f"cannot save {path} of type {type_name}: " in str(err)
    assert words in str(err)


def test_socket_is_unsaveable() -> None:
    with (
        socket.socket() as s,
        pytest.raises(UnsaveableValueError, match=r"obj\[\"conn\"\] of type socket"),
    ):
        encode_for_save({"conn": s})


def test_non_string_dict_keys_are_a_clear_error() -> None:
    with pytest.raises(UnsaveableValueError) as exc_info:
        encode_for_save({"outer": {1: "one"}})
    assert str(exc_info.value) == (
        'cannot save obj["outer"] of type dict: key 1 has type int, but saved dict keys must be str'
    )


def test_cycles_name_where_they_close() -> None:
    a: dict[str, Any] = {"x": 1}
    a["self"] = [a]
    with pytest.raises(UnsaveableValueError) as exc_info:
        encode_for_save({"root": a})
    msg = str(exc_info.value)
    assert 'cannot save obj["root"]["self"][0] of type dict: cycle' in msg
    assert 'enclosing obj["root"]' in msg
    assert exc_info.value.path == 'obj["root"]["self"][0]'

    p = Plain(1, None)
    p.b = [p]
    with pytest.raises(
        UnsaveableValueError,
        match=r"cannot save obj\.b\[0\] of type .*Plain: cycle.*enclosing obj\b",
    ):
        encode_for_save(p)


def test_shared_but_acyclic_values_are_fine() -> None:
    shared = [1, 2]
    assert save_json({"a": shared, "b": shared, "c": [shared, shared]}) == {
        "a": [1, 2],
        "b": [1, 2],
        "c": [[1, 2], [1, 2]],
    }


def test_too_deep_nesting_is_an_error_not_a_crash() -> None:
    v: Any = 0
    for _ in range(5000):
        v = [v]
    with pytest.raises(UnsaveableValueError, match="nested deeper than"):
        encode_for_save(v)


# --- trace -----------------------------------------------------------------------


def test_trace_small_values_pass_through_as_copies() -> None:
    inputs = {"a": 1, "b": "x", "c": [1, 2], "d": {"e": None}}
    out = encode_for_trace(inputs)
    assert out == inputs
    inputs["c"].append(3)
    inputs["d"]["e"] = "mutated"
    assert out == {"a": 1, "b": "x", "c": [1, 2], "d": {"e": None}}


def test_trace_snapshots_objects_too() -> None:
    shape = Shape("s", [Point(1, 2)])
    out = encode_for_trace({"shape": shape})
    shape.points[0].x = 99
    shape.points.append(Point(0, 0))
    assert out["shape"]["points"] == [
        {"_bases": [], "_class_name": "Point", "_type": "Point", "x": 1, "y": 2}
    ]


def test_trace_uses_the_save_shapes_where_weave_does() -> None:
    value = {
        "m": Outer(name="o", inner=Inner(label="i")),
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "c": Color.RED,
        "lvl": Level.LOW,
        "pair": Pair(1, 2),
        "t": (1, math.nan),
        "ref": OpRef("e", "p", "f", "d"),
    }
    out = encode_for_trace(value)
    save_like = {k: v for k, v in value.items()}
    assert out == save_json(save_like)


def test_trace_records_what_it_cannot_encode_as_repr() -> None:
    lock = threading.Lock()
    out = encode_for_trace({"lock": lock, "bytes": b"ab", "set": {1}, "obj": Plain(1, 2)})
    assert out["lock"] == repr(lock)
    assert out["bytes"] == "b'ab'"  # weave records bytes in traces by repr
    assert out["set"] == "{1}"
    assert out["obj"].startswith("<") and "Plain object" in out["obj"]


def test_trace_never_raises() -> None:
    class Evil:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        def __str__(self) -> str:
            raise RuntimeError("no str")

    class BadModel(pydantic.BaseModel):
        x: int

        def __getattribute__(self, name: str) -> Any:
            if name == "x":
                raise RuntimeError("boom")
            return super().__getattribute__(name)

    class BadToDict:
        def to_dict(self) -> dict[str, Any]:
            raise ValueError("nope")

        def __repr__(self) -> str:
            return "BadToDict()"

    out = encode_for_trace({"evil": Evil(), "bad": BadModel(x=1), "td": BadToDict(), 1: Evil})
    assert out["evil"].startswith("<Evil: ")
    assert isinstance(out["bad"], str)
    assert out["td"] == "BadToDict()"
    assert "1" in out


def test_trace_to_dict_objects_are_recorded_as_their_dict() -> None:
    class Usage:
        def to_dict(self) -> dict[str, Any]:
            return {"tokens": 3, "nested": Point(1, 1)}

    assert encode_for_trace(Usage()) == {
        "tokens": 3,
        "nested": {"_bases": [], "_class_name": "Point", "_type": "Point", "x": 1, "y": 1},
    }


def test_trace_cycles_and_depth_get_visible_markers() -> None:
    a: dict[str, Any] = {"x": 1}
    a["self"] = a
    lst: list[Any] = [1]
    lst.append(lst)
    out = encode_for_trace({"a": a, "l": lst})
    assert out == {"a": {"x": 1, "self": "<cycle: dict>"}, "l": [1, "<cycle: list>"]}
    # exponential self-reference stays small
    b: dict[str, Any] = {}
    b["l"] = b
    b["r"] = b
    assert encode_for_trace(b) == {"l": "<cycle: dict>", "r": "<cycle: dict>"}

    deep: Any = "leaf"
    for _ in range(10):
        deep = {"d": deep}
    out = encode_for_trace(deep, max_depth=3)
    assert out == {"d": {"d": {"d": "<too deep: dict>"}}}
    very_deep: Any = 0
    for _ in range(10000):
        very_deep = [very_deep]
    assert json.dumps(encode_for_trace(very_deep))  # bounded by max_depth, no RecursionError


def test_trace_keys_and_redaction() -> None:
    out = encode_for_trace(
        {
            7: "a",
            None: "b",
            True: "c",
            2.5: "d",
            "API_KEY": "sk-123",
            "nested": [{"Authorization": "Basic x"}],
        }
    )
    assert out == {
        "7": "a",
        "null": "b",
        "true": "c",
        "2.5": "d",
        "API_KEY": "REDACTED",
        "nested": [{"Authorization": "REDACTED"}],
    }
    assert "sk-123" not in json.dumps(out)


def test_trace_string_limits() -> None:
    out = encode_for_trace({"s": "x" * 50, "short": "ok"}, max_str_len=10)
    assert out == {"s": "xxxxxxxxxx...[40 more chars]", "short": "ok"}

    class Big:
        def __repr__(self) -> str:
            return "r" * 5000

    assert encode_for_trace(Big()) == "r" * 1000 + "..."  # weave's repr cap


def test_trace_ref_of_applies_to_the_value_itself() -> None:
    p = Point(1, 2)
    ref = ObjectRef("e", "p", "pt", "d")
    got = encode_for_trace(
        {"self": p, "other": Point(1, 2)}, ref_of=lambda v: ref if v is p else None
    )
    assert got["self"] == ref.uri()
    assert got["other"]["_class_name"] == "Point"
    assert encode_for_trace(p, ref_of=lambda v: ref if v is p else None) == ref.uri()


def test_trace_output_is_json_serialisable() -> None:
    out = encode_for_trace(
        {"x": [math.inf, Color.RED, dt.datetime(2020, 1, 1), Plain(1, 2), object()]}
    )
    json.dumps(out, allow_nan=False)


# --- decode ----------------------------------------------------------------------


def test_decode_objects_give_attribute_access() -> None:
    original = Shape("tri", [Point(0, 1)], Inner(label="m", score=0.5))
    obj = decode(save_json(original))
    assert isinstance(obj, WeaveObject)
    assert obj._class_name == "Shape"
    assert obj._bases == []
    assert obj.name == "tri"
    assert obj.points[0].y == 1
    assert obj.model.label == "m"
    assert obj.model._bases == ["BaseModel"]
    # compares equal to the original (by class name and fields), as weave's ObjectRecord
    assert obj == original
    assert obj != Shape("tri", [Point(0, 2)], Inner(label="m", score=0.5))
    assert obj._asdict().keys() == {"name", "points", "model"}
    assert "WeaveObject(Shape" in repr(obj)


def test_decode_round_trips_through_encode() -> None:
    value = {
        "obj": Outer(name="o", inner=Inner(label="i")),
        "when": dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
        "color": Color.RED,
        "ref": ObjectRef("e", "p", "n", "d").with_key("k"),
        "list": [1, "two", None, {"x": 3.5}],
    }
    stored = save_json(value)
    decoded = decode(copy.deepcopy(stored))
    assert decoded["when"] == value["when"]
    assert decoded["ref"] == value["ref"]
    assert decoded["color"].name == "RED"
    assert decoded["list"] == value["list"]
    assert save_json(decoded) == stored


def test_decode_bytes_with_and_without_file_content() -> None:
    ev = encode_for_save({"raw": b"\x00data"})
    content = {d: f.content for d, f in ev.files.items()}
    assert decode(ev.json, files=content) == {"raw": b"\x00data"}
    placeholder = decode(ev.json)["raw"]
    assert isinstance(placeholder, CustomObject)
    assert placeholder.weave_type == "builtins.bytes"
    assert placeholder.files == {"obj.bin": bytes_digest(b"\x00data")}
    # a placeholder re-encodes to exactly what was stored
    assert save_json({"raw": placeholder}) == ev.json


def test_decode_unknown_custom_types_and_weave_ops() -> None:
    op_val = {
        "_type": "CustomWeaveType",
        "weave_type": {"type": "Op"},
        "files": {"obj.py": "abc"},
    }
    img = {
        "_type": "CustomWeaveType",
        "weave_type": {"type": "PIL.Image.Image"},
        "files": {"image.png": "d1"},
        "load_op": "weave:///e/p/op/load_PIL.Image.Image:xyz",
    }
    op, image = decode([op_val, img])
    assert isinstance(op, CustomObject) and op.weave_type == "Op"
    assert image.load_op == img["load_op"] and image.val is None
    assert files_to_fetch([op_val, img]) == set()
    assert save_json([op, image]) == [op_val, {k: img[k] for k in sorted(img)}]


def test_decode_refs_and_ref_like_strings() -> None:
    out = decode(["weave:///e/p/table/t", "weave:///e/p/objet/x:1", "plain", "weave:///e/p/call/c"])
    assert out[0] == TableRef("e", "p", "t")
    assert out[1] == "weave:///e/p/objet/x:1"  # malformed: stays a string
    assert out[2] == "plain"
    assert out[3] == CallRef("e", "p", "c")


def test_decode_plain_dicts_stay_dicts_and_weave_shapes_are_read() -> None:
    assert decode({"a": {"b": [1]}}) == {"a": {"b": [1]}}
    # weave's own ObjectRecord output (insertion order: _type first)
    rec = decode(
        {
            "_type": "Model",
            "temperature": 0.5,
            "_class_name": "Model",
            "_bases": ["Object", "BaseModel"],
        }
    )
    assert (
        rec._class_name == "Model"
        and rec.temperature == 0.5
        and rec._bases == ["Object", "BaseModel"]
    )
    # a bad datetime stays a custom object rather than failing the read
    bad = decode(
        {"_type": "CustomWeaveType", "weave_type": {"type": "datetime.datetime"}, "val": "nope"}
    )
    assert isinstance(bad, CustomObject)


def test_weave_objects_pickle_and_re_encode_in_traces() -> None:
    import pickle

    stored = save_json(Shape("s", [Point(1, 2)]))
    obj = decode(stored)
    clone = pickle.loads(pickle.dumps(obj))
    assert clone == obj and clone.points[0].x == 1
    assert encode_for_trace({"obj": obj}) == {"obj": stored}
    obj.name = "changed"  # decoded objects are editable, and save what they now hold
    assert save_json(obj)["name"] == "changed"
