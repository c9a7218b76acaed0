"""Shared fixtures: a tiny config, both MindSpore execution modes, quiet reference frameworks."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Reference frameworks: keep transformers from importing TensorFlow, and TF quiet.
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mindspore as ms  # noqa: E402
import pytest  # noqa: E402

from src.config import BertConfig  # noqa: E402


@pytest.fixture(params=["graph", "pynative"])
def mode(request):
    """Run the test in GRAPH and in PYNATIVE mode."""
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE if request.param == "graph" else ms.PYNATIVE_MODE)
    yield request.param
    ms.set_context(mode=previous)


def tiny_config(**overrides) -> BertConfig:
    """google-research/bert test sizes: vocab 99, hidden 32, 4 heads, intermediate 37, seq 7."""
    values = dict(seq_length=7, vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=16, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture(scope="session")
def wiki_articles(tmp_path_factory) -> list[dict]:
    """The real English Wikipedia sample dump through wikiextractor: [{"title", "text"}, ...]."""
    import json
    import subprocess

    from src.sample_data import fetch

    out = tmp_path_factory.mktemp("wiki")
    subprocess.run([sys.executable, "-m", "wikiextractor.WikiExtractor", str(fetch("enwiki_dump")), "-o", str(out),
                    "--json", "-q", "--processes", "1", "--html-safe", ""], check=True)
    articles = []
    for path in sorted(out.rglob("wiki_*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            if doc["text"].strip():
                articles.append({"title": doc["title"], "text": doc["text"]})
    assert len(articles) > 50, f"wikiextractor gave only {len(articles)} articles"
    return articles
