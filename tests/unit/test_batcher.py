"""The micro-batcher with an injected clock: count, deadline from the first item, token budget."""

from worker.batcher import Batcher, estimate_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_full_by_count() -> None:
    b: Batcher[int] = Batcher(max_batch=3, max_wait_ms=50, max_tokens=1000, clock=FakeClock())
    for i in range(2):
        b.add(i, 10)
    assert not b.ready()
    b.add(2, 10)
    assert b.ready()
    assert b.take() == [0, 1, 2]
    assert len(b) == 0 and b.deadline() is None


def test_deadline_counts_from_the_first_item() -> None:
    clock = FakeClock()
    b: Batcher[str] = Batcher(max_batch=10, max_wait_ms=50, max_tokens=1000, clock=clock)
    b.add("a", 5)
    clock.now += 0.03
    b.add("b", 5)  # a later item does not move the deadline
    assert not b.ready()
    assert b.deadline() == 100.05
    clock.now += 0.021
    assert b.ready()
    assert b.take() == ["a", "b"]


def test_token_budget() -> None:
    b: Batcher[str] = Batcher(max_batch=100, max_wait_ms=50, max_tokens=100, clock=FakeClock())
    b.add("x", 60)
    assert b.would_overflow(50)
    assert not b.would_overflow(40)
    b.add("y", 40)
    assert b.ready()  # budget reached


def test_empty_batch_is_never_ready_and_first_item_may_exceed_budget() -> None:
    b: Batcher[str] = Batcher(max_batch=4, max_wait_ms=0, max_tokens=10, clock=FakeClock())
    assert not b.ready()
    assert not b.would_overflow(500)  # an empty batch takes any single item


def test_estimate_tokens_caps_at_max_length() -> None:
    assert estimate_tokens("北京", None, 512) == 4
    assert estimate_tokens("北京", "两会", 512) == 7
    assert estimate_tokens("字" * 2000, None, 512) == 512
