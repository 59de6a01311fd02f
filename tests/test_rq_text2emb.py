"""text2emb: item text cleaning, pooling against a hand computation, sidecar, multi-process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import accelerate_cpu_ranks, cpu_ranks_env

from minionerec.errors import InputError
from minionerec.io import file_sha256
from minionerec.sid.item_text import clean_text, item_text, truncate
from minionerec.sid.text2emb import Text2EmbConfig, drop_words, main
from minionerec.sid.text_embed import default_encoder_path

ROOT = Path(__file__).resolve().parents[1]

ITEMS = {
    "0": {"title": "Hard Start Kit", "description": "['Relay kit. Designed for a/c.', 'Made in &quot;USA&quot;']"},
    "1": {"title": "Staples <b>1/2 in</b>", "description": ""},
    "2": {"title": "Glue", "description": "word " * 400},
    "3": {"title": "", "description": []},
    "4": {"title": "Tape...", "description": ["a", "b"]},
}


def test_item_text_cleaning_and_budget():
    assert clean_text("['Relay kit.', 'Made in &quot;USA&quot;']") == 'Relay kit. Made in "USA".'
    assert clean_text("Staples <b>1/2 in</b>") == "Staples 1/2 in."
    assert clean_text("Tape...") == "Tape."
    assert clean_text("[not a list") == "[not a list."
    assert item_text(ITEMS["3"]) == "unknown item"
    assert item_text(ITEMS["4"]) == "Tape. a b."
    budgeted = item_text(ITEMS["2"], char_budget={"description": 100})
    assert budgeted.startswith("Glue. word word") and budgeted.endswith("...") and len(budgeted) <= 6 + 103
    assert truncate("abc def", 0) == "abc def"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A 1-layer, 16-d BERT with MiniLM's tokenizer, saved like any HF model folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def item_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("items") / "D.item.json"
    path.write_text(json.dumps(ITEMS))
    return path


def run(item_file, encoder, out, **kw):
    cfg = Text2EmbConfig(item_json_path=str(item_file), output_path=str(out), model_path=str(encoder), batch_size=2,
                         max_length=64, device="cpu", **kw)
    return np.load(main(cfg))


def by_hand(encoder, texts, pooling):
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(encoder), AutoModel.from_pretrained(encoder).eval()
    rows = []
    with torch.no_grad():
        for text in texts:  # one text at a time: no padding at all
            hidden = model(**tok(text, truncation=True, max_length=64, return_tensors="pt")).last_hidden_state[0]
            rows.append(hidden.mean(0) if pooling == "mean" else hidden[-1])
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("pooling", ["mean", "last_token"])
def test_pooling_matches_hand_computation(tmp_path, tiny_encoder, item_file, pooling):
    emb = run(item_file, tiny_encoder, tmp_path / "e.npy", pooling=pooling, normalize=False)
    texts = [item_text(ITEMS[str(i)], ("title", "description"), {"description": 1500}) for i in range(5)]
    assert emb.shape == (5, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, by_hand(tiny_encoder, texts, pooling), rtol=1e-4, atol=1e-5)


def test_normalised_output_and_sidecar(tmp_path, tiny_encoder, item_file):
    emb = run(item_file, tiny_encoder, tmp_path / "e.npy", pooling="mean", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    meta = json.loads((tmp_path / "e.json").read_text())
    assert meta["dims"] == 16 and meta["num_items"] == 5 and meta["pooling"] == "mean" and meta["normalized"]
    assert meta["item_file_sha256"] == file_sha256(item_file)
    with pytest.raises(InputError, match="pooling"):
        run(item_file, tiny_encoder, tmp_path / "x.npy", pooling="max")


def test_two_processes_give_the_same_file(tmp_path, tiny_encoder, item_file):
    run(item_file, tiny_encoder, tmp_path / "one.npy")
    env = cpu_ranks_env(MINIONEREC_LOG_LEVEL="WARNING")
    cmd = [*accelerate_cpu_ranks(2, 29541),
           str(ROOT / "rq" / "text2emb" / "amazon_text2emb.py"), "--item_json_path", str(item_file),
           "--output_path", str(tmp_path / "two.npy"), "--model_path", str(tiny_encoder), "--batch_size", "2",
           "--max_length", "64"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "one.npy").read_bytes() == (tmp_path / "two.npy").read_bytes()
    assert not list(tmp_path.glob(".two.npy.rank*"))
    assert json.loads((tmp_path / "two.json").read_text())["processes"] == 2


def test_word_drop_ratio_is_seeded_per_item(tmp_path, tiny_encoder, item_file):
    text = " ".join(f"w{i}" for i in range(200))
    dropped = drop_words(text, 0.3, seed=42, item=7)
    kept = dropped.split(" ")
    assert 100 < len(kept) < 180 and set(kept) <= set(text.split(" "))
    assert dropped == drop_words(text, 0.3, seed=42, item=7) != drop_words(text, 0.3, seed=42, item=8)
    assert drop_words("one", 0.99, seed=1, item=0) == "one"  # never an empty text
    with pytest.raises(InputError, match="word_drop_ratio must be < 1"):
        drop_words(text, 1.0, seed=1, item=0)
    plain = run(item_file, tiny_encoder, tmp_path / "p.npy")
    np.testing.assert_array_equal(plain, run(item_file, tiny_encoder, tmp_path / "off.npy", word_drop_ratio=-1))
    first = run(item_file, tiny_encoder, tmp_path / "a.npy", word_drop_ratio=0.5, seed=3)
    np.testing.assert_array_equal(first, run(item_file, tiny_encoder, tmp_path / "b.npy", word_drop_ratio=0.5, seed=3))
    assert not np.allclose(first, plain)
    assert json.loads((tmp_path / "a.json").read_text())["word_drop_ratio"] == 0.5
