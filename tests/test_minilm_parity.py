"""The real all-MiniLM-L6-v2 checkpoint, converted, against HuggingFace on real Wikipedia sentences."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from src.sample_data import fetch  # noqa: E402
from tools.verify_conversion import compare  # noqa: E402


def wiki_sentences(articles, count=16):
    """One sentence of at least 8 words from each of ``count`` different articles."""
    picked = []
    for article in articles:
        for sentence in re.split(r"(?<=[.!?])\s+", article["text"]):
            if len(sentence.split()) >= 8:
                picked.append(sentence.strip())
                break
        if len(picked) == count:
            return picked
    raise AssertionError(f"only {len(picked)} sentences found")


def test_minilm_matches_huggingface_on_wikipedia(wiki_articles):
    sentences = wiki_sentences(wiki_articles)
    lengths = {len(s.split()) for s in sentences}
    assert len(lengths) > 3, "the batch should need padding"
    result = compare(fetch("minilm"), sentences, seq_length=128)
    print(result)
    assert result["token_ids_identical"]
    for mode in ("graph", "pynative"):
        assert result[mode]["last_hidden_state"] <= 1e-4, result
        assert result[mode]["pooled_output"] <= 1e-4, result


def test_convert_tool_round_trip_on_real_checkpoint(tmp_path, capsys):
    """tools/convert_checkpoint.py HF -> MindSpore -> HF: every weight tensor bit-identical."""
    from safetensors.numpy import load_file

    from tools.convert_checkpoint import main as convert

    minilm = fetch("minilm")
    assert convert(["--input", str(minilm), "--output", str(tmp_path / "ms" / "model.ckpt")]) == 0
    printed = capsys.readouterr().out
    assert "loaded 103 parameters" in printed and "embeddings.position_ids: buffer, not a weight" in printed
    assert (tmp_path / "ms" / "model.yaml").exists()
    assert convert(["--to", "huggingface", "--input", str(tmp_path / "ms" / "model.ckpt"),
                    "--output", str(tmp_path / "hf")]) == 0
    original = load_file(str(minilm / "model.safetensors"))
    back = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert sorted(back) == sorted(k for k in original if k != "embeddings.position_ids")
    for key, value in back.items():
        assert value.dtype == original[key].dtype and value.tobytes() == original[key].tobytes(), key
    import transformers
    model, info = transformers.AutoModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_convert_tool_refuses_mismatched_config(tmp_path, capsys):
    from tools.convert_checkpoint import main as convert

    code = convert(["--input", str(fetch("minilm")), "--output", str(tmp_path / "model.ckpt"),
                    "--config", "bert_base"])
    assert code == 1
    err = capsys.readouterr().err
    assert "has shape (30522, 384)" in err and "(21128, 768)" in err
    assert list(tmp_path.iterdir()) == []


def test_convert_tool_takes_a_runs_config_yaml_and_keeps_the_example_lines_in_help(tmp_path, capsys):
    """A run's config.yaml (what run_*.py saves) names the model for --config; --help keeps the
    example commands on their own lines."""
    from src.config import ClassifierConfig, parse_config, save_yaml
    from tools.convert_checkpoint import main as convert

    run = parse_config(ClassifierConfig, ["--model", "minilm_l6"])
    save_yaml(run, tmp_path / "config.yaml")
    assert convert(["--input", str(fetch("minilm")), "--output", str(tmp_path / "model.ckpt"),
                    "--config", str(tmp_path / "config.yaml")]) == 0
    with pytest.raises(SystemExit):
        convert(["--help"])
    assert "bert_model.ckpt \\\n        --hf-config" in capsys.readouterr().out
