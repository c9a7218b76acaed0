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


def padded_batch(batch: int, seq: int, vocab: int, seed: int = 0):
    """Random token ids [batch, seq] in 1..vocab-1, an input mask with row 1 padded from position 8,
    and segment ids 1 from position 5 (numpy int64): the parity tests' batch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, (batch, seq))
    mask = np.ones((batch, seq), np.int64)
    mask[1, 8:] = 0
    seg = np.zeros((batch, seq), np.int64)
    seg[:, 5:] = 1
    return ids, mask, seg


def int32_tensors(*arrays):
    """numpy arrays -> MindSpore int32 tensors (model inputs)."""
    import numpy as np

    return [ms.Tensor(np.asarray(a, np.int32)) for a in arrays]


def count_whole_masked_words(input_ids, positions, weights, lengths, word_starts, special, mask_id) -> int:
    """Assert that every masked word is masked entirely and with one [MASK]-or-not choice;
    return how many masked words have more than one token."""
    multi_token_words = 0
    for row in range(len(input_ids)):
        masked = set(positions[row, :int(weights[row].sum())].tolist())
        word: list[int] = []
        for i in range(1, int(lengths[row]) + 1):
            boundary = i == lengths[row] or special[row, i] or word_starts[row, i]
            if boundary and word and masked & set(word):
                assert set(word) <= masked, f"row {row}: word at {word} masked only in part"
                assert len({bool(input_ids[row, j] == mask_id) for j in word}) == 1, \
                    f"row {row}: word at {word} got more than one 80/10/10 choice"
                multi_token_words += len(word) > 1
            if boundary:
                word = [] if i == lengths[row] or special[row, i] else [i]
            else:
                word.append(i)
    return multi_token_words


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


@pytest.fixture(scope="session")
def corpora(tmp_path_factory) -> dict:
    """Real corpora as create_pretraining_data input (one sentence per line, blank line between
    documents), made by this project's own text tools: {"wiki_en": file, "zh": [files]}."""
    from src.data.wiki import (fortunes_to_documents, peoples_daily_to_documents, text_to_documents,
                               wiki_to_documents, write_documents)
    from src.sample_data import fetch

    root = tmp_path_factory.mktemp("corpora")
    wiki = write_documents(wiki_to_documents(fetch("enwiki_dump"), language="en"), root / "wiki_en",
                           shard_size_mb=None, prefix="wiki")
    daily = write_documents(peoples_daily_to_documents(fetch("peoples_daily")), root / "zh",
                            shard_size_mb=None, prefix="peoples_daily")
    fortunes = write_documents(fortunes_to_documents(fetch("fortunes_zh") / "chinese"), root / "zh",
                               shard_size_mb=None, prefix="fortunes")
    news = write_documents(text_to_documents(fetch("gensim_test_data") / "lee_background.cor", doc_per_line=True,
                                             language="en"), root / "news_en", shard_size_mb=None, prefix="news")
    return {"wiki_en": wiki.paths[0], "news_en": news.paths[0], "zh": [*daily.paths, *fortunes.paths]}
