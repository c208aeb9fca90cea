"""Where a client sends its data and with which key: argument, then environment.

Pure and I/O-free (it reads ``os.environ`` and nothing else: no files, no
network, no directories created), shared by both client flavours and the local
server. Empty environment variables count as unset.

Server resolution, first match wins:

1. the ``server_url`` argument;
2. ``WEAVE_TRACE_SERVER_URL`` (or weave's own name for it, ``WF_TRACE_SERVER_URL``);
3. when ``WANDB_API_KEY`` is set: the hosted service, ``https://trace.wandb.ai``,
   or, as weave does, ``{WANDB_BASE_URL}/traces`` for a dedicated W&B server;
4. otherwise None: start the embedded local server.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, urlsplit

import platformdirs

from ._errors import InvalidSettingError
from ._refs import validate_entity_project as _check_entity_project

__all__ = [
    "DEFAULT_PARALLELISM",
    "DEFAULT_WANDB_BASE_URL",
    "HOSTED_TRACE_SERVER_URL",
    "Settings",
    "cache_dir",
    "capture_code",
    "disabled",
    "is_hosted",
    "local_db_path",
    "parallelism",
    "print_call_link",
    "redact_keys",
    "resolve_api_key",
    "resolve_server_url",
    "validate_entity_project",
    "wandb_app_url",
    "wandb_base_url",
]

HOSTED_TRACE_SERVER_URL: Final = "https://trace.wandb.ai"
DEFAULT_WANDB_BASE_URL: Final = "https://api.wandb.ai"
DEFAULT_PARALLELISM: Final = 10
MAX_PARALLELISM: Final = 1024

ENV_TRACE_SERVER_URL: Final = "WEAVE_TRACE_SERVER_URL"
ENV_WEAVE_TRACE_SERVER_URL_LEGACY: Final = "WF_TRACE_SERVER_URL"
ENV_API_KEY: Final = "WANDB_API_KEY"
ENV_BASE_URL: Final = "WANDB_BASE_URL"
ENV_APP_URL: Final = "WANDB_APP_URL"
ENV_CACHE_DIR: Final = "WEAVE_CLIENT_CACHE_DIR"
ENV_DB: Final = "WEAVE_CLIENT_DB"
ENV_PARALLELISM: Final = "WEAVE_PARALLELISM"
ENV_DISABLED: Final = "WEAVE_DISABLED"
ENV_CAPTURE_CODE: Final = "WEAVE_CAPTURE_CODE"
ENV_PRINT_CALL_LINK: Final = "WEAVE_PRINT_CALL_LINK"
ENV_REDACT_KEYS: Final = "WEAVE_REDACT_KEYS"

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})

_APP_NAME: Final = "weave-client"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _redacted(url: SplitResult) -> str:
    """The URL for a message, with any password in it masked."""
    if url.password is None:
        return url.geturl()
    host = url.hostname or ""
    if url.port is not None:
        host = f"{host}:{url.port}"
    return url._replace(netloc=f"{url.username or ''}:***@{host}").geturl()


def _check_url(value: str, source: str) -> str:
    """``value`` without a trailing slash, or InvalidSettingError naming ``source``."""
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSettingError(
            f"{source} must be an http(s) URL with a host, got {_redacted(parts)!r}"
        )
    try:
        parts.port  # noqa: B018 - evaluated for its validation only
    except ValueError:
        raise InvalidSettingError(f"{source} has an invalid port: {_redacted(parts)!r}") from None
    if parts.query or parts.fragment:
        raise InvalidSettingError(
            f"{source} must not have a query or fragment, got {_redacted(parts)!r}"
        )
    return url.rstrip("/")


def wandb_base_url() -> str:
    """The W&B API server: ``WANDB_BASE_URL``, default ``https://api.wandb.ai``."""
    value = _env(ENV_BASE_URL)
    return DEFAULT_WANDB_BASE_URL if value is None else _check_url(value, ENV_BASE_URL)


def wandb_app_url() -> str:
    """The W&B web app, for UI links: ``WANDB_APP_URL``, else derived from the API URL.

    ``https://api.wandb.ai`` -> ``https://wandb.ai``; ``https://api.example.com``
    -> ``https://app.example.com``; a W&B server without an ``api.`` host is its own app.
    """
    value = _env(ENV_APP_URL)
    if value is not None:
        return _check_url(value, ENV_APP_URL)
    base = wandb_base_url()
    if "://api.wandb." in base:
        return base.replace("://api.", "://", 1)
    if "://api." in base:
        return base.replace("://api.", "://app.", 1)
    return base


def _hosted_trace_url() -> str:
    base = wandb_base_url()
    return HOSTED_TRACE_SERVER_URL if base == DEFAULT_WANDB_BASE_URL else f"{base}/traces"


def resolve_server_url(server_url: str | None) -> str | None:
    """The trace server to use, or None for "start the embedded local server".

    Order: the argument, ``WEAVE_TRACE_SERVER_URL`` (then weave's
    ``WF_TRACE_SERVER_URL``), the hosted service when ``WANDB_API_KEY`` is set.
    The URL comes back without a trailing slash; a malformed one raises
    :class:`InvalidSettingError` naming where it came from.
    """
    if server_url is not None:
        return _check_url(server_url, "server_url")
    for name in (ENV_TRACE_SERVER_URL, ENV_WEAVE_TRACE_SERVER_URL_LEGACY):
        value = _env(name)
        if value is not None:
            return _check_url(value, name)
    if _env(ENV_API_KEY) is not None:
        return _hosted_trace_url()
    return None


def resolve_api_key(api_key: str | None) -> str | None:
    """The API key: the argument, then ``WANDB_API_KEY``; None when neither is set.

    Surrounding whitespace is dropped (a key pasted with a newline still works).
    """
    if api_key is not None:
        key = api_key.strip()
        if not key:
            raise InvalidSettingError("api_key is empty; pass None to use WANDB_API_KEY")
        return key
    return _env(ENV_API_KEY)


def is_hosted(url: str) -> bool:
    """True when ``url`` is a W&B trace service (hosted, or the one of ``WANDB_BASE_URL``).

    Such servers have W&B projects (``ensure_project_exists`` upserts them) and
    a web UI (refs and calls get ``ui_url``); any other server, such as the local
    one or weave's reference server, has neither.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host == "wandb.ai" or host.endswith(".wandb.ai"):
        return True
    if _env(ENV_BASE_URL) is None:
        return False
    own = urlsplit(_hosted_trace_url())
    return (parts.scheme, host, parts.port) == (
        own.scheme,
        (own.hostname or "").lower(),
        own.port,
    ) and parts.path.rstrip("/").startswith(own.path.rstrip("/"))


def cache_dir() -> Path:
    """Where weave-client keeps data: ``WEAVE_CLIENT_CACHE_DIR``, else the user cache dir.

    The user cache dir is platformdirs' (``~/.cache/weave-client`` on Linux). Not created here.
    """
    value = _env(ENV_CACHE_DIR)
    if value is not None:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir(_APP_NAME, appauthor=False))


def local_db_path() -> Path:
    """The embedded local server's SQLite file: ``WEAVE_CLIENT_DB``, else ``cache_dir()/traces.db``."""
    value = _env(ENV_DB)
    if value is not None:
        return Path(value).expanduser()
    return cache_dir() / "traces.db"


def parallelism() -> int:
    """How many requests a client runs at once: ``WEAVE_PARALLELISM``, default 10.

    Must be a whole number from 1 to 1024; anything else raises :class:`InvalidSettingError`.
    """
    value = _env(ENV_PARALLELISM)
    if value is None:
        return DEFAULT_PARALLELISM
    try:
        n = int(value)
    except ValueError:
        raise InvalidSettingError(
            f"{ENV_PARALLELISM} must be a whole number, got {value!r}"
        ) from None
    if not 1 <= n <= MAX_PARALLELISM:
        raise InvalidSettingError(
            f"{ENV_PARALLELISM} must be between 1 and {MAX_PARALLELISM}, got {n}"
        )
    return n


def _flag(explicit: bool | None, option: str, env: str, default: bool) -> bool:
    """A boolean option: the argument, else the environment variable, else ``default``.

    The variable takes weave's true values (``1``, ``true``, ``yes``, ``on``) and
    their opposites (``0``, ``false``, ``no``, ``off``), in any case; anything
    else raises :class:`InvalidSettingError` naming it.
    """
    if explicit is not None:
        if not isinstance(explicit, bool):
            raise InvalidSettingError(f"{option} must be True or False, got {explicit!r}")
        return explicit
    value = _env(env)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidSettingError(
        f"{env} must be one of true/false, 1/0, yes/no, on/off; got {value!r}"
    )


def disabled(explicit: bool | None = None) -> bool:
    """Whether tracing is off: ``disabled=``, else ``WEAVE_DISABLED`` (default False)."""
    return _flag(explicit, "disabled", ENV_DISABLED, False)


def capture_code(explicit: bool | None = None) -> bool:
    """Whether op source is uploaded: ``capture_code=``, else ``WEAVE_CAPTURE_CODE`` (default True)."""
    return _flag(explicit, "capture_code", ENV_CAPTURE_CODE, True)


def print_call_link(explicit: bool | None = None) -> bool:
    """Whether each root call prints its URL: ``print_call_link=``, else
    ``WEAVE_PRINT_CALL_LINK`` (default False; weave's default is True)."""
    return _flag(explicit, "print_call_link", ENV_PRINT_CALL_LINK, False)


def redact_keys(explicit: object = None) -> frozenset[str]:
    """Extra keys whose values are recorded as ``REDACTED``, lower-cased.

    ``redact_keys=`` (an iterable of str) plus ``WEAVE_REDACT_KEYS`` (comma-separated);
    a key that is not a non-empty str raises :class:`InvalidSettingError`.
    """
    keys: list[str] = []
    if explicit is not None:
        if isinstance(explicit, str | bytes) or not hasattr(explicit, "__iter__"):
            raise InvalidSettingError(
                f"redact_keys must be a list of str keys, got {explicit!r}"
            )
        for key in explicit:
            if not isinstance(key, str) or not key.strip():
                raise InvalidSettingError(
                    f"redact_keys must hold non-empty str keys, got {key!r}"
                )
            keys.append(key.strip())
    value = _env(ENV_REDACT_KEYS)
    if value is not None:
        for key in value.split(","):
            if not key.strip():
                raise InvalidSettingError(
                    f"{ENV_REDACT_KEYS} must be comma-separated non-empty keys, got {value!r}"
                )
            keys.append(key.strip())
    return frozenset(k.lower() for k in keys)


def validate_entity_project(entity: str, project: str) -> str:
    """``"entity/project"``, the project id, after checking both names.

    Raises :class:`InvalidNameError` naming the bad part: each must be a
    non-empty string of at most 128 characters, without surrounding whitespace
    or any of ``/ \\ # ? % :`` (W&B's rule for project names; ``/`` and ``:``
    would also break ``weave:///entity/project/...`` refs).
    """
    _check_entity_project(entity, project)
    return f"{entity}/{project}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a client resolves from its arguments and the environment, once.

    ``server_url`` None means the embedded local server. The API key never
    appears in the repr.
    """

    server_url: str | None
    wandb_base_url: str
    cache_dir: Path
    local_db_path: Path
    parallelism: int
    api_key: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def resolve(cls, server_url: str | None = None, api_key: str | None = None) -> Settings:
        """Resolve every setting from the arguments, then the environment."""
        return cls(
            server_url=resolve_server_url(server_url),
            api_key=resolve_api_key(api_key),
            wandb_base_url=wandb_base_url(),
            cache_dir=cache_dir(),
            local_db_path=local_db_path(),
            parallelism=parallelism(),
        )

    @property
    def is_hosted(self) -> bool:
        """True when the server is a W&B trace service (see :func:`is_hosted`)."""
        return self.server_url is not None and is_hosted(self.server_url)

    @property
    def uses_embedded_server(self) -> bool:
        """True when no server was named: the client starts the local one."""
        return self.server_url is None
