"""Liveness and the HTTP endpoints on the metrics port: /metrics, /healthz, /readyz.

/healthz means "making progress", not "the process answers": the event loop ticks a heartbeat
every second, the consume loop beats every poll, and each pipeline records when it last
finished a batch or found its queue empty. Any of them silent for `stall_s` with work waiting
(or a pipeline task that ended) makes /healthz answer 503 with the reason, so the
orchestrator restarts the worker and uncommitted work is redone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

TICK_S = 1.0


class Progressing(Protocol):
    """What a pipeline shows to the liveness check."""

    model: str
    queue: asyncio.Queue[Any]
    busy_since: float | None
    last_progress: float


class Liveness:
    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self.loop_beat = clock()
        self.consume_beat: float | None = None  # None until the consume loop runs
        self.pipelines: dict[str, tuple[Progressing, asyncio.Task[Any] | None]] = {}

    async def tick(self) -> None:
        """The event loop's heartbeat; runs as a task for the worker's lifetime."""
        while True:
            self.loop_beat = self.clock()
            await asyncio.sleep(TICK_S)

    def watch(self, pipeline: Progressing, task: asyncio.Task[Any] | None) -> None:
        self.pipelines[pipeline.model] = (pipeline, task)

    def problem(self) -> str | None:
        """None when everything makes progress, else what does not."""
        now = self.clock()
        limit = self.stall_s
        if now - self.loop_beat > limit + TICK_S:
            return f"event loop blocked for {now - self.loop_beat:.0f}s"
        if self.consume_beat is not None and now - self.consume_beat > limit:
            return f"consume loop silent for {now - self.consume_beat:.0f}s"
        for model, (pipe, task) in self.pipelines.items():
            if task is not None and task.done():
                return f"pipeline {model} stopped"
            busy = pipe.busy_since
            if busy is not None and now - busy > limit:
                return f"pipeline {model} on one batch for {now - busy:.0f}s"
            if pipe.queue.qsize() and now - pipe.last_progress > limit:
                return f"pipeline {model} has {pipe.queue.qsize()} batches waiting, no progress for {now - pipe.last_progress:.0f}s"
        return None


def serve_health(
    host: str, port: int, is_ready: Callable[[], bool], problem: Callable[[], str | None]
) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; returns it (call `.shutdown()` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                reason = problem()
                self._reply(503 if reason else 200, f"{reason or 'ok'}\n".encode())
            elif path == "/readyz":
                ready = is_ready()
                self._reply(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
