r"""Ranking metrics, computed in one place for every model.

Top-:math:`k` recommendation metrics reuse PyG's link-prediction metrics
(:mod:`torch_geometric.metrics`): for every example :math:`u` with relevant
items :math:`\mathcal{R}_u` and top-:math:`k` list :math:`L_u`,

.. math::
    \textrm{HR@}k &= \mathbb{1}[\mathcal{R}_u \cap L_u \neq \emptyset],
    \qquad
    \textrm{MRR@}k = \max_{i \in \mathcal{R}_u \cap L_u}
        \frac{1}{\textrm{rank}(i)},

    \textrm{Precision@}k &= \frac{|\mathcal{R}_u \cap L_u|}{k},
    \qquad
    \textrm{Recall@}k = \frac{|\mathcal{R}_u \cap L_u|}{|\mathcal{R}_u|},
    \qquad
    \textrm{NDCG@}k = \frac{\sum_{i \in \mathcal{R}_u \cap L_u}
        1 / \log_2(1 + \textrm{rank}(i))}{\sum_{r=1}^{\min(k,
        |\mathcal{R}_u|)} 1 / \log_2(1 + r)},

averaged over the examples that have at least one relevant item. For
session-based recommendation (one target per session) HR@20 is the
"P@20" of the SR-GNN paper. :math:`\textrm{Hit@}k` is the same as
:math:`\textrm{HR@}k`; :math:`\textrm{F1@}k` is the harmonic mean of
precision and recall per example.

Knowledge-graph completion uses :func:`filtered_rank`, the rank of the true
entity among all entities after removing the other known true ones
(:class:`KnownTails`), and :func:`kg_completion` evaluates a whole split of
triples with it.
"""
from typing import Callable, Dict, Iterable, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.metrics import (
    LinkPredF1,
    LinkPredHitRatio,
    LinkPredMetricCollection,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)

#: Our metric names and the PyG metric class that computes each.
METRICS = {
    'HR': LinkPredHitRatio,
    'Hit': LinkPredHitRatio,
    'MRR': LinkPredMRR,
    'NDCG': LinkPredNDCG,
    'Precision': LinkPredPrecision,
    'Recall': LinkPredRecall,
    'F1': LinkPredF1,
}


class RankingMetrics:
    r"""Accumulates top-:math:`k` ranking metrics over mini-batches.

    .. code-block:: python

        metrics = RankingMetrics(['HR', 'MRR', 'NDCG'], ks=[10, 20])
        for batch in loader:
            scores = model.batch_scores(batch)
            metrics.update_from_scores(scores, targets(batch))
        metrics.compute()
        >>> {'HR@10': 0.41, 'HR@20': 0.50, 'MRR@10': 0.16, ...}

    Args:
        names (list of str, optional): Metric names out of
            :obj:`'HR'`, :obj:`'Hit'`, :obj:`'MRR'`, :obj:`'NDCG'`,
            :obj:`'Precision'`, :obj:`'Recall'`, :obj:`'F1'`.
            (default: :obj:`('HR', 'MRR', 'NDCG')`)
        ks (list of int, optional): The cut-offs. (default: :obj:`(10, 20)`)
    """
    def __init__(
        self,
        names: Sequence[str] = ('HR', 'MRR', 'NDCG'),
        ks: Sequence[int] = (10, 20),
    ) -> None:
        unknown = [name for name in names if name not in METRICS]
        if unknown:
            raise ValueError(f"Unknown metrics {unknown}; choose from "
                             f"{list(METRICS)}")
        if len(ks) == 0 or min(ks) < 1:
            raise ValueError(f"Invalid 'ks' (got {list(ks)})")
        self.names = list(names)
        self.ks = sorted(set(int(k) for k in ks))
        self.max_k = max(self.ks)
        self.collection = LinkPredMetricCollection({
            f'{name}@{k}': METRICS[name](k=k)
            for name in self.names for k in self.ks
        })

    def to(self, device: torch.device) -> 'RankingMetrics':
        self.collection.to(device)
        return self

    def reset(self) -> None:
        for metric in self.collection.values():
            metric.reset()

    @torch.no_grad()
    def update(self, pred_index: Tensor, edge_label_index: Tensor) -> None:
        r"""Adds a mini-batch of top-:math:`k` lists.

        Args:
            pred_index (torch.Tensor): The top-:math:`k` item indices of every
                example, of shape :obj:`[batch_size, k]` with
                :obj:`k >= max(ks)`.
            edge_label_index (torch.Tensor): The relevant items as
                :obj:`[2, num_labels]` pairs (example, item), or a vector of
                one target item per example of shape :obj:`[batch_size]`.
        """
        if pred_index.dim() != 2 or pred_index.size(1) < self.max_k:
            raise ValueError(f"'pred_index' must have shape [batch_size, k] "
                             f"with k >= {self.max_k} (got "
                             f"{list(pred_index.size())})")
        edge_label_index = as_label_index(edge_label_index)
        self.collection.update(pred_index[:, :self.max_k], edge_label_index)

    @torch.no_grad()
    def update_from_scores(self, scores: Tensor, edge_label_index: Tensor,
                           exclude_index: Optional[Tensor] = None) -> None:
        r"""Adds a mini-batch of full-ranking scores.

        Args:
            scores (torch.Tensor): Scores over all items, higher is better,
                of shape :obj:`[batch_size, num_items]`.
            edge_label_index (torch.Tensor): The relevant items, see
                :meth:`update`.
            exclude_index (torch.Tensor, optional): :obj:`[2, num_excluded]`
                pairs (example, item) never to recommend, such as training
                items. (default: :obj:`None`)
        """
        self.update(top_k(scores, self.max_k, exclude_index),
                    edge_label_index)

    def compute(self) -> Dict[str, float]:
        r"""Returns :obj:`{'NAME@k': value}` over everything added so far."""
        out = self.collection.compute()
        return {key: float(value) for key, value in out.items()}


def as_label_index(target: Tensor) -> Tensor:
    r"""Turns a vector of one target per example into :obj:`[2, batch_size]`
    (example, item) pairs; leaves :obj:`[2, num_labels]` pairs unchanged.
    """
    if target.dim() == 1:
        arange = torch.arange(target.numel(), device=target.device)
        return torch.stack([arange, target], dim=0)
    if target.dim() != 2 or target.size(0) != 2:
        raise ValueError(f"Targets must be a vector or a [2, num_labels] "
                         f"index (got shape {list(target.size())})")
    return target


def top_k(scores: Tensor, k: int,
          exclude_index: Optional[Tensor] = None) -> Tensor:
    r"""Returns the indices of the :obj:`k` highest scores per row, never
    choosing the (row, column) pairs in :obj:`exclude_index`.

    Args:
        scores (torch.Tensor): The scores of shape :obj:`[batch_size, N]`.
        k (int): How many to return (at most :obj:`N`).
        exclude_index (torch.Tensor, optional): :obj:`[2, num_excluded]`
            (row, column) pairs to exclude. (default: :obj:`None`)
    """
    if exclude_index is not None and exclude_index.numel() > 0:
        scores = scores.clone()
        scores[exclude_index[0], exclude_index[1]] = float('-inf')
    return scores.topk(min(k, scores.size(-1)), dim=-1).indices


@torch.no_grad()
def filtered_rank(scores: Tensor, target: Tensor,
                  filter_index: Optional[Tensor] = None) -> Tensor:
    r"""Filtered rank (1 = best) of :obj:`target[i]` in :obj:`scores[i]`.

    The other known true answers (:obj:`filter_index`, :obj:`[2, M]` pairs
    of row and column) are removed before ranking, as in the filtered
    setting of knowledge-graph completion; ties count against the target.

    Args:
        scores (torch.Tensor): Scores of shape :obj:`[batch_size, N]`, higher
            is better.
        target (torch.Tensor): The true column per row, :obj:`[batch_size]`.
        filter_index (torch.Tensor, optional): Pairs to remove.
            (default: :obj:`None`)
    """
    arange = torch.arange(target.numel(), device=target.device)
    true_score = scores[arange, target]
    scores = scores.clone()
    if filter_index is not None and filter_index.numel() > 0:
        scores[filter_index[0], filter_index[1]] = float('-inf')
    scores[arange, target] = float('-inf')
    return (scores >= true_score.view(-1, 1)).sum(dim=-1) + 1


def rank_metrics(ranks: Iterable[Tensor], ks: Sequence[int] = (1, 3, 10)
                 ) -> Dict[str, float]:
    r"""Mean rank, MRR and Hits@\ :math:`k` from ranks (1 = best)."""
    rank = torch.cat([r.view(-1) for r in ranks]).double()
    out = {
        'MR': float(rank.mean()) if rank.numel() else 0.0,
        'MRR': float((1.0 / rank).mean()) if rank.numel() else 0.0,
    }
    for k in ks:
        out[f'Hits@{k}'] = float((rank <= k).double().mean()) \
            if rank.numel() else 0.0
    return out


# Knowledge-graph completion #################################################

class KnownTails:
    r"""All true triples, sorted once by (head, relation), to look up the
    known tails of many :obj:`(head, relation, ?)` queries for filtered
    ranking.

    Args:
        known (torch.Tensor): The true triples as :obj:`[3, T]` (head,
            relation, tail).
        num_relations (int): The number of relations.
    """
    def __init__(self, known: Tensor, num_relations: int) -> None:
        self.num_relations = num_relations
        key = known[0] * num_relations + known[1]
        perm = key.argsort()
        self.key, self.tails = key[perm], known[2][perm]

    def filter_index(self, head: Tensor, rel: Tensor) -> Tensor:
        r"""The :obj:`[2, M]` (row, entity) pairs of all known tails of every
        query :obj:`(head[row], rel[row], ?)`."""
        query = head * self.num_relations + rel
        start = torch.searchsorted(self.key, query)
        count = torch.searchsorted(self.key, query, right=True) - start
        row = torch.arange(query.numel(), device=query.device)
        row = row.repeat_interleave(count)
        offset = torch.arange(int(count.sum()), device=query.device)
        offset = offset - (torch.cumsum(count, 0) -
                           count).repeat_interleave(count)
        return torch.stack(
            [row, self.tails[start.repeat_interleave(count) + offset]])


def kg_completion(scores_fn: Callable, head: Tensor, rel: Tensor,
                  tail: Tensor, known: KnownTails, batch_size: int = 256,
                  max_triples: Optional[int] = None) -> Dict[str, float]:
    r"""Filtered tail prediction: rank the true tail of every triple among
    all entities, with the other known true tails removed; returns
    :obj:`'KG_MR'`, :obj:`'KG_MRR'` and :obj:`'KG_Hits@10'`.

    Args:
        scores_fn (callable): :obj:`scores_fn(head, rel) -> [B, N]`.
        head, rel, tail (torch.Tensor): The evaluated triples.
        known (KnownTails): All true triples, used for filtering.
        batch_size (int, optional): Triples ranked at once.
        max_triples (int, optional): Evaluate only the first ones.
    """
    if max_triples is not None:
        head, rel, tail = (head[:max_triples], rel[:max_triples],
                           tail[:max_triples])
    if head.numel() == 0:
        return {}
    ranks = []
    with torch.no_grad():
        for i in range(0, head.numel(), batch_size):
            h, r, t = (head[i:i + batch_size], rel[i:i + batch_size],
                       tail[i:i + batch_size])
            scores = scores_fn(h, r)
            filt = known.filter_index(h, r)
            ranks.append(filtered_rank(scores, t, filt).cpu())
    out = rank_metrics(ranks, ks=(10, ))
    return {'KG_MR': out['MR'], 'KG_MRR': out['MRR'],
            'KG_Hits@10': out['Hits@10']}


__all__ = [
    'METRICS',
    'RankingMetrics',
    'as_label_index',
    'top_k',
    'filtered_rank',
    'rank_metrics',
    'KnownTails',
    'kg_completion',
]
