"""UER-py -> HF key mapping: a round trip through a tiny random classifier is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelstore.loading import load_classifier
from modelstore.presets import build_model
from modelstore.store import ModelStore
from trainer.exceptions import UerFormatError
from trainer.uer import hf_to_uer, import_uer, uer_to_hf

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    model = build_model("tiny-random", LABELS, seed=5)
    with torch.no_grad():  # make every tensor distinct, including the LayerNorms and biases
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def test_uer_keys_are_uer_pys(hf_model) -> None:
    uer = hf_to_uer(hf_model.state_dict())
    assert "embedding.word_embedding.weight" in uer
    assert "encoder.transformer.1.self_attn.linear_layers.2.weight" in uer
    assert "encoder.transformer.0.layer_norm_2.gamma" in uer
    assert uer["output_layer_2.weight"].shape == (3, 128)
    assert uer["embedding.segment_embedding.weight"].shape[0] == 3  # padding row + A + B
    assert torch.count_nonzero(uer["embedding.segment_embedding.weight"][0]) == 0


def test_round_trip_exact(hf_model) -> None:
    original = {k: v for k, v in hf_model.state_dict().items() if not k.endswith("position_ids")}
    back = uer_to_hf(hf_to_uer(original))
    assert set(back) == set(original)
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_newer_uer_names_and_dataparallel_prefix(hf_model) -> None:
    uer = hf_to_uer(hf_model.state_dict())
    uer["embedding.word.embedding.weight"] = uer.pop("embedding.word_embedding.weight")
    uer = {f"module.{k}": v for k, v in uer.items()}
    back = uer_to_hf(uer)
    assert torch.equal(
        back["bert.embeddings.word_embeddings.weight"],
        hf_model.state_dict()["bert.embeddings.word_embeddings.weight"],
    )


def test_missing_keys_are_named(hf_model) -> None:
    uer = hf_to_uer(hf_model.state_dict())
    del uer["output_layer_1.weight"]
    with pytest.raises(UerFormatError, match=r"output_layer_1\.weight"):
        uer_to_hf(uer)
    with pytest.raises(UerFormatError, match="not a UER-py BERT"):
        uer_to_hf({"foo": torch.zeros(1)})


def test_import_uer_gives_identical_logits(hf_model, tmp_path: Path) -> None:
    checkpoint = tmp_path / "classifier_model.bin"
    torch.save(hf_to_uer(hf_model.state_dict()), checkpoint)
    store = ModelStore(tmp_path / "store")
    version = import_uer(store, "uer", checkpoint, LABELS, heads=2)
    card = store.card("uer", version)
    assert card.source == "import-uer" and card.labels == LABELS
    model, tokenizer = load_classifier(store.require("uer", version))
    model.config.layer_norm_eps = hf_model.config.layer_norm_eps  # compare the mapping only
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = hf_model.config.layer_norm_eps
    batch = tokenizer(
        ["北京上个月召开了两会", "很好"], ["问", "答"], padding=True, return_tensors="pt"
    )
    hf_model.eval()
    with torch.no_grad():
        expected = hf_model(**batch).logits
        got = model(**batch).logits
    assert torch.equal(got, expected)


def test_import_uer_label_count_must_match(hf_model, tmp_path: Path) -> None:
    checkpoint = tmp_path / "m.bin"
    torch.save(hf_to_uer(hf_model.state_dict()), checkpoint)
    with pytest.raises(UerFormatError, match="3 outputs but 2 labels"):
        import_uer(ModelStore(tmp_path / "s"), "x", checkpoint, ["a", "b"], heads=2)


def test_cli_import_uer(hf_model, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from admin.cli import app

    checkpoint = tmp_path / "c.bin"
    torch.save(hf_to_uer(hf_model.state_dict()), checkpoint)
    store = tmp_path / "store"
    args = ["models", "import-uer", "uer", str(checkpoint), "--labels", "a,b,c", "--heads", "2"]
    result = CliRunner().invoke(app, [*args, "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "as uer@v1" in result.output
    result = CliRunner().invoke(app, [*args[:3], str(tmp_path / "none.bin"), *args[4:]])
    assert result.exit_code == 1 and "no such file" in result.output
