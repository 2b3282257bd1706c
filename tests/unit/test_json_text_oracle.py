"""The full-domain strategies and their reference oracle agree with the worker's decoder on
every record where the oracle is sure (no broker: the integration test runs the worker)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings

from schemas.decoding import Rejected, decode_event
from tests.integration.json_text import expected_outcome, payloads


def test_decoder_agrees_with_the_reference_oracle() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=payloads)
    def check(raw: bytes | None) -> None:
        want = expected_outcome(raw)
        got = decode_event(raw, 1_000_000)
        outcome = got.kind.value if isinstance(got, Rejected) else "labelled"
        seen[outcome] += 1
        if want != "any":
            assert (want == "labelled") == (outcome == "labelled"), (want, got, raw)

    check()
    refused = sum(n for kind, n in seen.items() if kind != "labelled")
    assert seen["labelled"] > 20 and refused > 20, seen  # both outcomes were exercised
