import collections

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_recs.data.split import (
    check_ratios,
    negative_index,
    per_user_random_split,
    random_split_mask,
    sample_negatives,
)


def test_check_ratios():
    assert check_ratios([0.8, 0.1, 0.1]) == (0.8, 0.1, 0.1)
    assert check_ratios((1, 0, 0)) == (1.0, 0.0, 0.0)
    for bad in [(0.7, 0.1), (0.7, 0.2, 0.2), (0.0, 0.5, 0.5),
                (1.1, -0.1, 0.0)]:
        with pytest.raises(ValueError, match="Invalid 'kg_ratios'"):
            check_ratios(bad, 'kg_ratios')
    with pytest.raises(TypeError):
        check_ratios(0.7)


def test_per_user_random_split_counts():
    # Users 0..4 with 10, 1, 2, 3 and 20 interactions, interleaved:
    sizes = [10, 1, 2, 3, 20]
    user = torch.cat([torch.full((n, ), u) for u, n in enumerate(sizes)])
    user = user[torch.randperm(user.numel(),
                               generator=torch.Generator().manual_seed(0))]
    train, val, test = per_user_random_split(user, (0.7, 0.1, 0.2), seed=1)
    assert not (train & val).any() and not (train & test).any()
    assert not (val & test).any()
    assert bool((train | val | test).all())
    expected = {  # (train, val, test) as in KTUP's splitRatingData
        0: (7, 1, 2),
        1: (1, 0, 0),  # A single interaction stays in training.
        2: (1, 0, 1),
        3: (2, 0, 1),
        4: (14, 2, 4),
    }
    for u, counts in expected.items():
        mask = user == u
        got = tuple(int((m & mask).sum()) for m in (train, val, test))
        assert got == counts, (u, got)


def test_per_user_random_split_determinism():
    user = torch.randint(0, 50, (2000, ),
                         generator=torch.Generator().manual_seed(0))
    a = per_user_random_split(user, seed=7)
    b = per_user_random_split(user, seed=7)
    c = per_user_random_split(user, seed=8)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    # Same counts per user for any seed, only the chosen ones differ:
    for x, y in zip(a, c):
        assert torch.equal(torch.bincount(user[x], minlength=50),
                           torch.bincount(user[y], minlength=50))
    # Overall shares are close to the ratios:
    n = user.numel()
    shares = [float(m.sum()) / n for m in a]
    assert shares[0] == pytest.approx(0.7, abs=0.03)
    assert shares[1] == pytest.approx(0.1, abs=0.03)
    assert shares[2] == pytest.approx(0.2, abs=0.03)


def test_per_user_random_split_only_train():
    user = torch.tensor([0, 0, 1, 1, 1])
    train, val, test = per_user_random_split(user, (1.0, 0.0, 0.0), seed=0)
    assert bool(train.all()) and not val.any() and not test.any()
    train, val, test = per_user_random_split(torch.empty(0,
                                                         dtype=torch.long))
    assert train.numel() == val.numel() == test.numel() == 0


def test_random_split_mask():
    train, val, test = random_split_mask(1000, (0.7, 0.1, 0.2), seed=3)
    assert [int(m.sum()) for m in (train, val, test)] == [700, 100, 200]
    assert bool((train ^ val ^ test).all())
    again = random_split_mask(1000, (0.7, 0.1, 0.2), seed=3)
    assert torch.equal(test, again[2])
    assert not torch.equal(test, random_split_mask(1000, seed=4)[2])
    train, val, test = random_split_mask(5, (1.0, 0.0, 0.0), seed=0)
    assert bool(train.all()) and not (val | test).any()


def test_sample_negatives_excludes_positives_and_is_uniform():
    gen = torch.Generator().manual_seed(0)
    num_users, num_items = 30, 40
    user = torch.randint(0, num_users, (500, ), generator=gen)
    item = torch.randint(0, num_items, (500, ), generator=gen)
    positives = set(zip(user.tolist(), item.tolist()))

    query = torch.arange(num_users).repeat(400)
    neg = sample_negatives(query, num_items, torch.stack([user, item]),
                           generator=gen)
    assert neg.shape == query.shape
    assert int(neg.min()) >= 0 and int(neg.max()) < num_items
    assert not any((u, i) in positives
                   for u, i in zip(query.tolist(), neg.tolist()))
    # Every allowed item is drawn, with roughly equal frequency:
    for u in range(3):
        allowed = set(range(num_items)) - {i for v, i in positives if v == u}
        count = collections.Counter(neg[query == u].tolist())
        assert set(count) == allowed
        expected = 400 / len(allowed)
        assert max(count.values()) < 3 * expected

    # The prebuilt index gives the same draws as the pairs:
    index = negative_index(user, item, num_items)
    a = sample_negatives(query, num_items, index,
                         generator=torch.Generator().manual_seed(5))
    b = sample_negatives(query, num_items, torch.stack([user, item]),
                         generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)

    many = sample_negatives(torch.tensor([0, 1]), num_items, index,
                            num_samples=6)
    assert many.shape == (2, 6)


def test_sample_negatives_errors():
    user = torch.tensor([0, 0, 0, 1])
    item = torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match='User 0 has interacted with all'):
        sample_negatives(torch.tensor([1, 0]), 3, torch.stack([user, item]))
    # User 1 can still be served, user 2 has no positives at all:
    neg = sample_negatives(torch.tensor([1, 2, 2]), 3,
                           torch.stack([user, item]))
    assert int(neg[0]) in (1, 2)
    with pytest.raises(ValueError, match="'item' must hold ids"):
        negative_index(user, item, 2)
    with pytest.raises(ValueError, match="'num_samples'"):
        sample_negatives(user, 3, torch.stack([user, item]), num_samples=0)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)),
                max_size=40), st.integers(0, 2**31))
def test_sample_negatives_property(pairs, seed):
    num_items = 10
    user = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    item = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    positives = set(pairs)
    query = torch.tensor([u for u in range(6)
                          if sum(1 for i in range(num_items)
                                 if (u, i) in positives) < num_items])
    neg = sample_negatives(query.repeat(20), num_items,
                           torch.stack([user, item]),
                           generator=torch.Generator().manual_seed(seed))
    for u, i in zip(query.repeat(20).tolist(), neg.tolist()):
        assert 0 <= i < num_items and (u, i) not in positives
