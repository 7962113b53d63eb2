"""Cross-encoder reranking: read the question with each fused candidate and reorder by how well it answers.

The two first-stage halves each look at one side at a time (BM25 at shared words, the embedder at two separate
vectors), so a look-alike news chunk full of the question's generic words can outrank the one that answers.
A cross-encoder reads both texts together; retriever.hybrid fuses its order with the fused one. Trained by
`python -m qa.training.reranker`; named `reranker` in models.txt (leave it out to skip this stage).
"""

from __future__ import annotations

from pathlib import Path

from retriever.embedder import model_input


class Reranker:
    def __init__(self, path: Path, max_tokens: int = 256, batch: int = 16):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        # fp16 on disk, fp32 to compute (CPU fp16 matmuls are slow and lossy)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch.float32).eval()
        self.max_tokens = max_tokens
        self.batch = batch

    def scores(self, question: str, passages: list[str]) -> list[float]:
        """One relevance logit per passage (higher: more likely to hold the answer)."""
        out: list[float] = []
        q = model_input(question)
        with self._torch.inference_mode():
            for i in range(0, len(passages), self.batch):
                part = [model_input(p) for p in passages[i : i + self.batch]]
                inputs = self.tokenizer([q] * len(part), part, truncation="only_second",
                                        max_length=self.max_tokens, padding=True, return_tensors="pt")
                logits = self.model(**inputs).logits
                # one logit (trained here, most cross-encoders) or two classes: the log-odds of "relevant"
                out.extend((logits[:, 0] if logits.shape[1] == 1 else logits[:, -1] - logits[:, 0]).tolist())
        return out
