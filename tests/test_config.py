"""Config: YAML types, overrides, unknown keys and wrong types, HF config.json, every shipped YAML."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from src.config import (CONFIG_DIR, BertConfig, ConfigError, apply_overrides, bert_config_from_hf,
                        bert_config_to_hf, from_dict, load_yaml, option, parse_config, resolve_config_path,
                        save_yaml)


@dataclasses.dataclass
class TrainSection:
    lr: float = option(1e-4, "learning rate")
    steps: int = option(10, "steps")
    name: str = option("run", "run name")


@dataclasses.dataclass
class JobConfig:
    model: BertConfig = option(dataclasses.MISSING, "model")
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    seed: int = option(0, "seed")


def test_exponent_floats_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 2e-5\neps: 1e-12\nsteps: 3\nflag: true\n")
    assert load_yaml(path) == {"lr": 2e-5, "eps": 1e-12, "steps": 3, "flag": True}


def test_unknown_key_names_key_and_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'hiden_size' in x.yaml; did you mean 'hidden_size'"):
        from_dict(BertConfig, {"hiden_size": 3}, source="x.yaml")


@pytest.mark.parametrize("key,value", [("hidden_size", "768"), ("hidden_size", 7.5), ("use_relative_positions", "true"),
                                       ("hidden_size", True), ("compute_type", "mstype.float16")])
def test_wrong_type_names_key(key, value):
    with pytest.raises(ConfigError, match=key):
        from_dict(BertConfig, {key: value}, source="x.yaml")


def test_int_accepted_for_float():
    cfg = from_dict(BertConfig, {"hidden_dropout_prob": 0}, source="x")
    assert isinstance(cfg.hidden_dropout_prob, float)


def test_invalid_values():
    with pytest.raises(ConfigError, match="hidden_size 30 is not a multiple of num_attention_heads 4"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match="seq_length 600 exceeds max_position_embeddings 512"):
        BertConfig(seq_length=600)
    BertConfig(seq_length=600, use_relative_positions=True)  # NEZHA has no absolute table
    with pytest.raises(ConfigError, match="hidden_act"):
        BertConfig(hidden_act="gelu2")


def test_nested_by_name_base_and_overrides(tmp_path):
    cfg = parse_config(JobConfig, ["--model", "bert_base", "--model.seq_length", "512", "--train.lr=3e-5",
                                   "--train.name", "2024", "--seed", "3"])
    assert cfg.model.hidden_size == 768 and cfg.model.seq_length == 512
    assert cfg.train.lr == 3e-5 and cfg.train.name == "2024" and cfg.seed == 3
    path = tmp_path / "job.yaml"
    path.write_text("model: {base: nezha_base, num_hidden_layers: 2}\ntrain: {steps: 5}\n")
    cfg = parse_config(JobConfig, ["--config", str(path), "--train.steps", "7"])
    assert cfg.model.use_relative_positions and cfg.model.num_hidden_layers == 2 and cfg.train.steps == 7


def test_command_line_errors(tmp_path):
    with pytest.raises(SystemExit):
        parse_config(JobConfig, ["--model", "bert_base", "--train.lrr", "1"])
    with pytest.raises(ConfigError, match="train.steps"):
        parse_config(JobConfig, ["--model", "bert_base", "--train.steps", "many"])
    with pytest.raises(ConfigError, match="no config named 'bert_huge'"):
        parse_config(JobConfig, ["--model", "bert_huge"])
    path = tmp_path / "job.yaml"
    path.write_text("model: bert_tiny\ntrain: {stepz: 5}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.stepz' in .*job.yaml; did you mean 'train.steps'"):
        parse_config(JobConfig, ["--config", str(path)])


def test_overrides_shallow_first():
    data = apply_overrides({}, ["model.seq_length=64", "model=bert_tiny"])
    assert data == {"model": {"base": "bert_tiny", "seq_length": 64}}


def test_save_yaml_round_trip(tmp_path):
    cfg = BertConfig(hidden_size=64, num_attention_heads=4, layer_norm_eps=1e-7)
    save_yaml(cfg, tmp_path / "out" / "model.yaml")
    assert from_dict(BertConfig, load_yaml(tmp_path / "out" / "model.yaml")) == cfg
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.yaml"]


def test_hf_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "bert", "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
        "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512, "type_vocab_size": 2, "architectures": ["BertModel"], "torch_dtype": "float32"}))
    cfg = bert_config_from_hf(tmp_path)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size, cfg.use_relative_positions) == (384, 6, 30522, False)
    back = bert_config_to_hf(cfg)
    assert back["hidden_size"] == 384 and back["model_type"] == "bert"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nezha", "max_relative_position": 64,
                                                      "hidden_act": "gelu"}))
    cfg = bert_config_from_hf(tmp_path / "config.json")
    assert cfg.use_relative_positions and cfg.max_relative_position == 64
    (tmp_path / "config.json").write_text(json.dumps({"hidden_act": "mish"}))
    with pytest.raises(ConfigError, match="hidden_act 'mish'"):
        bert_config_from_hf(tmp_path)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_yaml_loads_and_builds_tiny(path, mode):
    """Every YAML in configs/ is valid; the model it describes builds and runs at tiny scale."""
    import mindspore as ms
    from src.bert_model import BertModel
    data = load_yaml(path)
    assert resolve_config_path(path.stem) == path
    if "model" in data:  # a run config (classifier_*, ner_*, squad_*: fine-tuning, else pretraining): it must parse
        from src.config import ClassifierConfig, NerConfig, PretrainConfig, SquadConfig
        cls = {"classifier": ClassifierConfig, "ner": NerConfig, "squad": SquadConfig}.get(path.stem.split("_")[0],
                                                                                             PretrainConfig)
        assert from_dict(cls, data, source=str(path)).model.vocab_size > 0
    if "vocab_size" in data:  # a model config
        cfg = from_dict(BertConfig, data, source=str(path))
        tiny = dataclasses.replace(cfg, vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=24,
                                   num_hidden_layers=1, seq_length=6, max_position_embeddings=8,
                                   max_relative_position=min(cfg.max_relative_position, 4))
        net = BertModel(tiny)
        net.set_train(False)
        ids = ms.Tensor(np.arange(12, dtype=np.int32).reshape(2, 6))
        seq, pooled = net(ids, ms.Tensor(np.ones((2, 6), np.int32)), ms.Tensor(np.zeros((2, 6), np.int32)))
        assert seq.shape == (2, 6, 16) and pooled.shape == (2, 16)


def test_partial_nested_override_keeps_the_run_defaults_of_that_section():
    """--optimizer.adamw.learning_rate changes one value of the fine-tuning optimizer defaults
    (AdamW lr 2e-5, linear decay, weight decay 0.01) instead of resetting the rest of the section
    to the AdamWeightDecayConfig class defaults."""
    from src.config import ClassifierConfig
    cfg = parse_config(ClassifierConfig, ["--model", "bert_tiny", "--optimizer.adamw.learning_rate", "1e-3"])
    assert cfg.optimizer.optimizer == "adamw"
    assert cfg.optimizer.adamw.learning_rate == 1e-3
    assert cfg.optimizer.adamw.power == 1.0 and cfg.optimizer.adamw.weight_decay == 0.01
    assert cfg.loss_scale.initial_scale == 2.0 ** 32  # untouched sections keep theirs too
    cfg = parse_config(ClassifierConfig, ["--model", "bert_tiny", "--loss_scale.enabled", "true"])
    assert cfg.loss_scale.enabled and cfg.loss_scale.initial_scale == 2.0 ** 32


@pytest.mark.parametrize("key,value", [("eval_train_batches", "-1"), ("eval_batches", "-2"), ("clip_norm", "-0.5")])
def test_pretrain_counts_must_not_be_negative(key, value):
    from src.config import PretrainConfig

    with pytest.raises(ConfigError, match=f"{key} must be >= 0, got {value}"):
        parse_config(PretrainConfig, [f"--{key}", value])


def test_a_misspelt_option_gets_a_suggestion_not_the_whole_usage(capsys):
    from src.config import ClassifierConfig

    with pytest.raises(SystemExit) as exit_info:
        parse_config(ClassifierConfig, ["--optimizer.adamw.lerning_rate", "1e-3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown option --optimizer.adamw.lerning_rate; did you mean --optimizer.adamw.learning_rate" in err
    assert len(err.splitlines()) <= 3, err
    with pytest.raises(SystemExit):
        parse_config(ClassifierConfig, ["--learning_rate", "1e-3"])  # the leaf name alone
    assert "did you mean --optimizer.lamb.learning_rate or" in capsys.readouterr().err


def test_help_shows_the_run_defaults_and_keeps_example_lines(capsys):
    from src.config import ClassifierConfig

    with pytest.raises(SystemExit):
        parse_config(ClassifierConfig, ["--help"], description="Fine-tune.\n\n    python a.py \\\n        --b c\n")
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps help text
    assert "python a.py \\ --b c" in out or "python a.py \\" in out
    assert "--optimizer.optimizer {lamb,adamw,momentum}" in out or "(default: 'adamw')" in out
    assert "(default: 2e-05)" in out and "(default: 'adamw')" in out  # the fine-tuning run's, not the class's
    assert "(0: keep all)" in out


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_learning_rate_that_is_not_positive_is_a_clear_error(value):
    from src.config import ClassifierConfig

    with pytest.raises(ConfigError, match=f"learning_rate must be positive, got {float(value)}"):
        parse_config(ClassifierConfig, ["--optimizer.adamw.learning_rate", value])
