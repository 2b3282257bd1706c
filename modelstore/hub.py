"""Fetching a checkpoint from the Hugging Face hub (or its local cache), safetensors first.

Errors are translated once into `HubNotFound`, `HubGated` and `HubOffline`, each saying what
to do. `HF_HOME` / `HF_HUB_CACHE`, `HF_HUB_OFFLINE=1` and `HF_TOKEN` work as usual.
"""

from __future__ import annotations

from pathlib import Path

from modelstore.exceptions import HubError, HubGated, HubNotFound, HubOffline

CONFIG_AND_TOKENIZER = ["config.json", "*.txt", "tokenizer*.json", "special_tokens_map.json"]
SAFE_WEIGHTS = "model.safetensors"
LEGACY_WEIGHTS = "pytorch_model.bin"


def looks_like_hub_id(source: str) -> bool:
    """`name` or `org/name`, no path-like prefix."""
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not source.startswith((".", "~"))


def fetch(repo_id: str, revision: str | None = None) -> Path:
    """The snapshot directory of `repo_id` at `revision`: `model.safetensors` when the repo
    has it, `pytorch_model.bin` only when it does not."""
    from huggingface_hub import snapshot_download

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        path = Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=[*CONFIG_AND_TOKENIZER, SAFE_WEIGHTS]
            )
        )
        if not (path / SAFE_WEIGHTS).is_file():
            path = Path(
                snapshot_download(
                    repo_id,
                    revision=revision,
                    allow_patterns=[*CONFIG_AND_TOKENIZER, LEGACY_WEIGHTS],
                )
            )
    except Exception as exc:
        raise translate(exc, repo_id, where) from exc
    return path


def translate(exc: Exception, repo_id: str, where: str) -> HubError:
    """huggingface_hub's exception -> ours, with the fix in the message."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = f"https://huggingface.co/{repo_id}"
    if isinstance(exc, GatedRepoError):
        return HubGated(
            f"hub model {where} is gated: accept its conditions at {url} and set HF_TOKEN "
            "(or run `hf auth login`) for the account that accepted them"
        )
    if isinstance(exc, RevisionNotFoundError):
        return HubNotFound(
            f"hub model {repo_id} has no revision {where.partition('@')[2]!r}: "
            f"pick a branch, tag or commit listed at {url}/tree/main"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return HubNotFound(
            f"hub model {where} not found: check the id at {url}; a private repository needs "
            "HF_TOKEN (or `hf auth login`)"
        )
    if isinstance(exc, LocalEntryNotFoundError | OfflineModeIsEnabled):
        return HubOffline(
            f"hub model {where} is not in the local cache ({constants.HF_HUB_CACHE}) and the "
            "hub cannot be reached (HF_HUB_OFFLINE=1 or no network): fetch it where the hub is "
            "reachable (`hf download " + repo_id + "`) and copy the cache, or import a local "
            "checkpoint directory"
        )
    if isinstance(exc, HfHubHTTPError):
        return HubError(f"hub model {where}: the hub answered with an error: {exc}")
    return HubError(f"hub model {where}: {exc}")
