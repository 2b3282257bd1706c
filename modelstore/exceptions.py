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
