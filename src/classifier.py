"""Sentence(-pair) classification and regression: batched prediction over a whole record file
(the training loss is :class:`~src.training.BertClassificationLoss`).

Shape letters: B batch, S sequence length, C number of labels (1 for regression).
"""
from __future__ import annotations

import weakref

import mindspore as ms
import numpy as np
from .heads import BertForSequenceClassification


_PREDICTORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # network -> its compiled logits function


def logits_function(network: BertForSequenceClassification):
    """A compiled function (input_ids, input_mask, segment_ids) int32 [B, S] -> float32 logits [B, C]
    of ``network`` at inference (dropout is off in eval mode).

    A function rather than a wrapping Cell: a Cell holding ``network`` as an attribute would prefix
    its parameter names (``network.bert...``) and break checkpoints saved afterwards.
    """
    function = _PREDICTORS.get(network)
    if function is None:
        @ms.jit
        def logits(input_ids, input_mask, segment_ids):
            return network.classifier(network.sentence_vector(input_ids, input_mask, segment_ids)).astype(ms.float32)

        function = _PREDICTORS[network] = logits
    return function


def predict_logits(network: BertForSequenceClassification, dataset, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every row of ``dataset``, in order.

    The last partial batch is padded to ``batch_size`` (one compiled shape for every batch) and
    the padding trimmed from the outputs, so no example is dropped or counted twice.

    Args:
        network: a classifier (its training flag is restored afterwards).
        dataset: batches of ``input_ids``, ``input_mask``, ``segment_ids``, ``label_ids``
            (``create_finetune_dataset(..., shuffle=False, drop_remainder=False)``).
        batch_size: the dataset's batch size.

    Returns:
        float32 logits [N, C] and labels [N] (int32 classes or float32 targets).
    """
    was_training = network.training
    network.set_train(False)
    predictor = logits_function(network)
    logits, labels = [], []
    try:
        for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
            n = len(batch["input_ids"])
            inputs = []
            for name in ("input_ids", "input_mask", "segment_ids"):
                array = batch[name]
                if n < batch_size:
                    array = np.concatenate([array, np.zeros((batch_size - n, array.shape[1]), array.dtype)])
                inputs.append(ms.Tensor(array))
            logits.append(predictor(*inputs).asnumpy()[:n])
            labels.append(batch["label_ids"].reshape(-1))
    finally:
        network.set_train(was_training)
    if not logits:
        return np.zeros((0, network.classifier.out_channels), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(logits), np.concatenate(labels)


def predictions_from_logits(logits: np.ndarray, is_regression: bool) -> np.ndarray:
    """Class ids [N] (argmax) or regression values [N] from logits [N, C]."""
    return logits[:, 0] if is_regression else logits.argmax(-1)


__all__ = ["logits_function", "predict_logits", "predictions_from_logits"]
