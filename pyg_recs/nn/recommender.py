from typing import Any, Optional

import torch
from torch import Tensor

from pyg_recs.metrics import top_k


class Recommender(torch.nn.Module):
    r"""The interface every model of pyg_recs meets, and all that the
    :class:`~pyg_recs.engine.Trainer` and the recipes rely on:

    - :meth:`batch_loss`: the training loss of a mini-batch from the
      model's training loader;
    - :meth:`batch_scores`: the scores of all candidates (items; entities
      for a knowledge-graph embedding) for every query of an evaluation
      mini-batch, :obj:`[batch_size, num_candidates]`;
    - :meth:`recommend`: the top-:obj:`k` candidates of every query, best
      first, never one of the :obj:`exclude` pairs.

    A batch is whatever the model's loaders produce (a
    :class:`~torch_geometric.data.Batch` of session graphs, a
    :class:`~torch_geometric.data.Data` or dictionary of index tensors).
    A new model subclasses :class:`Recommender` (or one of its subclasses,
    *e.g.* :class:`~pyg_recs.nn.models.SessionGNN`) and implements the
    first two; :meth:`recommend` follows from :meth:`batch_scores`.
    """
    def batch_loss(self, batch: Any) -> Tensor:
        r"""The training loss of a mini-batch, a scalar."""
        raise NotImplementedError(
            f"'{self.__class__.__name__}' does not implement 'batch_loss'")

    def batch_scores(self, batch: Any) -> Tensor:
        r"""The scores of all candidates for every query of a mini-batch,
        :obj:`[batch_size, num_candidates]`."""
        raise NotImplementedError(
            f"'{self.__class__.__name__}' does not implement "
            f"'batch_scores'")

    def check_exclude(self, exclude: Tensor, num_rows: int) -> None:
        r"""Checks the :obj:`[2, M]` (row, candidate) pairs of
        :meth:`recommend`; subclasses may check the candidate range too."""
        if exclude.dim() != 2 or exclude.size(0) != 2:
            raise ValueError(f"'exclude' must have shape [2, M] (got "
                             f"{list(exclude.size())})")
        if exclude.numel() > 0 and (int(exclude[0].min()) < 0 or
                                    int(exclude[0].max()) >= num_rows):
            raise ValueError(f"'exclude[0]' must be rows in [0, "
                             f"{num_rows - 1}]")

    @torch.no_grad()
    def recommend(self, batch: Any, k: int = 20,
                  exclude: Optional[Tensor] = None) -> Tensor:
        r"""Returns the top-:obj:`k` candidates of every query of the
        mini-batch, best first, :obj:`[batch_size, k]` (at most all
        candidates).

        Args:
            batch (any): A mini-batch, as for :meth:`batch_scores`.
            k (int, optional): The number of recommendations.
                (default: :obj:`20`)
            exclude (torch.Tensor, optional): :obj:`[2, M]` pairs (row of
                the batch, candidate) never to recommend, such as a user's
                training items; it may be empty. Where fewer than :obj:`k`
                candidates are left, the excluded ones fill the end of the
                row. (default: :obj:`None`)
        """
        if k < 1:
            raise ValueError(f"Invalid 'k' (got {k})")
        scores = self.batch_scores(batch)
        if exclude is not None:
            self.check_exclude(exclude, scores.size(0))
        return top_k(scores, k, exclude)
