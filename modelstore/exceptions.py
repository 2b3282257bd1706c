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


class NoActiveVersion(ModelStoreError, LookupError):
    """A model with several versions and no active pointer: nothing says which one serves."""


class VersionRetired(ModelStoreError, ValueError):
    """A version name that was deleted: names are never reused for other weights."""
