"""The losses of `dupfind train`, each computed with gradient caching (GradCache): the loss and gradients of the
whole batch, from embeddings encoded `MINI_BATCH` questions at a time, so that training memory is that of a
mini-batch whatever the batch size (train --recipe best peaked at 8.5 GB RSS on one batch of 128 long labeled
pairs encoded at once; docs/benchmarks.md, "Training precision and memory")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from dupfind.quality.training.recipes import Recipe

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MINI_BATCH = 32  # questions encoded at once with gradients: bounds training memory, not the result


def training_losses(model: SentenceTransformer, recipe: Recipe) -> dict[str, Any]:
    """The recipe's losses by training set: the ranking loss on duplicate pairs, its pair loss on labeled pairs."""
    from sentence_transformers.sentence_transformer import losses

    directions: tuple[Literal["query_to_doc", "doc_to_query"], ...] = (
        ("query_to_doc", "doc_to_query") if recipe.symmetric else ("query_to_doc",)
    )
    ranking = losses.CachedMultipleNegativesRankingLoss(
        model, scale=20.0, directions=directions, mini_batch_size=MINI_BATCH
    )
    labeled: Any
    if recipe.labeled_loss == "OnlineContrastiveLoss":
        labeled = losses.OnlineContrastiveLoss(model, margin=0.5)
    else:
        labeled = losses.CosineSimilarityLoss(model)
    return {"duplicates": ranking, "labeled": cached(labeled)}


def cached(loss: Any) -> Any:
    """A sentence-transformers loss on pairs of embeddings (`compute_loss_from_embeddings`, as OnlineContrastiveLoss
    and CosineSimilarityLoss have) with gradient caching: the same loss and gradients, encoded in mini-batches."""
    import torch
    from sentence_transformers.base.losses.gradcache import CachedLossMixin

    class CachedPairLoss(CachedLossMixin, torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = loss.model
            self.loss = loss
            self.mini_batch_size = MINI_BATCH

        def calculate_loss(
            self, reps: list[list[torch.Tensor]], labels: torch.Tensor | None = None, *, with_backward: bool = False
        ) -> torch.Tensor:
            value: torch.Tensor = self.loss.compute_loss_from_embeddings([torch.cat(column) for column in reps], labels)
            if with_backward:
                value.backward()  # type: ignore[no-untyped-call]
                value = value.detach()
            return value

        def forward(self, features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = self.forward_cached(features, labels)
            return result

        def get_config_dict(self) -> dict[str, Any]:
            config: dict[str, Any] = self.loss.get_config_dict()
            return {**config, "mini_batch_size": self.mini_batch_size}

    return CachedPairLoss()
