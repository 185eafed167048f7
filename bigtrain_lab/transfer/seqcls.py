"""A tiny text classifier that follows the Hugging Face convention of ``BertForSequenceClassification``:
``model(input_ids, attention_mask=None, labels=None)`` returns an output with ``.logits`` always and ``.loss``
only when ``labels`` are passed (``None`` otherwise), as transformers' models do. Lesson 10 runs the circulating
fine-tuning loop (seed 000 #12) on it: that loop never passes ``labels``, so ``outputs.loss`` is ``None``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SequenceClassifierOutput", "TinySequenceClassifier", "toy_sentences"]


@dataclass
class SequenceClassifierOutput:
    """As transformers' ``SequenceClassifierOutput``: ``loss`` is None unless labels were given."""

    loss: torch.Tensor | None
    logits: torch.Tensor


class TinySequenceClassifier(nn.Module):
    """Token embeddings, a masked mean over the sequence, a linear classifier."""

    def __init__(self, vocab_size: int = 32, dim: int = 16, num_labels: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.classifier = nn.Linear(dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        h = (self.embed(input_ids) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        logits = self.classifier(h)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def toy_sentences(n: int, *, length: int = 12, vocab_size: int = 32, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, labels)``: random token sequences padded (id 0) to ``length``; the label
    is 1 when token 1 occurs in the sequence."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab_size, (n, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    positive = torch.rand(n, generator=g) < 0.5
    where = (torch.rand(n, generator=g) * lengths).long()
    ids[positive, where[positive]] = 1
    return ids * mask, mask, positive.long()
