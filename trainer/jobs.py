"""What a training job from the jobs topic may ask for: files inside the data root, promotion
only when signed, and answers that never carry a secret.

The jobs topic is as open as the broker: a job may name any path and ask for promotion. So
every path resolves inside `STREAMCLF_TRAINER_DATA_ROOT` (absolute paths outside it, `..` and
symlinks that lead out are refused), a job that asks to promote must carry an HMAC signature
made with the control key (refused when none is configured), and error texts that go back on
the results topic have every configured secret and secret-looking environment value masked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from schemas.signing import verify_value
from schemas.training import TrainJob
from trainer.exceptions import JobError

_SECRET_NAME = re.compile(r"(KEY|PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|AUTH)", re.IGNORECASE)
_MIN_SECRET_LEN = 4


def confine(root: Path, raw: str, what: str) -> str:
    """The absolute path of `raw` (relative to `root`, or absolute inside it); else JobError."""
    path = Path(raw)
    if ".." in path.parts:
        raise JobError(f"{what}: '..' is not allowed in job paths")
    base = root.resolve()
    resolved = (path if path.is_absolute() else base / path).resolve()
    if not resolved.is_relative_to(base):
        raise JobError(
            f"{what}: {raw} is outside the trainer's data root (STREAMCLF_TRAINER_DATA_ROOT); "
            "jobs may only name files inside it"
        )
    return str(resolved)


def confined_paths(job: TrainJob, root: Path) -> dict[str, str | None]:
    """train, dev, test and base_dir of `job`, each resolved inside `root`."""
    out: dict[str, str | None] = {}
    for name in ("train", "dev", "test", "base_dir"):
        raw = getattr(job, name)
        out[name] = confine(root, raw, name) if raw else None
    return out


def check_promotion(
    job: TrainJob, key: str | None, header: bytes | None = None, value: bytes | None = None
) -> None:
    """A job that asks to promote must be signed with the control key; JobError if not.

    Signed means: the record's `streamclf-signature` `header` is the HMAC of its `value`
    bytes, or (without that header) the job's `signature` field verifies.
    """
    if not job.promote:
        return
    if not key:
        raise JobError(
            "promote: refused, no control key is configured (STREAMCLF_CONTROL_KEY); promotion "
            "through the jobs topic needs a job signed with it"
        )
    if header is not None:
        if value is None or not verify_value(key, value, header):
            raise JobError("promote: refused, the job is badly signed (its header signature)")
    elif not job.verify(key):
        why = "unsigned" if not job.signature else "badly signed"
        raise JobError(f"promote: refused, the job is {why} (sign it with the control key)")


def secret_values(extra: list[str | None]) -> list[str]:
    """Configured secrets plus environment values whose names look secret, longest first."""
    found = {v for v in extra if v and len(v) >= _MIN_SECRET_LEN}
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN:
            found.add(value)
    return sorted(found, key=len, reverse=True)


def redact(text: str | None, secrets: list[str]) -> str | None:
    """`text` with every secret value replaced by `***`."""
    if not text:
        return text
    for value in secrets:
        text = text.replace(value, "***")
    return text
