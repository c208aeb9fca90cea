"""A bounded schemathesis fuzz run of the local server's OpenAPI: no input gets a 5xx.

Seeded (``derandomize``) and small (``EXAMPLES_PER_OPERATION`` per route), so it
is repeatable and fits the suite's time budget; run it alone with
``.venv/bin/pytest -q tests/reliability/test_fuzz_server.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from weave_client.server import start_background_server

EXAMPLES_PER_OPERATION = 6  # per generation mode


@pytest.fixture(scope="module")
def fuzz_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path: Path = tmp_path_factory.mktemp("fuzz") / "trace.db"
    server = start_background_server(db_path=db_path, port=0)
    try:
        yield str(server.url).rstrip("/")
    finally:
        server.stop()


def test_no_input_gets_a_server_error(fuzz_server_url: str) -> None:
    # Driven by hand (one Hypothesis run per operation) rather than through
    # schemathesis' pytest plugin, which does not support this pytest version yet.
    schema = schemathesis.openapi.from_url(f"{fuzz_server_url}/openapi.json")
    server_errors: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]

    # Valid bodies (which reach the handlers and the SQL) and invalid ones (which
    # must be refused with a 4xx), for every route.
    no_negative: list[str] = []
    plans = [(op, mode) for op in operations for mode in schemathesis.GenerationMode]
    for operation, mode in plans:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            response = case.call(base_url=fuzz_server_url, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}:"
                    f" {response.text[:300]} (body {case.body!r:.500})"
                )

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (a GET with no parameters): no negative cases.
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            no_negative.append(operation.label)

    total = sum(statuses.values())
    print(
        f"\n[fuzz] {total} requests over {len(operations)} operations (valid and invalid bodies), statuses {dict(statuses)}"
        f"\n  no invalid form: {no_negative}"
        "\n  reproduce: .venv/bin/pytest -q -s tests/reliability/test_fuzz_server.py"
    )
    assert len(operations) >= 20
    assert total >= len(plans) * EXAMPLES_PER_OPERATION // 2
    assert server_errors == []
