"""Check a HuggingFace BERT checkpoint against its MindSpore conversion on real text.

Tokenizes the texts with this project's tokenizer and with the HuggingFace tokenizer of the
checkpoint directory (token ids must be identical), runs HuggingFace transformers on PyTorch and
the converted MindSpore model (GRAPH and PYNATIVE mode) on the same padded batch, and prints the
maximum absolute difference of the last hidden state (over real tokens) and of the pooled output::

    python tools/verify_conversion.py --hf-dir HF_DIR --texts texts.txt --num-texts 16

Needs torch and transformers (``bash scripts/setup_env.sh --test``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("USE_TF", "0")

import numpy as np  # noqa: E402


def compare(hf_dir: str | os.PathLike, texts: Sequence[str], seq_length: int = 128,
            modes: Sequence[str] = ("graph", "pynative")) -> dict:
    """Run both implementations on ``texts``; return token-id agreement and max abs differences.

    Returns:
        ``{"texts": n, "tokens": real tokens, "token_ids_identical": bool,
        "<mode>": {"last_hidden_state": max abs diff, "pooled_output": max abs diff}}``.
    """
    import mindspore as ms
    import torch
    import transformers

    from src.bert_model import BertModel
    from src.checkpoint import load_checkpoint_into, read_checkpoint
    from src.config import bert_config_from_hf
    from src.tokenization import FullTokenizer

    hf_dir = Path(hf_dir)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    ours = FullTokenizer(hf_dir / "vocab.txt", do_lower_case=bool(getattr(hf_tokenizer, "do_lower_case", True)))
    enc = ours.encode_batch(list(texts), max_seq_length=seq_length, pad_to_max_length=False)
    ref = hf_tokenizer(list(texts), padding=True, truncation=True, max_length=seq_length, return_tensors="np")
    identical = (ref["input_ids"].shape == enc["input_ids"].shape
                 and bool((ref["input_ids"] == enc["input_ids"]).all())
                 and bool((ref["attention_mask"] == enc["input_mask"]).all()))

    hf_model = transformers.AutoModel.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        out = hf_model(input_ids=torch.tensor(enc["input_ids"], dtype=torch.long),
                       attention_mask=torch.tensor(enc["input_mask"], dtype=torch.long),
                       token_type_ids=torch.tensor(enc["segment_ids"], dtype=torch.long))
    ref_seq, ref_pooled = out.last_hidden_state.numpy(), out.pooler_output.numpy()

    mask = enc["input_mask"].astype(bool)
    result: dict = {"texts": len(texts), "tokens": int(mask.sum()), "token_ids_identical": identical,
                    "padded_length": int(mask.shape[1])}
    ckpt = read_checkpoint(hf_dir)
    config = bert_config_from_hf(hf_dir, seq_length=min(seq_length, mask.shape[1]),
                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    previous = ms.get_context("mode")
    try:
        for mode in modes:
            ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
            model = BertModel(config)
            model.set_train(False)
            report = load_checkpoint_into(model, ckpt)
            if report.initialized:
                raise ValueError(f"{hf_dir} did not fill {report.initialized}")
            seq, pooled = model(ms.Tensor(enc["input_ids"]), ms.Tensor(enc["input_mask"]),
                                ms.Tensor(enc["segment_ids"]))
            result[mode] = {
                "last_hidden_state": float(np.abs(seq.asnumpy() - ref_seq)[mask].max()),
                "pooled_output": float(np.abs(pooled.asnumpy() - ref_pooled).max()),
            }
    finally:
        ms.set_context(mode=previous)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf-dir", required=True, help="HF checkpoint directory (config.json, weights, vocab.txt)")
    parser.add_argument("--texts", required=True, help="text file, one text per line")
    parser.add_argument("--num-texts", type=int, default=16)
    parser.add_argument("--seq-length", type=int, default=128)
    args = parser.parse_args(argv)
    lines = [t.strip() for t in Path(args.texts).read_text(encoding="utf-8").splitlines() if t.strip()]
    if len(lines) < args.num_texts:
        print(f"error: {args.texts} has {len(lines)} non-empty lines, fewer than --num-texts {args.num_texts}",
              file=sys.stderr)
        return 1
    print(json.dumps(compare(args.hf_dir, lines[: args.num_texts], args.seq_length), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
