"""MindSpore model-zoo checkpoints (REFERENCE §5): tiny checkpoints with exactly the zoo's names and
shapes (pretraining, classifier, CRF tagger, SQuAD, NEZHA; both naming generations; the bucket
wrapper's ``network.`` prefix; optimizer state), converted by tools/convert_checkpoint.py, give the
outputs of HuggingFace models loaded from the same weights with the zoo's numerics (tanh GELU,
LayerNorm epsilon 1e-7); ``--to zoo`` writes every tensor back bit-identically.

The zoo names are written here by hand from REFERENCE §5, independently of src/zoo_checkpoint.py.
"""
from __future__ import annotations

import re

import mindspore as ms
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from src.bert_model import relative_position_index  # noqa: E402
from src.checkpoint import (CheckpointError, load_checkpoint_into, read_checkpoint,  # noqa: E402
                            save_mindspore_checkpoint)
from src.config import BertConfig, from_dict, load_yaml  # noqa: E402
from src.heads import (BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,  # noqa: E402
                       BertForTokenClassification)
from tools import convert_checkpoint  # noqa: E402
from tests.conftest import int32_tensors, padded_batch  # noqa: E402

B, S, V, TAGS = 3, 12, 99, 5
SIZES = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=64,
             hidden_act="gelu_new", layer_norm_eps=1e-7)
ZOO_ONLY = ["global_step", "loss_scale", "current_iterator_step", "last_overflow_iterator_step"]


def zoo_name(hf: str, backbone: str, old: bool) -> str | None:
    """A HuggingFace key -> the zoo's name (REFERENCE §5), None for what the zoo does not save."""
    heads = backbone[: -len("bert.")]
    if hf.startswith(("bert.", "nezha.")):
        leaf = hf.split(".", 1)[1]
        leaf = re.sub(r"LayerNorm\.weight$", "layernorm.gamma", leaf)
        leaf = re.sub(r"LayerNorm\.bias$", "layernorm.beta", leaf)
        embeddings = {
            "embeddings.word_embeddings.weight": "bert_embedding_lookup.embedding_table",
            "embeddings.position_embeddings.weight": ("bert_embedding_postprocessor.full_position_embeddings" if old
                                                      else "bert_embedding_postprocessor.full_position_embedding"
                                                      ".embedding_table"),
            "embeddings.token_type_embeddings.weight": ("bert_embedding_postprocessor.embedding_table" if old else
                                                        "bert_embedding_postprocessor.token_type_embedding"
                                                        ".embedding_table"),
            "embeddings.layernorm.gamma": "bert_embedding_postprocessor.layernorm.gamma",
            "embeddings.layernorm.beta": "bert_embedding_postprocessor.layernorm.beta",
            "pooler.dense.weight": "dense.weight", "pooler.dense.bias": "dense.bias",
        }
        if leaf in embeddings:
            return backbone + embeddings[leaf]
        if "relative_positions_encoding" in leaf:
            return None  # HF's fixed table is a buffer
        leaf = leaf.replace("encoder.layer.", "bert_encoder.layers.")
        leaf = re.sub(r"attention\.self\.(query|key|value)\.", r"attention.attention.\1_layer.", leaf)
        leaf = leaf.replace("intermediate.dense.", "intermediate.")
        return backbone + leaf
    if hf.startswith("cls.predictions.decoder"):
        return None  # tied to the word embeddings
    table = {"cls.predictions.transform.dense.": "cls1.dense.",
             "cls.predictions.transform.LayerNorm.weight": "cls1.layernorm.gamma",
             "cls.predictions.transform.LayerNorm.bias": "cls1.layernorm.beta",
             "cls.predictions.bias": "cls1.output_bias",
             "cls.seq_relationship.": "cls2.dense.", "classifier.": "dense_1.", "qa_outputs.": "dense1."}
    for ours, zoo in table.items():
        if hf.startswith(ours):
            return heads + zoo + hf[len(ours):]
    raise AssertionError(f"unmapped HF key {hf}")


def hf_model(kind: str, seed: int = 0, nezha: bool = False):
    torch.manual_seed(seed)
    if nezha:
        config = transformers.NezhaConfig(**SIZES, max_relative_position=16)
        model = transformers.NezhaForPreTraining(config)
    else:
        config = transformers.BertConfig(**SIZES, num_labels=TAGS if kind == "ner" else (2 if kind != "cls" else 3))
        model = {"pretrain": transformers.BertForPreTraining, "cls": transformers.BertForSequenceClassification,
                 "ner": transformers.BertForTokenClassification,
                 "squad": transformers.BertForQuestionAnswering}[kind](config)
    with torch.no_grad():  # non-zero biases and LayerNorm so that every mapping matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def zoo_state(model, backbone="bert.bert.", old=False, optimizer_state=True) -> dict[str, np.ndarray]:
    """The checkpoint the zoo would have written for ``model``'s weights."""
    state = {}
    for key, value in model.state_dict().items():
        name = zoo_name(key, backbone, old)
        if name is not None:
            state[name] = value.detach().numpy().copy()
    if optimizer_state:  # Lamb moments and the training cell's counters
        for key in list(state)[:4]:
            state["lamb_m." + key] = np.ones_like(state[key])
            state["lamb_v." + key] = np.ones_like(state[key])
        state.update({k: np.array([7], np.float32) for k in ZOO_ONLY})
    return state


def write(state, path) -> str:
    save_mindspore_checkpoint(state, path, crc_check=False)
    return str(path)


def convert(tmp_path, state, *extra) -> tuple[BertConfig, str]:
    src = write(state, tmp_path / "zoo.ckpt")
    out = tmp_path / "ours.ckpt"
    assert convert_checkpoint.main(["--input", src, "--output", str(out), *extra]) == 0
    return from_dict(BertConfig, load_yaml(out.with_suffix(".yaml"))), str(out)


def batch(seed=0):
    return padded_batch(B, S, V, seed)


def hf_outputs(model, ids, mask, seg):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))


def close(ours, reference, mask=None):
    ours = ours.asnumpy() if hasattr(ours, "asnumpy") else ours
    reference = reference.numpy()
    if mask is not None:  # per-position outputs: the real positions
        ours, reference = ours[mask.astype(bool)], reference[mask.astype(bool)]
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone,old", [("bert.bert.", False), ("bert.bert.", True), ("network.bert.bert.", False)])
def test_pretraining_checkpoint_matches_hf(backbone, old, tmp_path, capsys):
    model = hf_model("pretrain")
    cfg, out = convert(tmp_path, zoo_state(model, backbone, old), "--num-attention-heads", "4")
    assert (cfg.hidden_act, cfg.layer_norm_eps, cfg.num_attention_heads) == ("gelu_new", 1e-7, 4)
    assert (cfg.vocab_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.max_position_embeddings) == (V, 2, 37, 64)
    printed = capsys.readouterr().out
    assert "freshly initialised" not in printed and "optimizer or training state" in printed
    ckpt = read_checkpoint(tmp_path / "zoo.ckpt")
    assert ckpt.source_format == "mindspore-zoo"
    assert sorted(k for k, why in ckpt.skipped.items() if why == "optimizer or training state") == sorted(
        [k for k in zoo_state(model, backbone, old) if k.startswith(("lamb_", *ZOO_ONLY))])
    net = BertForPreTraining(from_dict(BertConfig, {**vars(cfg), "seq_length": S}))
    net.set_train(False)
    report = load_checkpoint_into(net, out)
    assert report.initialized == [] and report.unused == {}
    ids, mask, seg = batch()
    ref = hf_outputs(model, ids, mask, seg)
    mlm, nsp = net(*int32_tensors(ids, mask, seg, np.tile(np.arange(S), (B, 1))))
    close(mlm, ref.prediction_logits, mask)
    close(nsp, ref.seq_relationship_logits)


def test_classifier_and_squad_checkpoints_match_hf(tmp_path):
    ids, mask, seg = batch(1)
    model = hf_model("cls", seed=2)
    cfg, out = convert(tmp_path, zoo_state(model), "--num-attention-heads", "4")
    net = BertForSequenceClassification(from_dict(BertConfig, {**vars(cfg), "seq_length": S}), 3)
    net.set_train(False)
    assert load_checkpoint_into(net, out).initialized == []
    close(net(*int32_tensors(ids, mask, seg)), hf_outputs(model, ids, mask, seg).logits)

    model = hf_model("squad", seed=3)
    (tmp_path / "squad").mkdir()
    cfg, out = convert(tmp_path / "squad", zoo_state(model), "--num-attention-heads", "4")
    net = BertForQuestionAnswering(from_dict(BertConfig, {**vars(cfg), "seq_length": S}))
    net.set_train(False)
    report = load_checkpoint_into(net, out)
    assert report.initialized == [] and list(report.unused) == [k for k in report.unused if "pooler" in k]
    start, end = net(*int32_tensors(ids, mask, seg))
    ref = hf_outputs(model, ids, mask, seg)
    close(start, ref.start_logits, mask)
    close(end, ref.end_logits, mask)


def test_crf_tagger_checkpoint(tmp_path):
    """The zoo's NER net with a CRF: classifier rows for T tags + START/STOP, one [T+2, T+2] matrix
    indexed [to, from] -> pytorch-crf's transitions[from, to], start and end scores."""
    model = hf_model("ner", seed=4)
    state = zoo_state(model)
    rng = np.random.default_rng(0)
    state["bert.dense_1.weight"] = np.concatenate([state["bert.dense_1.weight"], rng.normal(size=(2, 32))]).astype(
        np.float32)
    state["bert.dense_1.bias"] = np.concatenate([state["bert.dense_1.bias"], [0.5, -0.5]]).astype(np.float32)
    z = rng.normal(size=(TAGS + 2, TAGS + 2)).astype(np.float32)
    z[TAGS, :] = -10000.0  # nothing moves into START
    z[:, TAGS + 1] = -10000.0  # nothing leaves STOP
    state["loss.transitions"] = z
    cfg, out = convert(tmp_path, state, "--num-attention-heads", "4")
    params = read_checkpoint(out).params
    np.testing.assert_array_equal(params["crf.transitions"], z[:TAGS, :TAGS].T)
    np.testing.assert_array_equal(params["crf.start_transitions"], z[:TAGS, TAGS])
    np.testing.assert_array_equal(params["crf.end_transitions"], z[TAGS + 1, :TAGS])
    net = BertForTokenClassification(from_dict(BertConfig, {**vars(cfg), "seq_length": S}), TAGS, use_crf=True)
    net.set_train(False)
    assert load_checkpoint_into(net, out).initialized == []
    ids, mask, seg = batch(2)
    close(net(*int32_tensors(ids, mask, seg)), hf_outputs(model, ids, mask, seg).logits, mask)
    # the path score pytorch-crf's definitions give equals the zoo CRF's score of the same tags
    tags = rng.integers(0, TAGS, 6)
    emissions = rng.normal(size=(6, TAGS + 2))
    zoo_score = (z[tags[0], TAGS] + sum(z[tags[t], tags[t - 1]] for t in range(1, 6)) + z[TAGS + 1, tags[-1]]
                 + emissions[np.arange(6), tags].sum())
    a, s_, e = params["crf.transitions"], params["crf.start_transitions"], params["crf.end_transitions"]
    ours = s_[tags[0]] + sum(a[tags[t - 1], tags[t]] for t in range(1, 6)) + e[tags[-1]] + emissions[
        np.arange(6), tags].sum()
    assert ours == pytest.approx(zoo_score, abs=1e-5)
    # back to the zoo: every cell with a counterpart is bit-identical, the others are the zoo's initial values
    back = tmp_path / "back.ckpt"
    assert convert_checkpoint.main(["--to", "zoo", "--input", out, "--output", str(back)]) == 0
    written = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(back)).items()}
    np.testing.assert_array_equal(written["loss.transitions"][:TAGS, :TAGS + 1], z[:TAGS, :TAGS + 1])
    np.testing.assert_array_equal(written["loss.transitions"][TAGS + 1, :TAGS], z[TAGS + 1, :TAGS])
    np.testing.assert_array_equal(written["loss.transitions"][TAGS], np.full(TAGS + 2, -10000.0, np.float32))
    np.testing.assert_array_equal(written["bert.dense_1.weight"][:TAGS], state["bert.dense_1.weight"][:TAGS])
    assert not written["bert.dense_1.weight"][TAGS:].any()


def nezha_hf_with_table(tables):
    """HF NezhaForPreTraining whose (fixed) relative encodings are replaced by ``tables`` [layer][33, D]."""
    model = hf_model("pretrain", seed=5, nezha=True)
    index = torch.tensor(relative_position_index(SIZES["max_position_embeddings"], 16), dtype=torch.long)
    for layer, table in zip(model.nezha.encoder.layer, tables):
        layer.attention.self.relative_positions_encoding.positions_encoding = torch.tensor(table)[index]
    return model


def test_nezha_checkpoint_with_learned_table_matches_hf(tmp_path):
    rng = np.random.default_rng(3)
    tables = [rng.normal(0, 0.5, (33, 8)).astype(np.float32) for _ in range(2)]
    model = nezha_hf_with_table(tables)
    state = zoo_state(model)
    for layer, table in enumerate(tables):
        state[f"bert.bert.bert_encoder.layers.{layer}.attention.attention."
              "_generate_relative_positions_embeddings.embeddings_table"] = table
    state["bert.bert.bert_embedding_postprocessor.full_position_embedding.embedding_table"] = rng.normal(
        size=(64, 32)).astype(np.float32)  # the zoo's NEZHA keeps an unused absolute table
    cfg, out = convert(tmp_path, state)  # head count from the table's width
    assert (cfg.use_relative_positions, cfg.relative_position_type, cfg.max_relative_position,
            cfg.num_attention_heads) == (True, "learned", 16, 4)
    assert "never reads" in read_checkpoint(tmp_path / "zoo.ckpt").skipped[
        "bert.bert.bert_embedding_postprocessor.full_position_embedding.embedding_table"]
    net = BertForPreTraining(from_dict(BertConfig, {**vars(cfg), "seq_length": S}))
    net.set_train(False)
    report = load_checkpoint_into(net, out)
    assert report.initialized == [] and report.unused == {}
    ids, mask, seg = batch(4)
    ref = hf_outputs(model, ids, mask, seg)
    mlm, nsp = net(*int32_tensors(ids, mask, seg, np.tile(np.arange(S), (B, 1))))
    close(mlm, ref.prediction_logits, mask)
    close(nsp, ref.seq_relationship_logits)


def test_to_zoo_round_trips_bit_identically(tmp_path):
    rng = np.random.default_rng(4)
    model = nezha_hf_with_table([rng.normal(size=(33, 8)).astype(np.float32) for _ in range(2)])
    state = zoo_state(model, optimizer_state=False)
    for layer in range(2):
        state[f"bert.bert.bert_encoder.layers.{layer}.attention.attention."
              "_generate_relative_positions_embeddings.embeddings_table"] = rng.normal(size=(33, 8)).astype(np.float32)
    _, ours = convert(tmp_path, state)
    back, again = tmp_path / "zoo_again.ckpt", tmp_path / "ours_again.ckpt"
    assert convert_checkpoint.main(["--to", "zoo", "--input", ours, "--output", str(back)]) == 0
    written = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(back)).items()}
    assert sorted(written) == sorted(state)  # zoo -> ours -> zoo: every tensor, the same names
    for key, value in state.items():
        assert written[key].dtype == value.dtype and np.array_equal(written[key], value), key
    assert convert_checkpoint.main(["--input", str(back), "--output", str(again)]) == 0
    first, second = read_checkpoint(ours).params, read_checkpoint(again).params  # ours -> zoo -> ours
    assert sorted(first) == sorted(second)
    for key in first:
        assert np.array_equal(first[key], second[key]), key


def test_to_zoo_refuses_what_the_zoo_cannot_hold(tmp_path):
    cfg = BertConfig(**{**SIZES, "hidden_act": "gelu"}, seq_length=S, use_relative_positions=True,
                     max_relative_position=64)
    net = BertForPreTraining(cfg)
    path = tmp_path / "nezha.ckpt"
    save_mindspore_checkpoint({p.name: p.asnumpy() for p in net.get_parameters()}, path)
    from src.config import save_yaml
    save_yaml(cfg, path.with_suffix(".yaml"))
    out = tmp_path / "zoo.ckpt"
    assert convert_checkpoint.main(["--to", "zoo", "--input", str(path), "--output", str(out)]) == 1
    assert not out.exists()


def test_zoo_checkpoint_with_a_foreign_key_reports_it(tmp_path):
    state = zoo_state(hf_model("pretrain"), optimizer_state=False)
    state["bert.something_else.weight"] = np.zeros(3, np.float32)
    ckpt = read_checkpoint(write(state, tmp_path / "zoo.ckpt"))
    assert ckpt.skipped == {"bert.something_else.weight": "not a parameter of the zoo's BERT/NEZHA networks"}
    state.pop("bert.bert.bert_embedding_lookup.embedding_table")
    state["x.bert_embedding_lookup.embedding_table"] = np.zeros((V, 32), np.float32)
    with pytest.raises(CheckpointError, match="under a 'bert.' cell"):
        read_checkpoint(write(state, tmp_path / "bad.ckpt"))
