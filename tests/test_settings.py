"""Settings resolution: arguments, then environment, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from weave_client import InvalidNameError, WeaveError
from weave_client._errors import InvalidSettingError
from weave_client._settings import (
    DEFAULT_PARALLELISM,
    HOSTED_TRACE_SERVER_URL,
    Settings,
    cache_dir,
    capture_code,
    disabled,
    is_hosted,
    local_db_path,
    parallelism,
    print_call_link,
    redact_keys,
    resolve_api_key,
    resolve_server_url,
    validate_entity_project,
    wandb_app_url,
    wandb_base_url,
)

_ENV = (
    "WEAVE_TRACE_SERVER_URL",
    "WF_TRACE_SERVER_URL",
    "WANDB_API_KEY",
    "WANDB_BASE_URL",
    "WANDB_APP_URL",
    "WEAVE_CLIENT_CACHE_DIR",
    "WEAVE_CLIENT_DB",
    "WEAVE_PARALLELISM",
    "XDG_CACHE_HOME",
    "WEAVE_DISABLED",
    "WEAVE_CAPTURE_CODE",
    "WEAVE_PRINT_CALL_LINK",
    "WEAVE_REDACT_KEYS",
)
SECRET = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- server URL ------------------------------------------------------------------


def test_no_url_and_no_key_means_the_embedded_server() -> None:
    assert resolve_server_url(None) is None


def test_argument_wins_over_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_TRACE_SERVER_URL", "http://env.example:1")
    clean_env.setenv("WANDB_API_KEY", SECRET)
    assert resolve_server_url("http://127.0.0.1:6345/") == "http://127.0.0.1:6345"


def test_env_url_wins_over_hosted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_TRACE_SERVER_URL", "http://localhost:6345")
    clean_env.setenv("WANDB_API_KEY", SECRET)
    assert resolve_server_url(None) == "http://localhost:6345"


def test_weave_legacy_env_name_is_honoured_after_ours(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WF_TRACE_SERVER_URL", "http://legacy:1")
    assert resolve_server_url(None) == "http://legacy:1"
    clean_env.setenv("WEAVE_TRACE_SERVER_URL", "http://ours:2")
    assert resolve_server_url(None) == "http://ours:2"


def test_api_key_alone_means_the_hosted_service(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WANDB_API_KEY", SECRET)
    assert resolve_server_url(None) == HOSTED_TRACE_SERVER_URL == "https://trace.wandb.ai"


def test_api_key_with_a_dedicated_wandb_server_uses_its_traces_route(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("WANDB_API_KEY", SECRET)
    clean_env.setenv("WANDB_BASE_URL", "https://wandb.acme.internal/")
    assert resolve_server_url(None) == "https://wandb.acme.internal/traces"


def test_empty_env_values_count_as_unset(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_TRACE_SERVER_URL", "  ")
    clean_env.setenv("WANDB_API_KEY", "")
    assert resolve_server_url(None) is None
    assert resolve_api_key(None) is None


@pytest.mark.parametrize(
    "bad", ["localhost:6345", "ftp://host", "http://", "http://host:notaport", "http://h/?q=1"]
)
def test_malformed_argument_url_is_named(bad: str) -> None:
    with pytest.raises(InvalidSettingError, match=r"^server_url ") as info:
        resolve_server_url(bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WeaveError)


def test_malformed_env_url_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_TRACE_SERVER_URL", "trace.example.com")
    with pytest.raises(InvalidSettingError, match=r"WEAVE_TRACE_SERVER_URL.*trace\.example\.com"):
        resolve_server_url(None)


def test_url_error_masks_a_password_in_the_url() -> None:
    with pytest.raises(InvalidSettingError) as info:
        resolve_server_url(f"ftp://api:{SECRET}@host:1")
    assert SECRET not in str(info.value)
    assert "api:***@host:1" in str(info.value)


# --- API key -----------------------------------------------------------------------


def test_api_key_argument_then_env(clean_env: pytest.MonkeyPatch) -> None:
    assert resolve_api_key(None) is None
    clean_env.setenv("WANDB_API_KEY", f" {SECRET}\n")
    assert resolve_api_key(None) == SECRET
    assert resolve_api_key("explicit-key") == "explicit-key"


def test_empty_api_key_argument_is_rejected_without_echoing_it() -> None:
    with pytest.raises(InvalidSettingError, match="api_key is empty"):
        resolve_api_key("   ")


# --- hosted or not ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hosted"),
    [
        ("https://trace.wandb.ai", True),
        ("https://trace.wandb.ai/", True),
        ("https://TRACE.WANDB.AI", True),
        ("http://127.0.0.1:6345", False),
        ("http://localhost", False),
        ("https://wandb.ai.evil.example", False),
        ("https://notwandb.ai", False),
    ],
)
def test_is_hosted(url: str, hosted: bool) -> None:
    assert is_hosted(url) is hosted


def test_dedicated_wandb_server_traces_route_is_hosted(clean_env: pytest.MonkeyPatch) -> None:
    assert not is_hosted("https://wandb.acme.internal/traces")
    clean_env.setenv("WANDB_BASE_URL", "https://wandb.acme.internal")
    assert is_hosted("https://wandb.acme.internal/traces")
    assert not is_hosted("https://wandb.acme.internal:8443/traces")
    assert not is_hosted("http://127.0.0.1:6345")


def test_wandb_base_and_app_urls(clean_env: pytest.MonkeyPatch) -> None:
    assert wandb_base_url() == "https://api.wandb.ai"
    assert wandb_app_url() == "https://wandb.ai"
    clean_env.setenv("WANDB_BASE_URL", "https://api.acme.com/")
    assert wandb_base_url() == "https://api.acme.com"
    assert wandb_app_url() == "https://app.acme.com"
    clean_env.setenv("WANDB_BASE_URL", "http://localhost:8080")
    assert wandb_app_url() == "http://localhost:8080"
    clean_env.setenv("WANDB_APP_URL", "https://ui.acme.com/")
    assert wandb_app_url() == "https://ui.acme.com"


def test_bad_wandb_base_url_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WANDB_BASE_URL", "api.wandb.ai")
    with pytest.raises(InvalidSettingError, match="WANDB_BASE_URL"):
        wandb_base_url()


# --- paths and parallelism -------------------------------------------------------------


def test_cache_dir_defaults_to_the_user_cache_dir(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("XDG_CACHE_HOME", "/tmp/xdg-cache-for-test")
    assert cache_dir() == Path("/tmp/xdg-cache-for-test/weave-client")
    assert local_db_path() == Path("/tmp/xdg-cache-for-test/weave-client/traces.db")


def test_cache_dir_and_db_overrides(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("WEAVE_CLIENT_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    assert local_db_path() == tmp_path / "cache" / "traces.db"
    clean_env.setenv("WEAVE_CLIENT_DB", str(tmp_path / "elsewhere.db"))
    assert local_db_path() == tmp_path / "elsewhere.db"
    clean_env.setenv("WEAVE_CLIENT_DB", "~/x.db")
    assert local_db_path() == Path.home() / "x.db"


def test_resolving_paths_creates_nothing(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("WEAVE_CLIENT_CACHE_DIR", str(tmp_path / "not-yet"))
    local_db_path()
    Settings.resolve()
    assert not (tmp_path / "not-yet").exists()


def test_parallelism(clean_env: pytest.MonkeyPatch) -> None:
    assert parallelism() == DEFAULT_PARALLELISM == 10
    clean_env.setenv("WEAVE_PARALLELISM", " 4 ")
    assert parallelism() == 4


@pytest.mark.parametrize("bad", ["ten", "2.5", "0", "-3", "100000"])
def test_bad_parallelism_names_the_variable_and_value(
    clean_env: pytest.MonkeyPatch, bad: str
) -> None:
    clean_env.setenv("WEAVE_PARALLELISM", bad)
    with pytest.raises(InvalidSettingError, match=r"WEAVE_PARALLELISM .*" + bad.lstrip("-")):
        parallelism()


# --- entity / project ---------------------------------------------------------------


def test_validate_entity_project_returns_the_project_id() -> None:
    assert validate_entity_project("my-entity", "my_project.v2") == "my-entity/my_project.v2"


@pytest.mark.parametrize(
    ("entity", "project", "names"),
    [
        ("", "p", "entity"),
        ("e", "", "project"),
        ("a/b", "p", "entity"),
        ("e", "p/q", "project"),
        ("e", "p:q", "project"),
        ("e", "what?", "project"),
        ("e", "100%", "project"),
        ("e", " p", "project"),
        ("e", "p" * 129, "project"),
    ],
)
def test_invalid_entity_or_project_names_the_part(entity: str, project: str, names: str) -> None:
    with pytest.raises(InvalidNameError, match=rf"\b{names}\b") as info:
        validate_entity_project(entity, project)
    other = "project" if names == "entity" else "entity"
    assert other not in str(info.value)


def test_non_string_entity_is_rejected() -> None:
    with pytest.raises(InvalidNameError, match="entity"):
        validate_entity_project(None, "p")  # type: ignore[arg-type]


# --- Settings ----------------------------------------------------------------------------


def test_settings_resolve_everything_and_hide_the_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WANDB_API_KEY", SECRET)
    clean_env.setenv("WEAVE_PARALLELISM", "3")
    settings = Settings.resolve()
    assert settings.server_url == HOSTED_TRACE_SERVER_URL
    assert settings.api_key == SECRET
    assert settings.is_hosted
    assert not settings.uses_embedded_server
    assert settings.parallelism == 3
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    with pytest.raises(AttributeError):
        settings.server_url = "http://x"  # type: ignore[misc]


def test_settings_for_the_embedded_server() -> None:
    settings = Settings.resolve()
    assert settings.server_url is None
    assert settings.uses_embedded_server
    assert not settings.is_hosted
    assert settings.api_key is None
    assert settings.local_db_path == local_db_path()


# --- tracing settings ----------------------------------------------------------------


def test_tracing_flags_default_as_documented() -> None:
    assert disabled() is False
    assert capture_code() is True
    assert print_call_link() is False
    assert redact_keys() == frozenset()


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("on", True), ("1", True),
                                                   ("yes", True), ("false", False), ("0", False),
                                                   ("Off", False), ("no", False)])
def test_tracing_flags_read_weaves_boolean_words(
    clean_env: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    clean_env.setenv("WEAVE_DISABLED", value)
    clean_env.setenv("WEAVE_CAPTURE_CODE", value)
    clean_env.setenv("WEAVE_PRINT_CALL_LINK", value)
    assert disabled() is expected
    assert capture_code() is expected
    assert print_call_link() is expected


def test_the_argument_wins_over_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_DISABLED", "true")
    clean_env.setenv("WEAVE_CAPTURE_CODE", "false")
    assert disabled(False) is False
    assert capture_code(True) is True


def test_a_bad_flag_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_CAPTURE_CODE", "sometimes")
    with pytest.raises(InvalidSettingError, match=r"WEAVE_CAPTURE_CODE.*'sometimes'"):
        capture_code()
    with pytest.raises(InvalidSettingError, match="print_call_link"):
        print_call_link(1)  # type: ignore[arg-type]


def test_redact_keys_join_the_argument_and_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEAVE_REDACT_KEYS", " Password , x-token")
    assert redact_keys(["Secret"]) == frozenset({"secret", "password", "x-token"})
    with pytest.raises(InvalidSettingError, match="redact_keys"):
        redact_keys("password")
    with pytest.raises(InvalidSettingError, match="redact_keys"):
        redact_keys([3])
