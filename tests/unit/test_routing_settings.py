"""Routes and settings parse from flags, env vars and a config file."""

from pathlib import Path

import pytest

from worker.routing import Route, RouteError, Router, parse_route
from worker.settings import WorkerSettings


def test_parse_route_defaults_and_explicit_output() -> None:
    assert parse_route("news=chinanews") == Route("news", "chinanews", "news.labelled", "news.dlq")
    assert parse_route("a=m:b").out_topic == "b"


@pytest.mark.parametrize("spec", ["news", "news=", "news=../x", "bad topic=m", "t=m:t"])
def test_bad_routes(spec: str) -> None:
    with pytest.raises(RouteError):
        parse_route(spec)


def test_router_refuses_a_topic_routed_twice() -> None:
    with pytest.raises(RouteError):
        Router([parse_route("a=m1"), parse_route("a=m2")])


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCLF_ROUTES", "a=m1, b=m2:out")
    monkeypatch.setenv("STREAMCLF_MAX_BATCH", "64")
    s = WorkerSettings()
    assert [r.model for r in s.parsed_routes()] == ["m1", "m2"]
    assert s.max_batch == 64


def test_settings_from_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "worker.yaml"
    cfg.write_text("routes: ['x=m']\nmax_wait_ms: 7\nredis_url: redis://:pw@h:6379/0\n")
    monkeypatch.setenv("STREAMCLF_CONFIG_FILE", str(cfg))
    s = WorkerSettings()
    assert s.routes == ["x=m"] and s.max_wait_ms == 7
    assert s.redis_url is not None and "pw" not in repr(s)  # secrets stay hidden


def test_settings_reject_bad_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCLF_ROUTES", "nonsense")
    with pytest.raises(ValueError):
        WorkerSettings()
