"""Errors of the model store."""


class ModelStoreError(Exception):
    """Base class of model store errors."""


class InvalidName(ModelStoreError, ValueError):
    """A model or version name that is not allowed (path traversal, odd characters)."""


class ModelNotFound(ModelStoreError, LookupError):
    pass


class VersionNotFound(ModelStoreError, LookupError):
    pass


class UnsafeWeights(ModelStoreError):
    """Weights that are not safetensors, or whose checksum does not match."""


class IntegrityError(ModelStoreError):
    """A stored file that is not what the version's card says: the version is refused.

    The message is one line naming the version and the file."""

    def __init__(self, name: str, file: str, problem: str) -> None:
        self.name, self.file = name, file
        super().__init__(f"{name}: {file} {problem}; version refused (`streamclf models verify`)")


class NoActiveVersion(ModelStoreError, LookupError):
    """A model with several versions and no active pointer: nothing says which one serves."""


class VersionRetired(ModelStoreError, ValueError):
    """A version name that was deleted: names are never reused for other weights."""


class NotACheckpoint(ModelStoreError):
    """A directory that is not a Hugging Face classification checkpoint."""


class HubError(ModelStoreError):
    """The Hugging Face hub could not provide a checkpoint."""


class HubNotFound(HubError, LookupError):
    """No such repository (or revision) on the hub, or it is private."""


class HubGated(HubError):
    """A gated repository whose conditions were not accepted with the token used."""


class HubOffline(HubError):
    """The hub cannot be reached and the checkpoint is not in the local cache."""
