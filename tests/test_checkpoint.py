"""Checkpoint conversion: parity with HuggingFace (BERT and NEZHA), TF1 import, round trip, bad input."""
from __future__ import annotations

import os

import mindspore as ms
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from src.bert_model import BertModel  # noqa: E402
from src.checkpoint import (CheckpointError, load_checkpoint_into, network_state, read_checkpoint,  # noqa: E402
                            save_hf_checkpoint, save_mindspore_checkpoint)
from src.config import bert_config_from_hf, bert_config_to_hf  # noqa: E402
from src.heads import BertForPreTraining, BertForSequenceClassification  # noqa: E402
from tests.conftest import int32_tensors, padded_batch  # noqa: E402

B, S, V = 3, 12, 99
TINY = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=64)


def batch(seed=0):
    return padded_batch(B, S, V, seed)


def assert_close_at_real_positions(ours, reference, mask):
    """Per-position outputs [B, S, ...] equal at the real positions (padding positions carry no
    information: BertModel's docstring)."""
    real = mask.astype(bool)
    np.testing.assert_allclose(ours.asnumpy()[real], reference.numpy()[real], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def hf_pretraining(tmp_path_factory):
    """A random HF BertForPreTraining saved with save_pretrained (safetensors, bert. prefix, tied decoder)."""
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(transformers.BertConfig(**TINY)).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm so that every mapping matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path_factory.mktemp("hf_pretraining")
    model.save_pretrained(path)
    return model, path


def test_hf_pretraining_logits_match(hf_pretraining, mode):
    model, path = hf_pretraining
    cfg = bert_config_from_hf(path, seq_length=S)
    net = BertForPreTraining(cfg)
    net.set_train(False)
    report = load_checkpoint_into(net, path)
    assert report.initialized == [] and report.unused == {}
    ids, mask, seg = batch()
    positions = np.tile(np.arange(S), (B, 1))
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))
    mlm, nsp = net(*int32_tensors(ids, mask, seg, positions))
    assert_close_at_real_positions(mlm, ref.prediction_logits, mask)
    np.testing.assert_allclose(nsp.asnumpy(), ref.seq_relationship_logits.numpy(), atol=1e-4, rtol=0)


def test_old_style_bin_without_prefix(hf_pretraining, tmp_path, mode):
    """pytorch_model.bin, LayerNorm as gamma/beta, no bert. prefix, position_ids buffer present."""
    model, path = hf_pretraining
    state = {}
    for k, v in model.bert.state_dict().items():
        state[k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")] = v
    state["embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    cfg = bert_config_from_hf(path, seq_length=S)
    net = BertModel(cfg)
    net.set_train(False)
    report = load_checkpoint_into(net, tmp_path / "pytorch_model.bin")
    assert report.initialized == [] and report.unused == {"embeddings.position_ids": "buffer, not a weight"}
    ids, mask, seg = batch(1)
    with torch.no_grad():
        ref = model.bert(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                         token_type_ids=torch.tensor(seg))
    seq, pooled = net(*int32_tensors(ids, mask, seg))
    assert_close_at_real_positions(seq, ref.last_hidden_state, mask)
    np.testing.assert_allclose(pooled.asnumpy(), ref.pooler_output.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("max_relative_position", [64, 3])
def test_nezha_matches_hf_nezha(max_relative_position, tmp_path, mode):
    torch.manual_seed(1)
    config = transformers.NezhaConfig(**TINY, max_relative_position=max_relative_position)
    model = transformers.NezhaModel(config).eval()
    model.save_pretrained(tmp_path)
    cfg = bert_config_from_hf(tmp_path, seq_length=S)
    assert cfg.use_relative_positions and cfg.max_relative_position == max_relative_position
    net = BertModel(cfg)
    net.set_train(False)
    report = load_checkpoint_into(net, tmp_path)
    assert report.initialized == [] and report.unused == {}
    ids, mask, seg = batch(2)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))
    seq, pooled = net(*int32_tensors(ids, mask, seg))
    assert_close_at_real_positions(seq, ref.last_hidden_state, mask)
    np.testing.assert_allclose(pooled.asnumpy(), ref.pooler_output.numpy(), atol=1e-4, rtol=0)


def test_nezha_runs_past_the_position_table_at_seq_1024(tmp_path, mode):
    """NEZHA has no absolute position table: seq_length 1024 with max_position_embeddings 512 builds and
    equals HF NezhaModel (whose precomputed relative encodings need max_position_embeddings 1024)."""
    torch.manual_seed(2)
    long = 1024
    model = transformers.NezhaModel(transformers.NezhaConfig(**{**TINY, "max_position_embeddings": long},
                                                             max_relative_position=64)).eval()
    model.save_pretrained(tmp_path)
    cfg = bert_config_from_hf(tmp_path, seq_length=long, max_position_embeddings=512)
    net = BertModel(cfg)
    net.set_train(False)
    assert load_checkpoint_into(net, tmp_path).initialized == []
    rng = np.random.default_rng(5)
    ids = rng.integers(1, V, (2, long))
    mask = np.ones((2, long), np.int64)
    mask[1, 700:] = 0
    seg = np.zeros((2, long), np.int64)
    seg[:, 400:] = 1
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))
    seq, pooled = net(*int32_tensors(ids, mask, seg))
    assert_close_at_real_positions(seq, ref.last_hidden_state, mask)
    np.testing.assert_allclose(pooled.asnumpy(), ref.pooler_output.numpy(), atol=1e-4, rtol=0)


def test_bert_refuses_a_sequence_longer_than_its_position_table():
    """BERT's absolute table has max_position_embeddings rows: a longer seq_length is refused when the
    config is made, before any graph is built."""
    from src.config import BertConfig, ConfigError
    with pytest.raises(ConfigError, match="seq_length 1024 exceeds max_position_embeddings 512"):
        BertModel(BertConfig(**dict(TINY, max_position_embeddings=512), seq_length=1024))


def test_hf_mindspore_hf_round_trip_is_bit_identical(hf_pretraining, tmp_path):
    from safetensors.numpy import load_file
    model, path = hf_pretraining
    original = load_file(str(path / "model.safetensors"))
    ckpt = read_checkpoint(path)
    save_mindspore_checkpoint(ckpt.params, tmp_path / "model.ckpt")
    back = read_checkpoint(tmp_path / "model.ckpt")
    cfg = bert_config_from_hf(path)
    save_hf_checkpoint(back.params, tmp_path / "hf", bert_config_to_hf(cfg))
    again = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert sorted(again) == sorted(original)
    for key, value in original.items():
        assert again[key].dtype == value.dtype and again[key].tobytes() == value.tobytes(), key
    # and HF itself loads the exported directory without missing or unexpected keys
    reloaded, info = transformers.BertForPreTraining.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_load_into_bare_pretraining_and_finetune_networks(hf_pretraining):
    _, path = hf_pretraining
    cfg = bert_config_from_hf(path, seq_length=S)
    bare = load_checkpoint_into(BertModel(cfg), path)
    assert bare.initialized == [] and all(k.startswith("cls.") for k in bare.unused)
    clf = load_checkpoint_into(BertForSequenceClassification(cfg, num_labels=3), path)
    assert clf.initialized == ["classifier.bias", "classifier.weight"]
    assert all(k.startswith("cls.") for k in clf.unused)
    # a bare model's own parameters round-trip through network_state into the pretraining network
    net = BertModel(cfg)
    save_mindspore_checkpoint(network_state(net), os.path.join(os.path.dirname(path), "bare.ckpt"))
    report = load_checkpoint_into(BertForPreTraining(cfg), os.path.join(os.path.dirname(path), "bare.ckpt"))
    assert all(n.startswith("cls.") for n in report.initialized)
    assert len(report.initialized) == 7 and report.unused == {}


def _google_tf_variables(model) -> dict[str, np.ndarray]:
    """The TF1 variable names and layouts of google-research/bert modeling.py (written out by hand)."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    out = {"global_step": np.array(1000, np.int64)}
    emb = "bert/embeddings/"
    out[emb + "word_embeddings"] = sd["bert.embeddings.word_embeddings.weight"]
    out[emb + "position_embeddings"] = sd["bert.embeddings.position_embeddings.weight"]
    out[emb + "token_type_embeddings"] = sd["bert.embeddings.token_type_embeddings.weight"]
    out[emb + "LayerNorm/gamma"] = sd["bert.embeddings.LayerNorm.weight"]
    out[emb + "LayerNorm/beta"] = sd["bert.embeddings.LayerNorm.bias"]
    for i in range(TINY["num_hidden_layers"]):
        hf, tf = f"bert.encoder.layer.{i}.", f"bert/encoder/layer_{i}/"
        for hf_sub, tf_sub in (("attention.self.query", "attention/self/query"),
                               ("attention.self.key", "attention/self/key"),
                               ("attention.self.value", "attention/self/value"),
                               ("attention.output.dense", "attention/output/dense"),
                               ("intermediate.dense", "intermediate/dense"), ("output.dense", "output/dense")):
            out[tf + tf_sub + "/kernel"] = sd[hf + hf_sub + ".weight"].T.copy()
            out[tf + tf_sub + "/bias"] = sd[hf + hf_sub + ".bias"]
            out[tf + tf_sub + "/kernel/adam_m"] = np.zeros_like(sd[hf + hf_sub + ".weight"].T)
        for hf_sub, tf_sub in (("attention.output.LayerNorm", "attention/output/LayerNorm"),
                               ("output.LayerNorm", "output/LayerNorm")):
            out[tf + tf_sub + "/gamma"] = sd[hf + hf_sub + ".weight"]
            out[tf + tf_sub + "/beta"] = sd[hf + hf_sub + ".bias"]
    out["bert/pooler/dense/kernel"] = sd["bert.pooler.dense.weight"].T.copy()
    out["bert/pooler/dense/bias"] = sd["bert.pooler.dense.bias"]
    out["cls/predictions/transform/dense/kernel"] = sd["cls.predictions.transform.dense.weight"].T.copy()
    out["cls/predictions/transform/dense/bias"] = sd["cls.predictions.transform.dense.bias"]
    out["cls/predictions/transform/LayerNorm/gamma"] = sd["cls.predictions.transform.LayerNorm.weight"]
    out["cls/predictions/transform/LayerNorm/beta"] = sd["cls.predictions.transform.LayerNorm.bias"]
    out["cls/predictions/output_bias"] = sd["cls.predictions.bias"]
    out["cls/seq_relationship/output_weights"] = sd["cls.seq_relationship.weight"]  # [2, H] in Google's code
    out["cls/seq_relationship/output_bias"] = sd["cls.seq_relationship.bias"]
    return out


def test_google_tf1_checkpoint(hf_pretraining, tmp_path, mode):
    tf = pytest.importorskip("tensorflow")
    model, path = hf_pretraining
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in _google_tf_variables(model).items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "bert_model.ckpt"))
    net = BertForPreTraining(bert_config_from_hf(path, seq_length=S))
    net.set_train(False)
    report = load_checkpoint_into(net, tmp_path / "bert_model.ckpt")
    assert report.initialized == []
    assert set(report.unused.values()) == {"optimizer or training state"}
    ids, mask, seg = batch(3)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))
    mlm, nsp = net(*int32_tensors(ids, mask, seg, np.tile(np.arange(S), (B, 1))))
    assert_close_at_real_positions(mlm, ref.prediction_logits, mask)
    np.testing.assert_allclose(nsp.asnumpy(), ref.seq_relationship_logits.numpy(), atol=1e-4, rtol=0)


def test_hidden_size_mismatch_names_both_keys(hf_pretraining):
    _, path = hf_pretraining
    cfg = bert_config_from_hf(path, seq_length=S, hidden_size=64, num_attention_heads=4)
    with pytest.raises(CheckpointError, match=r"'bert.embeddings.word_embeddings.weight' has shape \(99, 32\) but "
                                              r"the model's 'embeddings.word_embeddings.embedding_table' has shape "
                                              r"\(99, 64\) \(the checkpoint has hidden_size 32, the config 64\)"):
        load_checkpoint_into(BertModel(cfg), path)


def test_truncated_and_corrupt_files(hf_pretraining, tmp_path):
    _, path = hf_pretraining
    data = (path / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.safetensors is not a readable safetensors file .*truncated"):
        read_checkpoint(tmp_path / "cut.safetensors")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.ckpt is not a readable MindSpore checkpoint"):
        read_checkpoint(tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.safetensors")


def test_untied_decoder_is_refused(hf_pretraining, tmp_path):
    from safetensors.numpy import load_file, save_file
    _, path = hf_pretraining
    state = load_file(str(path / "model.safetensors"))
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"] + 1
    save_file(state, str(tmp_path / "untied.safetensors"))
    with pytest.raises(CheckpointError, match="differs from the word embeddings"):
        read_checkpoint(tmp_path / "untied.safetensors")


def test_atomic_writes_leave_nothing_on_failure(tmp_path):
    with pytest.raises(Exception):
        save_mindspore_checkpoint({"a": np.zeros(2, np.float32), "b": object()}, tmp_path / "x.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_a_load_reaches_functions_compiled_before_it(tmp_path):
    """set_data would leave an already-compiled predictor on the old weights; the load must not."""
    from src.checkpoint import load_checkpoint_into
    from src.classifier import logits_function
    from src.heads import BertForSequenceClassification
    from tests.conftest import tiny_config

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        ms.set_seed(1)
        trained = BertForSequenceClassification(tiny_config(), 3)
        path = tmp_path / "other.ckpt"
        ms.save_checkpoint(trained, str(path))
        ms.set_seed(2)
        network = BertForSequenceClassification(tiny_config(), 3)
        network.set_train(False)
        ids = ms.Tensor(np.arange(14, dtype=np.int32).reshape(2, 7))
        mask, seg = ms.Tensor(np.ones((2, 7), np.int32)), ms.Tensor(np.zeros((2, 7), np.int32))
        predictor = logits_function(network)
        before = predictor(ids, mask, seg).asnumpy()
        load_checkpoint_into(network, path)
        after = predictor(ids, mask, seg).asnumpy()
        fresh = BertForSequenceClassification(tiny_config(), 3)
        load_checkpoint_into(fresh, path)
        fresh.set_train(False)
        expected = logits_function(fresh)(ids, mask, seg).asnumpy()
        assert not np.allclose(before, expected)
        np.testing.assert_allclose(after, expected, atol=1e-6)
    finally:
        ms.set_context(mode=previous)


def test_hf_question_answering_logits_match(tmp_path, mode):
    """HF BertForQuestionAnswering (qa_outputs) -> BertForQuestionAnswering: the same start and end
    logits at the real positions."""
    from src.heads import BertForQuestionAnswering

    torch.manual_seed(3)
    model = transformers.BertForQuestionAnswering(transformers.BertConfig(**TINY)).eval()
    model.save_pretrained(tmp_path)
    net = BertForQuestionAnswering(bert_config_from_hf(tmp_path, seq_length=S))
    net.set_train(False)
    report = load_checkpoint_into(net, tmp_path)
    assert report.initialized == [] and report.unused == {}
    ids, mask, seg = batch(4)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(seg))
    start, end = net(*int32_tensors(ids, mask, seg))
    assert_close_at_real_positions(start, ref.start_logits, mask)
    assert_close_at_real_positions(end, ref.end_logits, mask)
