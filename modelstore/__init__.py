"""The versioned model store: `<store>/<model>/<version>/` directories of HF checkpoints."""

from modelstore.exceptions import (
    InvalidName,
    ModelNotFound,
    ModelStoreError,
    NoActiveVersion,
    UnsafeWeights,
    VersionNotFound,
    VersionRetired,
)
from modelstore.names import validate_name
from modelstore.store import ModelStore, VersionInfo

__all__ = [
    "InvalidName",
    "ModelNotFound",
    "ModelStore",
    "ModelStoreError",
    "NoActiveVersion",
    "UnsafeWeights",
    "VersionInfo",
    "VersionNotFound",
    "VersionRetired",
    "validate_name",
]
