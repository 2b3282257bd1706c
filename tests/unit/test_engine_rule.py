"""The precision rule of `auto`: accuracy change on labelled probes and an agreement floor;
agreement alone without labels. Fake backends with known flips; the labelled probe file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelstore.probes import PROBE_FILE, probe_set, write_probe_file
from schemas.engine import CandidateReport, EngineChoice
from worker.backends.base import REFERENCE, Spec
from worker.engine_select import AcceptRule, PrecisionRefused, choose

ROWS = 200
CHUNK = 20
# The reference is right on rows where GOLD == REF_PRED: 180 of 200 (accuracy 0.9).
REF_PRED = np.zeros(ROWS, dtype=np.int64)
GOLD = np.zeros(ROWS, dtype=np.int64)
GOLD[180:] = 1  # the reference is wrong on rows 180..199
RIGHT = list(range(0, 180))
WRONG = list(range(180, 200))


class FakeBackend:
    """Logits that give REF_PRED except on `flips`, at a given speed (texts/s is measured,
    so the speed is set by sleeping per row)."""

    def __init__(self, spec: Spec, flips: list[int], delay: float = 0.0) -> None:
        self.spec, self.flips, self.delay, self.released = spec, set(flips), delay, False

    def forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import time

        time.sleep(self.delay * len(ids))
        out = np.zeros((len(ids), 2), dtype=np.float32)
        for i, row in enumerate(ids[:, 0]):
            label = REF_PRED[row] ^ (1 if int(row) in self.flips else 0)
            out[i, label] = 3.0
        return out

    def is_oom(self, exc: BaseException) -> bool:
        return False

    def release(self) -> None:
        self.released = True


def chunks() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rows = np.arange(ROWS, dtype=np.int64)[:, None]
    ones = np.ones((ROWS, 1), dtype=np.int64)
    return [(rows[i : i + CHUNK], ones[i : i + CHUNK], ones[i : i + CHUNK]) for i in range(0, ROWS, CHUNK)]  # fmt: skip


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def run(
    candidates: dict[Spec, tuple[list[int], float]],
    rule: AcceptRule,
    gold: np.ndarray | None = GOLD,
    mode: str = "auto",
) -> EngineChoice:
    backends = {REFERENCE: FakeBackend(REFERENCE, [], 0.005)} | {
        spec: FakeBackend(spec, flips, delay) for spec, (flips, delay) in candidates.items()
    }
    specs = [REFERENCE, *candidates] if mode == "auto" else list(candidates)
    _, choice, _ = choose(specs, mode, backends.__getitem__, chunks(), softmax, rule, None, gold)
    return choice


def by_spec(choice: EngineChoice) -> dict[tuple[str, str], CandidateReport]:
    return {(c.backend, c.precision): c for c in choice.candidates}


INT8, BF16 = Spec("onnx", "int8"), Spec("torch", "bf16")


def test_a_drop_in_accuracy_refuses_what_agreement_alone_would_accept() -> None:
    # 2 flips on rows the reference got right: agreement 0.99, accuracy 0.9 -> 0.89.
    choice = run({INT8: (RIGHT[:2], 0.0)}, AcceptRule())
    int8 = by_spec(choice)[("onnx", "int8")]
    assert int8.agreement == pytest.approx(0.99)
    assert int8.accuracy == pytest.approx(0.89) and int8.accuracy_delta == pytest.approx(-0.01)
    assert not int8.accepted and "accuracy drop 0.010" in (int8.reason or "")
    assert (choice.backend, choice.precision) == ("torch", "fp32")
    assert choice.labelled_probes == ROWS and choice.accuracy == pytest.approx(0.9)
    # Agreement alone (no labels) accepts the very same backend.
    unlabelled = run({INT8: (RIGHT[:2], 0.0)}, AcceptRule(), gold=None)
    assert (unlabelled.backend, unlabelled.precision) == ("onnx", "int8")
    assert by_spec(unlabelled)[("onnx", "int8")].accuracy_delta is None


def test_flips_that_cost_no_accuracy_pass_down_to_the_agreement_floor() -> None:
    # 3 right->wrong and 3 wrong->right: accuracy unchanged, agreement 0.97 (the floor).
    choice = run({INT8: (RIGHT[:3] + WRONG[:3], 0.0)}, AcceptRule())
    int8 = by_spec(choice)[("onnx", "int8")]
    assert int8.accuracy_delta == pytest.approx(0.0) and int8.agreement == pytest.approx(0.97)
    assert int8.accepted and (choice.backend, choice.precision) == ("onnx", "int8")
    assert choice.accuracy_delta == pytest.approx(0.0) and "accuracy drop" in (choice.rule or "")
    # 0.96 is below the floor, whatever the accuracy says (here +0.01).
    low = run({INT8: (RIGHT[:3] + WRONG[:5], 0.0)}, AcceptRule())
    assert not by_spec(low)[("onnx", "int8")].accepted
    assert "agreement 0.960 < 0.97" in (by_spec(low)[("onnx", "int8")].reason or "")
    # One flip that costs 0.5 points is allowed by the default rule (drop <= 0.005).
    one = run({INT8: (RIGHT[:1], 0.0)}, AcceptRule())
    assert by_spec(one)[("onnx", "int8")].accepted


def test_auto_takes_the_fastest_accepted_and_explicit_refusal_names_the_drop() -> None:
    fast_bad, slower_ok = (RIGHT[:4], 0.0), (WRONG[:1], 0.0005)
    choice = run({INT8: fast_bad, BF16: slower_ok}, AcceptRule())
    assert (choice.backend, choice.precision) == ("torch", "bf16")
    assert by_spec(choice)[("torch", "bf16")].accuracy_delta == pytest.approx(0.005)
    with pytest.raises(PrecisionRefused, match=r"accuracy drop 0\.020"):
        run({INT8: fast_bad}, AcceptRule(), mode="explicit")
    # A looser drop setting accepts it.
    loose = run({INT8: fast_bad}, AcceptRule(max_accuracy_drop=0.05), mode="explicit")
    assert (loose.backend, loose.precision) == ("onnx", "int8")


def test_too_few_labels_fall_back_to_agreement_alone() -> None:
    few = np.full(ROWS, -1, dtype=np.int64)
    few[:10] = 0
    choice = run({INT8: (RIGHT[:2], 0.0)}, AcceptRule(min_agreement=0.995), gold=few)
    int8 = by_spec(choice)[("onnx", "int8")]
    assert int8.accuracy is None and not int8.accepted and "agreement" in (int8.reason or "")
    assert choice.labelled_probes == 0 and "no labelled" in (choice.rule or "")


def test_old_choices_without_accuracy_fields_still_read() -> None:
    old = {"backend": "onnx", "precision": "int8", "device": "cpu", "mode": "auto",
           "candidates": [{"backend": "onnx", "precision": "int8", "agreement": 0.99}]}  # fmt: skip
    choice = EngineChoice.model_validate(old)
    assert choice.accuracy_delta is None and choice.candidates[0].accuracy is None
    assert "accuracy" not in choice.summary()


def test_the_probe_file_keeps_labels_and_skips_bad_lines(tmp_path: Path) -> None:
    rows = [(f"第{i}条评论", None) for i in range(300)]
    write_probe_file(
        tmp_path, rows, labels=["positive" if i % 2 else "negative" for i in range(300)]
    )
    with (tmp_path / PROBE_FILE).open("a", encoding="utf-8") as fh:
        fh.write('{"text": \n[1, 2]\n{"text": 5}\n' + json.dumps({"text": "x", "label": 7}) + "\n")
    probes = probe_set(tmp_path, count=400)
    assert probes.source == "version+shipped" and len(probes.texts) == 400
    assert probes.labels[:2] == ["negative", "positive"] and probes.labels[300] is None
    assert probes.labels[-1] is None  # shipped texts carry no labels
    ids = probes.label_ids({"negative": 0, "positive": 1})
    assert ids[:3] == [0, 1, 0] and ids[301] is None
    assert probes.label_ids({"negative": 0})[1] is None  # a label the model does not have


def test_status_json_shows_each_candidates_accuracy_change() -> None:
    from admin.render import worker_row
    from schemas.status import WorkerStatus

    choice = run({INT8: (RIGHT[:3] + WRONG[:3], 0.0), BF16: (RIGHT[:2], 0.0)}, AcceptRule())
    status = WorkerStatus(worker_id="w1", host="h", pid=1, at_ms=0, versions={"news": "v3"},
                          engines={"news": choice})  # fmt: skip
    row = worker_row(WorkerStatus.model_validate_json(status.model_dump_json()), False, 0)
    listed = {(c["backend"], c["precision"]): c for c in row["engine_candidates"]["news"]}
    assert listed[("torch", "bf16")]["accuracy_delta"] == pytest.approx(-0.01)
    assert listed[("torch", "bf16")]["accepted"] is False
    assert listed[("onnx", "int8")]["accepted"] is True
    assert row["engine_choices"]["news"]["accuracy_delta"] == pytest.approx(0.0)


def test_metrics_export_each_candidates_agreement_and_accuracy_delta() -> None:
    from prometheus_client import REGISTRY

    from worker.metrics import record_engine

    choice = run({INT8: (RIGHT[:1], 0.0)}, AcceptRule())
    record_engine("rule-model", "v9", choice, True)
    labels = {"model": "rule-model", "version": "v9", "backend": "onnx", "precision": "int8"}
    delta = REGISTRY.get_sample_value("streamclf_engine_candidate_accuracy_delta", labels)
    agree = REGISTRY.get_sample_value("streamclf_engine_candidate_agreement", labels)
    assert delta == pytest.approx(-0.005) and agree == pytest.approx(0.995)
    record_engine("rule-model", "v9", choice, False)  # the version leaves: its series go
    assert REGISTRY.get_sample_value("streamclf_engine_candidate_agreement", labels) is None


def test_int8_static_is_an_onnx_precision_only() -> None:
    import torch

    from worker.backends.base import BackendUnavailable
    from worker.engine_select import candidate_specs

    cpu = torch.device("cpu")
    specs, mode = candidate_specs("auto", "auto", cpu, True)
    assert Spec("onnx", "int8-static") in specs and mode == "auto"
    assert Spec("onnx", "int8-static") not in candidate_specs("auto", "auto", cpu, False)[0]
    assert candidate_specs("onnx", "int8-static", cpu, True)[0] == [Spec("onnx", "int8-static")]
    assert candidate_specs("auto", "int8-static", cpu, True)[0] == [Spec("onnx", "int8-static")]
    with pytest.raises(BackendUnavailable, match="onnx precision"):
        candidate_specs("torch", "int8-static", cpu, True)


def test_torch_bf16_is_a_cpu_candidate_only_with_native_bf16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from worker import engine_select

    cpu = torch.device("cpu")
    monkeypatch.setattr(engine_select, "cpu_has_bf16", lambda: False)
    assert Spec("torch", "bf16") not in engine_select.candidate_specs("auto", "auto", cpu, True)[0]
    assert engine_select.candidate_specs("torch", "bf16", cpu, True)[0] == [Spec("torch", "bf16")]
    monkeypatch.setattr(engine_select, "cpu_has_bf16", lambda: True)
    assert Spec("torch", "bf16") in engine_select.candidate_specs("auto", "auto", cpu, True)[0]
