"""export.py / src/export.py: a fine-tuned tiny classifier exported to MindIR gives the network's logits."""
from __future__ import annotations

import dataclasses
from pathlib import Path
import importlib.util

import mindspore as ms
import numpy as np
import pytest
import yaml
from mindspore import nn

from conftest import ROOT, tiny_config
from src.checkpoint import CheckpointError
from src.config import ConfigError, save_yaml, to_dict
from src.export import (ExportConfig, ExportError, build_classifier, export_classifier, output_path,
                        parse_export_args, read_run_config)
from src.heads import BertForPreTraining, BertForSequenceClassification

B = 4


def load_cli():
    spec = importlib.util.spec_from_file_location("export_cli", ROOT / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize(network, seed: int) -> None:
    """Weights of scale 0.5 (the 0.02 initialiser gives near-zero logits, which would compare trivially)."""
    rng = np.random.default_rng(seed)
    for p in network.get_parameters():
        p.set_data(ms.Tensor(rng.normal(0.0, 0.5, p.shape).astype(np.float32)))


def save_run_checkpoint(network, path) -> None:
    """The network's parameters plus optimizer and train-step state, as a fine-tuning run saves them."""
    entries = [{"name": p.name, "data": ms.Tensor(p.asnumpy())} for p in network.get_parameters()]
    entries += [{"name": "moment1." + p.name, "data": ms.Tensor(np.zeros(p.shape, np.float32))}
                for p in network.get_parameters()]
    entries += [{"name": "global_step", "data": ms.Tensor(np.array([7], np.int32))}]
    ms.save_checkpoint(entries, str(path))


def random_batch(seq_length: int, vocab_size: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, (B, seq_length)).astype(np.int32)
    mask = np.ones((B, seq_length), np.int32)
    mask[1, seq_length - 2:] = 0
    seg = np.zeros((B, seq_length), np.int32)
    seg[:, seq_length // 2:] = 1
    return [ms.Tensor(a) for a in (ids, mask, seg)]


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """{kind: (model config, YAML path, network in eval mode, checkpoint path)} for BERT and NEZHA, 3 labels."""
    root = tmp_path_factory.mktemp("fine_tuned")
    out = {}
    for seed, (kind, config) in enumerate([("bert", tiny_config()),
                                           ("nezha", tiny_config(use_relative_positions=True,
                                                                 max_relative_position=4))]):
        network = BertForSequenceClassification(config, 3)
        randomize(network, seed)
        network.set_train(False)
        save_run_checkpoint(network, root / f"{kind}.ckpt")
        save_yaml(config, root / f"{kind}.yaml")
        out[kind] = (config, root / f"{kind}.yaml", network, root / f"{kind}.ckpt")
    return out


def run_graph(path, inputs) -> np.ndarray:
    return nn.GraphCell(ms.load(str(path)))(*inputs).asnumpy()


@pytest.mark.parametrize("kind", ["bert", "nezha"])
def test_mindir_logits_equal_the_network(fine_tuned, kind, mode, tmp_path):
    config, config_yaml, network, checkpoint = fine_tuned[kind]
    path = export_classifier(ExportConfig(config=str(config_yaml), checkpoint=str(checkpoint), batch_size=B,
                                          output=str(tmp_path / "out" / "classifier")))
    assert path == tmp_path / "out" / "classifier.mindir"
    assert [p.name for p in path.parent.iterdir()] == ["classifier.mindir"]  # no temporary left behind
    inputs = random_batch(config.seq_length, config.vocab_size)
    expected = network(*inputs).asnumpy()
    assert expected.shape == (B, 3) and np.abs(expected).max() > 0.1
    np.testing.assert_allclose(run_graph(path, inputs), expected, rtol=0, atol=1e-5)


def test_cli_regression_head_from_run_config(tmp_path, capsys):
    """num_labels 1 (regression) read from a run's config.yaml; --seq_length and --batch_size set the graph shape;
    exporting again replaces the (read-only) file."""
    config = tiny_config()
    network = BertForSequenceClassification(config, 1)
    randomize(network, 5)
    network.set_train(False)
    save_run_checkpoint(network, tmp_path / "reg.ckpt")
    run_config = {"model": to_dict(config), "num_labels": 1, "optimizer": {"learning_rate": 2e-5},
                  "output_dir": "somewhere"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(run_config), encoding="utf-8")
    cli = load_cli()
    argv = ["--run_config", str(tmp_path / "config.yaml"), "--checkpoint", str(tmp_path / "reg.ckpt"),
            "--seq_length", "5", "--batch_size", str(B), "--output", str(tmp_path / "reg.mindir")]
    for _ in range(2):
        assert cli.main(argv) == 0
    assert f"exported {tmp_path / 'reg.mindir'}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "reg.ckpt", "reg.mindir"]
    inputs = random_batch(5, config.vocab_size, seed=3)
    expected = network(*inputs).asnumpy()
    assert expected.shape == (B, 1)
    np.testing.assert_allclose(run_graph(tmp_path / "reg.mindir", inputs), expected, rtol=0, atol=1e-5)


def test_mean_pooling_from_run_config(tmp_path):
    """A classifier fine-tuned with pooling: mean (no pooler weights) exports with the run's pooling;
    exported as cls it is refused, the missing pooler named."""
    config = tiny_config()
    network = BertForSequenceClassification(config, 2, pooling="mean")
    randomize(network, 6)
    network.set_train(False)
    assert not any("pooler" in p.name for p in network.get_parameters())
    save_run_checkpoint(network, tmp_path / "mean.ckpt")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": to_dict(config), "num_labels": 2,
                                                          "pooling": "mean"}), encoding="utf-8")
    path = export_classifier(ExportConfig(run_config=str(tmp_path / "config.yaml"),
                                          checkpoint=str(tmp_path / "mean.ckpt"), batch_size=B,
                                          output=str(tmp_path / "mean")))
    inputs = random_batch(config.seq_length, config.vocab_size)
    expected = network(*inputs).asnumpy()
    np.testing.assert_allclose(run_graph(path, inputs), expected, rtol=0, atol=1e-5)
    with pytest.raises(CheckpointError, match="lacks 2 parameters of the classifier: bert.pooler.dense"):
        export_classifier(ExportConfig(run_config=str(tmp_path / "config.yaml"), pooling="cls",
                                       checkpoint=str(tmp_path / "mean.ckpt"), output=str(tmp_path / "cls")))


def test_read_run_config_is_tolerant(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model: {base: bert_tiny, seq_length: 12}\ntask: {num_labels: 5, name: mnli}\nseed: 1\n",
                    encoding="utf-8")
    model, num_labels, pooling = read_run_config(path)
    assert (model.seq_length, model.hidden_size, num_labels, pooling) == (12, 32, 5, "cls")
    path.write_text("model: bert_tiny\npooling: mean\n", encoding="utf-8")
    assert read_run_config(path)[1:] == (None, "mean")
    path.write_text("model: bert_tiny\npooling: max\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="pooling in .* must be one of cls, mean, got 'max'"):
        read_run_config(path)
    path.write_text("num_labels: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="has no 'model' section"):
        read_run_config(path)
    path.write_text("model: bert_tiny\nnum_labels: two\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="num_labels .* must be a positive integer, got 'two'"):
        read_run_config(path)
    path.write_text("model: {base: bert_tiny, hiden_size: 64}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'model.hiden_size'.*did you mean 'model.hidden_size'"):
        read_run_config(path)


def test_num_labels_from_the_checkpoint(fine_tuned):
    config, _, _, checkpoint = fine_tuned["bert"]
    network = build_classifier(config, 0, checkpoint)
    assert network.classifier.weight.shape == (3, config.hidden_size) and not network.training


@pytest.mark.parametrize("change, message", [
    (dict(vocab_size=120), r"the checkpoint has vocab_size 99, the config 120"),
    (dict(hidden_size=64), r"the checkpoint has hidden_size 32, the config 64"),
    (dict(num_hidden_layers=3), r"lacks 16 parameters of the classifier: bert.encoder.layer.2"),
])
def test_checkpoint_of_another_model(fine_tuned, change, message):
    config, _, _, checkpoint = fine_tuned["bert"]
    with pytest.raises(CheckpointError, match=message):
        build_classifier(dataclasses.replace(config, **change), 3, checkpoint)


def test_checkpoint_errors(fine_tuned, tmp_path):
    config, _, _, checkpoint = fine_tuned["bert"]
    with pytest.raises(CheckpointError, match="the classifier has 3 outputs, but num_labels is 2"):
        build_classifier(config, 2, checkpoint)
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing\.ckpt does not exist"):
        build_classifier(config, 3, tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        build_classifier(config, 3, "")
    ms.save_checkpoint(BertForPreTraining(config), str(tmp_path / "pretrain.ckpt"))
    with pytest.raises(CheckpointError, match="has no classifier.weight: it is not a fine-tuned"):
        build_classifier(config, 3, tmp_path / "pretrain.ckpt")


def test_config_errors(fine_tuned, tmp_path):
    _, config_yaml, _, checkpoint = fine_tuned["bert"]
    good = dict(config=str(config_yaml), checkpoint=str(checkpoint), output=str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="seq_length 32 exceeds max_position_embeddings 16"):
        export_classifier(ExportConfig(**good, seq_length=32))
    with pytest.raises(ConfigError, match="not both"):
        export_classifier(ExportConfig(**good, run_config=str(config_yaml)))
    with pytest.raises(ConfigError, match="pass --config MODEL"):
        export_classifier(ExportConfig(checkpoint=str(checkpoint)))
    with pytest.raises(ConfigError, match="no config named 'bert_tinny'"):
        export_classifier(ExportConfig(**dict(good, config="bert_tinny")))
    with pytest.raises(ConfigError, match="another format than MINDIR"):
        export_classifier(ExportConfig(**dict(good, output=str(tmp_path / "m.onnx"))))
    with pytest.raises(ConfigError, match="unknown export format 'PB'; choose one of MINDIR, AIR, ONNX"):
        output_path("m", "PB")
    with pytest.raises(ConfigError, match="batch_size must be positive, got 0"):
        ExportConfig(batch_size=0)
    assert output_path("a/m", "MINDIR").name == "m.mindir"
    assert output_path("a/m.MINDIR", "MINDIR").name == "m.mindir"
    assert output_path("a/m.v2", "ONNX").name == "m.v2.onnx"
    assert list(tmp_path.iterdir()) == []


def test_parse_export_args():
    config = parse_export_args(["--model", "bert_tiny", "--checkpoint", "c.ckpt", "--format", "onnx",
                                "--batch_size", "8", "--num_labels=2"])
    assert (config.config, config.format, config.batch_size, config.num_labels) == ("bert_tiny", "ONNX", 8, 2)
    with pytest.raises(ConfigError, match="format in command line must be 'MINDIR' | 'AIR' | 'ONNX', got 'PB'"):
        parse_export_args(["--format", "pb"])
    with pytest.raises(ConfigError, match="batch_size in command line must be int"):
        parse_export_args(["--batch_size", "eight"])


def test_cli_reports_errors(fine_tuned, tmp_path, capsys):
    _, config_yaml, _, checkpoint = fine_tuned["bert"]
    cli = load_cli()
    assert cli.main(["--config", str(config_yaml), "--checkpoint", str(tmp_path / "none.ckpt")]) == 1
    assert "error: checkpoint" in capsys.readouterr().err
    assert cli.main(["--config", str(config_yaml), "--checkpoint", str(checkpoint), "--format", "PB"]) == 1
    assert "'MINDIR' | 'AIR' | 'ONNX', got 'PB'" in capsys.readouterr().err
    # AIR is refused before compiling on a non-Ascend backend
    assert cli.main(["--config", str(config_yaml), "--checkpoint", str(checkpoint), "--format", "AIR",
                     "--output", str(tmp_path / "m")]) == 1
    assert "AIR export needs the Ascend backend" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_nothing(fine_tuned, tmp_path):
    """MindSpore's ONNX exporter has no Erf (exact gelu): the error is reported, no file is left."""
    _, config_yaml, _, checkpoint = fine_tuned["bert"]
    with pytest.raises(ExportError, match="mindspore.export to ONNX failed: .*Erf"):
        export_classifier(ExportConfig(config=str(config_yaml), checkpoint=str(checkpoint), format="ONNX",
                                       output=str(tmp_path / "m")))
    assert list(tmp_path.iterdir()) == []


def test_exported_graph_uses_standard_operators_only(fine_tuned, tmp_path):
    """No Custom (fused C++ kernel) node in the MindIR: it must run on machines without that library."""
    _, config_yaml, _, checkpoint = fine_tuned["bert"]
    path = export_classifier(ExportConfig(config=str(config_yaml), checkpoint=str(checkpoint),
                                          output=str(tmp_path / "m")))
    assert b"fused_ops" not in Path(path).read_bytes() and b"Custom" not in Path(path).read_bytes()
