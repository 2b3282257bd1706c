"""Typed doors to the few Hugging Face `transformers` calls that its own annotations leave
untyped or unnamed, so the callers stay checked without `# type: ignore`."""

from __future__ import annotations

import importlib
from typing import Any


def bert_tokenizer_fast() -> Any:
    """The `BertTokenizerFast` class: a class of its own before transformers 5, an alias of
    `BertTokenizer` since, and no longer exported by name to type checkers."""
    return importlib.import_module("transformers").BertTokenizerFast


def disable_progress_bar() -> None:
    """No tqdm bars from transformers (downloads, weight loading)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def set_verbosity_error() -> None:
    """transformers logs errors only (not "some weights were not initialised")."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def linear_schedule_with_warmup(optimizer: Any, warmup_steps: int, total_steps: int) -> Any:
    """transformers' linear warm-up then linear decay learning-rate schedule."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, warmup_steps, total_steps
    )
