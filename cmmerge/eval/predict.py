"""Batched prediction with a fine-tuned sequence classifier."""

from __future__ import annotations

from pathlib import Path


class Classifier:
    """A fine-tuned classifier loaded once and applied to any number of test sets."""

    def __init__(self, model_dir: str | Path, max_length: int = 128, batch_size: int = 64):
        from transformers import AutoModelForSequenceClassification

        from cmmerge.models import load_tokenizer

        self.tokenizer = load_tokenizer(str(model_dir))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
        self.max_length, self.batch_size = max_length, batch_size

    def predict(self, texts: list[str]) -> list[str]:
        """Predicted label strings; batches sorted by length so little time goes to padding."""
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
        pred_ids = [0] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer.pad({"input_ids": [enc["input_ids"][i] for i in idx]}, return_tensors="pt")
                logits = self.model(**batch).logits
                for i, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
                    pred_ids[i] = p
        id2label = self.model.config.id2label
        return [id2label[i] for i in pred_ids]


def macro_f1(model_dir: str | Path, rows: list[dict], labels: list[str], max_length: int, batch_size: int) -> float:
    """Macro-F1 of the classifier at ``model_dir`` on prepared ``rows`` (``text``/``label``), as ``evaluate`` scores."""
    from cmmerge.eval.metrics import classification_metrics

    pred = Classifier(model_dir, max_length, batch_size).predict([r["text"] for r in rows])
    return classification_metrics([r["label"] for r in rows], pred, labels)["macro_f1"]
