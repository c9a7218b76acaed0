"""Encode texts with a BERT/NEZHA checkpoint and show each text's nearest neighbour.

Texts are read one per line. Embeddings are the mean of the last hidden state over real tokens
(the pooling all-MiniLM-L6-v2 was trained with), compared by cosine similarity::

    python tools/encode_text.py --checkpoint output/minilm/model.ckpt --vocab VOCAB --input texts.txt

The model config is the ``.yaml`` beside the checkpoint (written by tools/convert_checkpoint.py)
unless ``--config`` is given. Embeddings can be saved with ``--save-embeddings out.npy``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def mean_pool(sequence_output: np.ndarray, input_mask: np.ndarray) -> np.ndarray:
    """[B, S, H] float, [B, S] 0/1 -> [B, H], averaged over real tokens."""
    mask = input_mask[..., None].astype(sequence_output.dtype)
    return (sequence_output * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="MindSpore .ckpt (or any format tools/convert reads)")
    parser.add_argument("--vocab", required=True, help="vocab.txt matching the checkpoint")
    parser.add_argument("--input", required=True, help="text file, one text per line")
    parser.add_argument("--config", help="model YAML; default: the .yaml beside the checkpoint")
    parser.add_argument("--cased", action="store_true", help="keep case (for cased vocabularies)")
    parser.add_argument("--max-texts", type=int, default=32, help="encode at most this many lines")
    parser.add_argument("--seq-length", type=int, default=128, help="tokens per text, longer ones truncated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph")
    parser.add_argument("--save-embeddings", help="write the [N, H] float32 embeddings to this .npy")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import mindspore as ms
    from src.bert_model import BertModel
    from src.checkpoint import CheckpointError, load_checkpoint_into
    from src.config import BertConfig, ConfigError, from_dict, load_yaml, resolve_config_path
    from src.tokenization import FullTokenizer, check_vocab_size

    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)
    try:
        config_path = resolve_config_path(args.config) if args.config else Path(args.checkpoint).with_suffix(".yaml")
        config = from_dict(BertConfig, load_yaml(config_path), source=str(config_path))
        config = dataclasses.replace(config, seq_length=args.seq_length)
        tokenizer = FullTokenizer(args.vocab, do_lower_case=not args.cased)
        check_vocab_size(tokenizer, config.vocab_size, args.vocab)
        lines = Path(args.input).read_text(encoding="utf-8").splitlines()
        texts = [t.strip() for t in lines if t.strip()][: args.max_texts]
        if not texts:
            raise ValueError(f"{args.input} contains no text")
        model = BertModel(config, add_pooling_layer=False)
        model.set_train(False)
        report = load_checkpoint_into(model, args.checkpoint)
        if report.initialized:
            raise CheckpointError(f"{args.checkpoint} lacks {len(report.initialized)} encoder parameters, "
                                  f"e.g. {report.initialized[0]}")
    except (OSError, ValueError) as err:  # ConfigError and CheckpointError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 1

    start = time.perf_counter()
    chunks = []
    for i in range(0, len(texts), args.batch_size):
        enc = tokenizer.encode_batch(texts[i:i + args.batch_size], max_seq_length=args.seq_length)
        seq, _ = model(ms.Tensor(enc["input_ids"]), ms.Tensor(enc["input_mask"]), ms.Tensor(enc["segment_ids"]))
        chunks.append(mean_pool(seq.asnumpy(), enc["input_mask"]))
    elapsed = time.perf_counter() - start
    emb = np.concatenate(chunks)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)

    print(f"encoded {len(texts)} texts into {emb.shape[1]}-d embeddings in {elapsed:.1f} s "
          f"({len(texts) / elapsed:.1f} texts/s, {args.mode} mode, including compilation)")
    for i in range(min(len(texts), 5)):
        j = int(np.argmax(sim[i]))
        print(f"\n[{i}] {texts[i][:90]}\n  nearest [{j}] cosine {sim[i, j]:.3f}: {texts[j][:90]}")
    if args.save_embeddings:
        out = Path(args.save_embeddings)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npy")
        os.close(fd)
        np.save(tmp, emb.astype(np.float32))
        os.replace(tmp, out)
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
