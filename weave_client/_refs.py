"""Refs: the ``weave:///`` URIs that name objects, ops, tables and calls.

Forms (``extra`` is a sequence of ``edge/value`` pairs, values URL-quoted)::

    weave:///{entity}/{project}/object/{name}:{digest}[/{edge}/{value}]...
    weave:///{entity}/{project}/op/{name}:{digest}[/...]
    weave:///{entity}/{project}/table/{digest}[/...]
    weave:///{entity}/{project}/call/{id}[/...]

with ``edge`` one of ``attr`` (an object attribute), ``key`` (a dict key),
``index`` (a list position, an integer) and ``id`` (a table row digest). The
digest of an object or op may also be ``latest`` or a version index ``v3``.

Ref types are frozen and hashable, so they work as dict keys and cache keys;
``str(ref)`` is the URI. :func:`parse_ref` turns a URI back into a ref and
raises :class:`~weave_client.InvalidRefError` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import quote, unquote

from ._errors import InvalidNameError, InvalidRefError

__all__ = [
    "ATTR",
    "EDGE_NAMES",
    "ID",
    "INDEX",
    "KEY",
    "MAX_OBJECT_NAME_LENGTH",
    "WANDB_APP_URL",
    "AnyRef",
    "CallRef",
    "ObjectRef",
    "OpRef",
    "Ref",
    "TableRef",
    "is_ref_uri",
    "parse_ref",
    "sanitize_object_name",
    "validate_entity_project",
    "validate_object_name",
]

SCHEME: Final = "weave:///"
WANDB_APP_URL: Final = "https://wandb.ai"
"""Where the hosted Weave UI lives; ``ui_url`` properties point there."""

ATTR: Final = "attr"
KEY: Final = "key"
INDEX: Final = "index"
ID: Final = "id"
EDGE_NAMES: Final = (ATTR, KEY, INDEX, ID)
_EDGE_SET: Final = frozenset(EDGE_NAMES)

MAX_OBJECT_NAME_LENGTH: Final = 128
"""The trace server's limit on an object (or op) name."""


def _quote(part: str) -> str:
    # As weave quotes extra path values: everything but alphanumerics and "_.-~".
    return quote(part, safe="")


def _check_part(value: object, field: str, kind: str, *, no_colon: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidRefError(f"{kind} ref {field} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidRefError(f"{kind} ref {field} is empty")
    if "/" in value:
        raise InvalidRefError(f"{kind} ref {field} {value!r} contains '/'")
    if no_colon and ":" in value:
        raise InvalidRefError(f"{kind} ref {field} {value!r} contains ':'")


def _check_extra(extra: tuple[str, ...], where: str) -> None:
    if len(extra) % 2:
        raise InvalidRefError(
            f"odd number of extra path parts in {where}: {list(extra)!r} "
            f"(expected {'/'.join(EDGE_NAMES)} edge/value pairs)"
        )
    for i in range(0, len(extra), 2):
        edge, value = extra[i], extra[i + 1]
        if not isinstance(edge, str) or not isinstance(value, str):
            raise InvalidRefError(f"extra path parts must be str in {where}: {list(extra)!r}")
        if edge not in _EDGE_SET:
            raise InvalidRefError(
                f"unknown edge {edge!r} at extra part {i} in {where} "
                f"(expected one of {', '.join(EDGE_NAMES)})"
            )
        if edge == INDEX:
            try:
                int(value)
            except ValueError:
                raise InvalidRefError(f"index {value!r} is not an integer in {where}") from None


class Ref:
    """Base class of every ref. Subclasses are frozen dataclasses."""

    __slots__ = ()

    entity: str
    project: str
    extra: tuple[str, ...]

    def uri(self) -> str:
        """The ``weave:///`` URI of this ref."""
        raise NotImplementedError

    def _base_uri(self) -> str:
        raise NotImplementedError

    def _uri_with_extra(self, base: str) -> str:
        if not self.extra:
            return base
        return base + "/" + "/".join(_quote(e) for e in self.extra)

    def __str__(self) -> str:
        return self.uri()

    @property
    def project_id(self) -> str:
        """``"entity/project"``, the form the trace server's requests use."""
        return f"{self.entity}/{self.project}"

    def _with_extra(self, *parts: str) -> Ref:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ObjectRef(Ref):
    """A version of a saved object: ``weave:///entity/project/object/name:digest``."""

    entity: str
    project: str
    name: str
    digest: str
    extra: tuple[str, ...] = ()

    _KIND = "object"

    def __post_init__(self) -> None:
        kind = self._KIND
        _check_part(self.entity, "entity", kind)
        _check_part(self.project, "project", kind)
        _check_part(self.name, "name", kind, no_colon=True)
        _check_part(self.digest, "digest", kind, no_colon=True)
        if type(self.extra) is not tuple:
            object.__setattr__(self, "extra", tuple(self.extra))
        if self.extra:
            _check_extra(self.extra, f"{kind} ref {self.name}:{self.digest}")

    def uri(self) -> str:
        return self._uri_with_extra(
            f"{SCHEME}{self.entity}/{self.project}/{self._KIND}/{self.name}:{self.digest}"
        )

    def _with_extra(self, *parts: str) -> ObjectRef:
        return type(self)(self.entity, self.project, self.name, self.digest, self.extra + parts)

    def with_attr(self, name: str) -> ObjectRef:
        """This ref extended by an attribute of the object (``/attr/{name}``)."""
        return self._with_extra(ATTR, name)

    def with_key(self, key: str) -> ObjectRef:
        """This ref extended by a dict key (``/key/{key}``)."""
        return self._with_extra(KEY, key)

    def with_index(self, index: int) -> ObjectRef:
        """This ref extended by a list position (``/index/{index}``)."""
        return self._with_extra(INDEX, str(int(index)))

    def with_id(self, row_digest: str) -> ObjectRef:
        """This ref extended by a table row, by its digest (``/id/{row_digest}``)."""
        return self._with_extra(ID, row_digest)

    def without_extra(self) -> ObjectRef:
        """The ref of the whole object version (``extra`` dropped)."""
        if not self.extra:
            return self
        return type(self)(self.entity, self.project, self.name, self.digest)

    def ui_url_for(self, app_url: str) -> str:
        """The page of this version in a W&B app at ``app_url``."""
        return (
            f"{app_url.rstrip('/')}/{self.entity}/{quote(self.project)}/weave/objects/"
            f"{quote(self.name)}/versions/{self.digest}"
        )

    @property
    def ui_url(self) -> str:
        """The page of this version in the hosted Weave UI."""
        return self.ui_url_for(WANDB_APP_URL)


@dataclass(frozen=True, slots=True)
class OpRef(ObjectRef):
    """A version of a saved op: ``weave:///entity/project/op/name:digest``."""

    _KIND = "op"

    def ui_url_for(self, app_url: str) -> str:
        return (
            f"{app_url.rstrip('/')}/{self.entity}/{quote(self.project)}/weave/ops/"
            f"{quote(self.name)}/versions/{self.digest}"
        )


@dataclass(frozen=True, slots=True)
class TableRef(Ref):
    """A table version: ``weave:///entity/project/table/digest``."""

    entity: str
    project: str
    digest: str
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_part(self.entity, "entity", "table")
        _check_part(self.project, "project", "table")
        _check_part(self.digest, "digest", "table", no_colon=True)
        if type(self.extra) is not tuple:
            object.__setattr__(self, "extra", tuple(self.extra))
        if self.extra:
            _check_extra(self.extra, f"table ref {self.digest}")

    def uri(self) -> str:
        return self._uri_with_extra(f"{SCHEME}{self.entity}/{self.project}/table/{self.digest}")

    def _with_extra(self, *parts: str) -> TableRef:
        return TableRef(self.entity, self.project, self.digest, self.extra + parts)

    def with_attr(self, name: str) -> TableRef:
        """This ref extended by an attribute (``/attr/{name}``)."""
        return self._with_extra(ATTR, name)

    def with_key(self, key: str) -> TableRef:
        """This ref extended by a dict key (``/key/{key}``)."""
        return self._with_extra(KEY, key)

    def with_index(self, index: int) -> TableRef:
        """This ref extended by a list position (``/index/{index}``)."""
        return self._with_extra(INDEX, str(int(index)))

    def with_id(self, row_digest: str) -> TableRef:
        """The ref of one row of this table, by its digest (``/id/{row_digest}``)."""
        return self._with_extra(ID, row_digest)

    def without_extra(self) -> TableRef:
        """The ref of the whole table (``extra`` dropped)."""
        return self if not self.extra else TableRef(self.entity, self.project, self.digest)


@dataclass(frozen=True, slots=True)
class CallRef(Ref):
    """A traced call: ``weave:///entity/project/call/id``."""

    entity: str
    project: str
    id: str
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_part(self.entity, "entity", "call")
        _check_part(self.project, "project", "call")
        _check_part(self.id, "id", "call")
        if type(self.extra) is not tuple:
            object.__setattr__(self, "extra", tuple(self.extra))
        if self.extra:
            _check_extra(self.extra, f"call ref {self.id}")

    def uri(self) -> str:
        return self._uri_with_extra(f"{SCHEME}{self.entity}/{self.project}/call/{self.id}")

    def _with_extra(self, *parts: str) -> CallRef:
        return CallRef(self.entity, self.project, self.id, self.extra + parts)

    def with_attr(self, name: str) -> CallRef:
        """This ref extended by an attribute (``/attr/{name}``)."""
        return self._with_extra(ATTR, name)

    def with_key(self, key: str) -> CallRef:
        """This ref extended by a dict key (``/key/{key}``)."""
        return self._with_extra(KEY, key)

    def with_index(self, index: int) -> CallRef:
        """This ref extended by a list position (``/index/{index}``)."""
        return self._with_extra(INDEX, str(int(index)))

    def with_id(self, row_digest: str) -> CallRef:
        """This ref extended by a table row digest (``/id/{row_digest}``)."""
        return self._with_extra(ID, row_digest)

    def without_extra(self) -> CallRef:
        """The ref of the call itself (``extra`` dropped)."""
        return self if not self.extra else CallRef(self.entity, self.project, self.id)

    def ui_url_for(self, app_url: str) -> str:
        """The page of this call in a W&B app at ``app_url``."""
        return f"{app_url.rstrip('/')}/{self.entity}/{quote(self.project)}/weave/calls/{self.id}"

    @property
    def ui_url(self) -> str:
        """The page of this call in the hosted Weave UI."""
        return self.ui_url_for(WANDB_APP_URL)


AnyRef: TypeAlias = ObjectRef | OpRef | TableRef | CallRef


def is_ref_uri(value: object) -> bool:
    """True when ``value`` is a string that looks like a ``weave:///`` ref (not validated)."""
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_ref(uri: str) -> AnyRef:
    """Parse a ``weave:///`` URI into an :class:`ObjectRef`, :class:`OpRef`,
    :class:`TableRef` or :class:`CallRef`.

    Extra path values are URL-unquoted. Raises :class:`InvalidRefError` saying
    exactly what is wrong (``missing digest in 'weave:///e/p/object/name'``).
    """
    if not isinstance(uri, str):
        raise InvalidRefError(f"expected a weave:/// URI string, got {type(uri).__name__}")
    if not uri.startswith(SCHEME):
        raise InvalidRefError(
            f"not a weave ref: {uri!r} (expected 'weave:///entity/project/kind/...')"
        )
    parts = uri[len(SCHEME) :].split("/")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        raise InvalidRefError(f"missing entity or project in {uri!r}")
    entity, project, kind = parts[0], parts[1], parts[2]
    if kind not in ("object", "op", "table", "call"):
        raise InvalidRefError(
            f"unknown kind {kind!r} in {uri!r} (expected object, op, table or call)"
        )
    ident = parts[3] if len(parts) > 3 else ""
    if not ident:
        what = {"object": "name:digest", "op": "name:digest", "table": "digest", "call": "id"}
        raise InvalidRefError(f"missing {what[kind]} in {uri!r}")
    raw_extra = parts[4:]
    if raw_extra and raw_extra[-1] == "":
        raw_extra.pop()  # tolerate one trailing slash
    if "" in raw_extra:
        raise InvalidRefError(f"empty extra path part in {uri!r}")
    extra = tuple(unquote(p) for p in raw_extra)
    if extra:
        _check_extra(extra, repr(uri))
    try:
        if kind == "call":
            return CallRef(entity, project, ident, extra)
        if kind == "table":
            return TableRef(entity, project, ident, extra)
        name, colon, digest = ident.partition(":")
        if not colon or not digest:
            raise InvalidRefError(f"missing digest in {uri!r} (expected {kind}/name:digest)")
        if not name:
            raise InvalidRefError(f"missing name in {uri!r} (expected {kind}/name:digest)")
        cls = OpRef if kind == "op" else ObjectRef
        return cls(entity, project, name, digest, extra)
    except InvalidRefError as e:
        if uri in str(e):
            raise
        raise InvalidRefError(f"{e} in {uri!r}") from None


# --- names ------------------------------------------------------------------

_INVALID_NAME_CHARS = re.compile(r"[^\w._-]")
_PROJECT_FORBIDDEN = set("/\\#?%:")


def validate_object_name(name: str, *, what: str = "object name") -> str:
    """Check a name the trace server accepts for an object or op, and return it.

    Allowed: 1 to 128 letters, digits, ``_``, ``-`` and ``.``. Raises
    :class:`InvalidNameError` naming the offending characters. Use
    :func:`sanitize_object_name` to turn a free-form name into a valid one.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidNameError(f"{what} is empty")
    bad = _INVALID_NAME_CHARS.findall(name)
    if bad:
        shown = ", ".join(repr(c) for c in sorted(set(bad)))
        raise InvalidNameError(
            f"invalid {what} {name!r}: contains {shown} "
            "(allowed: letters, digits, '_', '-' and '.')"
        )
    if len(name) > MAX_OBJECT_NAME_LENGTH:
        raise InvalidNameError(
            f"invalid {what} {name[:40]!r}...: {len(name)} characters "
            f"(at most {MAX_OBJECT_NAME_LENGTH})"
        )
    return name


def sanitize_object_name(name: str, *, what: str = "object name") -> str:
    """Turn a free-form name into a valid object name, as weave's client does.

    Runs of disallowed characters become one ``-``, runs of separators collapse
    to one ``-``, leading/trailing ``-``/``_`` go, and the result is cut to 128
    characters. Raises :class:`InvalidNameError` (naming ``what``) when nothing is left.
    The one sanitiser of the package: op names (``_op_source.sanitize_name``) use it too.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a str, got {type(name).__name__}")
    res = re.sub(r"([._-]{2,})+", "-", re.sub(r"[^\w._]+", "-", name)).strip("-_")
    if not res:
        raise InvalidNameError(f"invalid {what} {name!r}: no letters or digits")
    return res[:MAX_OBJECT_NAME_LENGTH]


def validate_entity_project(entity: str, project: str) -> None:
    """Check an entity and project name pair, raising :class:`InvalidNameError`.

    Both must be non-empty strings of at most 128 characters without
    surrounding whitespace or any of ``/ \\ # ? % :`` (they become URL parts and
    the ``entity/project`` project id).
    """
    for what, value in (("entity", entity), ("project", project)):
        if not isinstance(value, str):
            raise InvalidNameError(f"{what} must be a str, got {type(value).__name__}")
        if not value:
            raise InvalidNameError(f"{what} name is empty")
        if value != value.strip():
            raise InvalidNameError(f"invalid {what} name {value!r}: surrounding whitespace")
        bad = sorted(_PROJECT_FORBIDDEN.intersection(value))
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            raise InvalidNameError(f"invalid {what} name {value!r}: contains {shown}")
        if len(value) > 128:
            raise InvalidNameError(
                f"invalid {what} name {value[:40]!r}...: {len(value)} characters (at most 128)"
            )
