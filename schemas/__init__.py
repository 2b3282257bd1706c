"""Wire models of everything that crosses a process boundary. No I/O, imports nothing of ours."""

from schemas.card import ModelCard
from schemas.control import CanaryModel, ControlMessage, Rollback, ShadowModel, SwapModel
from schemas.deadletter import DeadLetter, ErrorKind
from schemas.events import LabelledEvent, LabelScore, TextEvent, Timings
from schemas.rollout import ShadowResult
from schemas.status import RolloutStatus, SwapResult, WorkerStatus
from schemas.training import Feedback, TrainJob, TrainResult

SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "CanaryModel",
    "ControlMessage",
    "DeadLetter",
    "ErrorKind",
    "Feedback",
    "LabelScore",
    "LabelledEvent",
    "ModelCard",
    "Rollback",
    "RolloutStatus",
    "ShadowModel",
    "ShadowResult",
    "SwapModel",
    "SwapResult",
    "TextEvent",
    "Timings",
    "TrainJob",
    "TrainResult",
    "WorkerStatus",
]
