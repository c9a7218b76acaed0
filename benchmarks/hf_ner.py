"""The HuggingFace side of the NER comparisons: ``transformers.BertForTokenClassification``, and
the same with a ``pytorch-crf`` CRF on top, with the loss and decoding this project uses.

* softmax: HuggingFace's own loss, cross-entropy over the first WordPiece of each word (the other
  positions get label -100), mean over those positions; decoding is the argmax.
* CRF (``torchcrf.CRF``, ``batch_first``): pytorch-crf needs the mask to be a contiguous prefix
  starting at position 0, so the emissions and tags of each row's labelled positions (the first
  pieces) are packed to the left, as NER code built on it usually does; loss = the mean over the
  batch of each row's negative log-likelihood (``reduction="mean"``), decoding by its Viterbi.
  This is what ``src/crf.py`` computes on the unpacked sequence with ``label_mask`` (its tests
  check the equality).
"""
from __future__ import annotations

import torch


def pack_left(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """values [B, S, ...] and bool mask [B, S] -> the masked-in values of each row moved to the
    front (order kept) and the packed prefix mask, both [B, S(, ...)]."""
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # True positions first
    index = order.view(*order.shape, *([1] * (values.dim() - 2))).expand_as(values)
    packed = torch.gather(values, 1, index)
    counts = mask.sum(1, keepdim=True)
    prefix = torch.arange(mask.shape[1]).unsqueeze(0) < counts
    return packed, prefix


class HFTagger(torch.nn.Module):
    """``BertForTokenClassification`` (+ optional ``torchcrf.CRF``).

    ``forward(input_ids, attention_mask, token_type_ids, labels, label_mask)`` returns the loss;
    ``decode(...)`` returns tag ids [B, S] (0 where ``label_mask`` is 0).
    """

    def __init__(self, model, num_labels: int, use_crf: bool):
        super().__init__()
        self.model = model
        self.use_crf = use_crf
        if use_crf:
            from torchcrf import CRF

            self.crf = CRF(num_labels, batch_first=True)

    def forward(self, input_ids, attention_mask, token_type_ids, labels, label_mask):
        mask = label_mask.bool()
        if not self.use_crf:
            hf_labels = torch.where(mask, labels, torch.full_like(labels, -100))
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              labels=hf_labels).loss
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        packed, prefix = pack_left(logits, mask)
        tags, _ = pack_left(labels, mask)
        keep = prefix[:, 0]  # pytorch-crf cannot take a row without labelled positions
        return -self.crf(packed[keep], tags[keep], prefix[keep], reduction="sum") / len(labels)

    @torch.no_grad()
    def decode(self, input_ids, attention_mask, token_type_ids, label_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        mask = label_mask.bool()
        out = torch.zeros(mask.shape, dtype=torch.long)
        if not self.use_crf:
            return torch.where(mask, logits.argmax(-1), out)
        packed, prefix = pack_left(logits, mask)
        for row, path in zip(torch.nonzero(prefix[:, 0]).flatten().tolist(),
                             self.crf.decode(packed[prefix[:, 0]], prefix[prefix[:, 0]])):
            out[row, mask[row]] = torch.tensor(path)
        return out
