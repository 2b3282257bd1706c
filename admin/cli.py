"""The `streamclf` command: one entry point, a typer sub-app per noun."""

from __future__ import annotations

import logging
import sys

import typer

from admin.commands import (
    dlq,
    drift,
    model_ops,
    models,
    review,
    rollout,
    schemas_cmd,
    stack,
    stream,
    topics,
)
from admin.commands import train as train_cmds
from admin.commands.bench import bench
from admin.commands.predict import predict
from admin.commands.status import status
from admin.commands.worker import worker
from admin.context import EXIT_UNAVAILABLE, print_error
from bus.exceptions import BusError

# Connection errors are translated into one line by bus/ and the commands; the worker
# raises aiokafka's own level again (`streamclf worker`).
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

app = typer.Typer(
    name="streamclf",
    help="Streaming classification of Chinese text over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(models.app, name="models")
app.command("worker")(worker)
app.command("produce")(stream.produce)
app.command("tail")(stream.tail)
app.command("predict")(predict)
app.command("status")(status)
app.command("bench")(bench)
app.add_typer(dlq.app, name="dlq")
app.add_typer(review.app, name="review")
app.add_typer(schemas_cmd.app, name="schemas")
train_cmds.register(app)  # train, eval, trainer serve
model_ops.register(models.app)  # models import-uer, models promote
rollout.register(models.app)  # models shadow, models canary, models compare
drift.register(models.app)  # models drift


def main() -> None:
    """Run the CLI; a broker error no command caught (a producer the broker refused in the
    worker, say) ends in its one line and exit 3, not a traceback."""
    try:
        app()
    except BusError as exc:
        print_error(str(exc))
        sys.exit(EXIT_UNAVAILABLE)


if __name__ == "__main__":
    main()
