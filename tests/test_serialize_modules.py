"""``_serialize`` is a facade over one module per idea; its module-level state lives once."""

from __future__ import annotations

import pytest

from weave_client import _encode_trace, _serialize
from weave_client._redact import REDACTED_VALUE


def test_set_redact_keys_through_serialize_reaches_the_trace_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Restored afterwards: the redacted keys are process-wide.
    monkeypatch.setattr(_encode_trace, "_REDACT_KEYS", _encode_trace._REDACT_KEYS)
    monkeypatch.setattr(_encode_trace, "_REDACT_LENS", _encode_trace._REDACT_LENS)
    value = {"x_probe_secret_key": "s3cret", "other": [{"X_Probe_Secret_Key": "s3cret"}]}
    assert _serialize.encode_for_trace(value) == value

    _serialize.set_redact_keys(_encode_trace._REDACT_KEYS | {"x_probe_secret_key"})

    assert _serialize.encode_for_trace(value) == {
        "x_probe_secret_key": REDACTED_VALUE,
        "other": [{"X_Probe_Secret_Key": REDACTED_VALUE}],
    }
    assert "_REDACT_KEYS" not in vars(_serialize)  # one copy of the state, not two


def test_every_name_serialize_exports_is_there() -> None:
    missing = [name for name in _serialize.__all__ if not hasattr(_serialize, name)]
    assert not missing
