"""What is never recorded: the redacted keys and the text put in their place, named once.

I/O-free and flavour-free. The trace encoders (``_encode_trace``, ``_trace_values``)
start from :data:`DEFAULT_REDACT_KEYS` and extend it process-wide with a
client's ``redact_keys``; the integrations also redact :data:`SECRET_HEADER_NAMES`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_REDACT_KEYS", "REDACTED_VALUE", "SECRET_HEADER_NAMES"]

REDACTED_VALUE: Final = "REDACTED"
"""What a redacted value (or the client's own API key inside a recorded text) becomes."""

DEFAULT_REDACT_KEYS: Final = frozenset({"api_key", "auth_headers", "authorization"})
"""Dict keys and argument names (lower-case) whose values weave's client never records."""

SECRET_HEADER_NAMES: Final = frozenset(
    {"api-key", "x-api-key", "authorization", "proxy-authorization"}
)
"""HTTP header names (lower-case) holding credentials, redacted from recorded SDK requests."""
