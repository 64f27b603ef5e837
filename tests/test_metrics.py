import math

import torch

from pyg_recs.metrics import (
    RankingMetrics,
    filtered_rank,
    rank_metrics,
    top_k,
)


def naive(scores, labels, exclude, k):
    # Straightforward per-example loops for every metric.
    out = {name: [] for name in
           ['HR', 'MRR', 'NDCG', 'Precision', 'Recall', 'F1']}
    for row in range(scores.size(0)):
        relevant = set(labels.get(row, []))
        if not relevant:
            continue
        ranked = [i for i in scores[row].argsort(descending=True).tolist()
                  if i not in exclude.get(row, set())][:k]
        hits = [1.0 if i in relevant else 0.0 for i in ranked]
        n_hit = sum(hits)
        out['HR'].append(1.0 if n_hit > 0 else 0.0)
        first = next((r for r, h in enumerate(hits) if h), None)
        out['MRR'].append(0.0 if first is None else 1.0 / (first + 1))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1.0 / math.log2(r + 2)
                   for r in range(min(k, len(relevant))))
        out['NDCG'].append(dcg / idcg)
        p, r = n_hit / k, n_hit / len(relevant)
        out['Precision'].append(p)
        out['Recall'].append(r)
        out['F1'].append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {name: sum(v) / len(v) for name, v in out.items()}


def test_ranking_metrics_match_naive_loops():
    torch.manual_seed(0)
    num_rows, num_items = 30, 25
    scores = torch.randn(num_rows, num_items)
    labels = {
        row: torch.randperm(num_items)[:torch.randint(1, 5, ()).item()]
        .tolist()
        for row in range(num_rows) if row % 7 != 3  # some rows unlabeled
    }
    exclude = {row: set(torch.randperm(num_items)[:3].tolist()) -
               set(labels.get(row, []))
               for row in range(num_rows)}
    label_index = torch.tensor([[r, i] for r, items in labels.items()
                                for i in items]).t()
    exclude_index = torch.tensor([[r, i] for r, items in exclude.items()
                                  for i in items]).t()
    names = ['HR', 'MRR', 'NDCG', 'Precision', 'Recall', 'F1']
    metrics = RankingMetrics(names, ks=[5, 10])
    # Two mini-batches accumulate like one:
    for rows in (torch.arange(0, 13), torch.arange(13, num_rows)):
        mask = torch.isin(label_index[0], rows)
        sub_label = label_index[:, mask].clone()
        sub_label[0] -= rows[0]
        emask = torch.isin(exclude_index[0], rows)
        sub_ex = exclude_index[:, emask].clone()
        sub_ex[0] -= rows[0]
        metrics.update_from_scores(scores[rows], sub_label, sub_ex)
    out = metrics.compute()
    for k in (5, 10):
        expected = naive(scores, labels, exclude, k)
        for name in names:
            assert math.isclose(out[f'{name}@{k}'], expected[name],
                                rel_tol=1e-5, abs_tol=1e-6), (name, k)


def test_single_target_vector_and_hit_alias():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.1, 0.3]])
    metrics = RankingMetrics(['HR', 'Hit', 'MRR'], ks=[1, 2])
    metrics.update_from_scores(scores, torch.tensor([2, 0]))
    out = metrics.compute()
    assert out['HR@1'] == out['Hit@1'] == 0.5
    assert out['HR@2'] == 1.0
    assert out['MRR@2'] == 0.75
    metrics.reset()
    assert metrics.compute()['HR@1'] == 0.0


def test_top_k_excludes():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    assert top_k(scores, 2).tolist() == [[0, 1]]
    assert top_k(scores, 2, torch.tensor([[0], [0]])).tolist() == [[1, 2]]
    assert scores[0, 0] == 3.0  # Not modified in place.


def test_filtered_rank():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    target = torch.tensor([2, 3])
    assert filtered_rank(scores, target).tolist() == [3, 1]
    filt = torch.tensor([[0], [0]])  # Row 0: entity 0 is another true one.
    assert filtered_rank(scores, target, filt).tolist() == [2, 1]
    out = rank_metrics([torch.tensor([3, 1])], ks=[1, 3])
    assert out['MR'] == 2.0 and out['Hits@1'] == 0.5 and out['Hits@3'] == 1.0
