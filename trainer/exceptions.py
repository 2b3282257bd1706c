"""Errors of the trainer, one type per thing that can go wrong; the CLI translates them once."""

from __future__ import annotations


class TrainerError(Exception):
    """Base class of trainer errors."""


class DataError(TrainerError, ValueError):
    """A bad row or file: the message names the file, the line and the reason."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class ConfigError(TrainerError, ValueError):
    """Hyper-parameters or options that cannot work together."""


class CheckpointError(TrainerError):
    """A resume checkpoint that is missing or does not match this run."""


class TrainingInterrupted(TrainerError):
    """Training stopped by Ctrl-C or an error; a resumable checkpoint was written."""

    def __init__(self, checkpoint: str, cause: BaseException) -> None:
        self.checkpoint = checkpoint
        super().__init__(
            f"training stopped ({type(cause).__name__}: {cause}); resume with --resume "
            f"(checkpoint {checkpoint})"
        )


class PromotionRefused(TrainerError):
    """The promotion gate said no; both accuracies are in the message."""

    def __init__(
        self,
        model: str,
        version: str,
        candidate: float | None,
        active: float | None,
        active_version: str | None,
        why: str = "",
    ) -> None:
        self.candidate, self.active = candidate, active
        cand = "unknown" if candidate is None else f"{candidate:.4f}"
        act = "unknown" if active is None else f"{active:.4f}"
        if why:
            text = f"cannot compare its dev accuracy {cand} with the active {model}@{active_version}: {why}"
        else:
            text = (
                f"its dev accuracy {cand} is below the active {model}@{active_version}'s {act} "
                "on the same dev set"
            )
        super().__init__(f"not promoting {model}@{version}: {text}; --force overrides")


class UerFormatError(TrainerError, ValueError):
    """A UER-py state dict that is not a BERT text classifier."""


class JobError(TrainerError, ValueError):
    """A malformed training job or feedback event."""
