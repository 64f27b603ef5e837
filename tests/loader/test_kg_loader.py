import pytest
import torch
from torch_geometric.data import Data

from pyg_recs.loader.kg_loader import (
    InteractionLoader,
    JointLoader,
    RankingEvalLoader,
    TripleLoader,
)
from pyg_recs.metrics import top_k


def random_pairs(num_users, num_items, num, seed=0):
    gen = torch.Generator().manual_seed(seed)
    user = torch.randint(0, num_users, (num, ), generator=gen)
    item = torch.randint(0, num_items, (num, ), generator=gen)
    return user, item


def test_interaction_loader():
    user, item = random_pairs(20, 15, 103)
    loader = InteractionLoader(user, item, num_items=15, batch_size=10,
                               generator=torch.Generator().manual_seed(1))
    assert len(loader) == 11
    assert str(loader) == ('InteractionLoader(103, num_items=15, '
                           'batch_size=10)')
    positives = set(zip(user.tolist(), item.tolist()))
    seen = []
    for batch in loader:
        assert isinstance(batch, Data)
        assert set(batch.keys()) == {
            'user_index', 'pos_item_index', 'neg_item_index'
        }
        b = batch.user_index.numel()
        assert batch.pos_item_index.shape == batch.neg_item_index.shape == (
            b, )
        for u, p, n in zip(batch.user_index.tolist(),
                           batch.pos_item_index.tolist(),
                           batch.neg_item_index.tolist()):
            assert (u, p) in positives and (u, n) not in positives
            seen.append((u, p))
    assert sorted(seen) == sorted(zip(user.tolist(), item.tolist()))

    # The same generator seed gives the same epoch:
    a = [b.neg_item_index for b in InteractionLoader(
        user, item, 15, 10, generator=torch.Generator().manual_seed(3))]
    b = [b.neg_item_index for b in InteractionLoader(
        user, item, 15, 10, generator=torch.Generator().manual_seed(3))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))

    # Unshuffled, with extra positives to avoid:
    extra = torch.stack([user, (item + 1) % 15])
    loader = InteractionLoader(user, item, 15, batch_size=50, shuffle=False,
                               positive_index=extra, drop_last=True)
    assert len(loader) == 2
    batch = next(iter(loader))
    assert torch.equal(batch.user_index, user[:50])
    avoid = set(zip(extra[0].tolist(), extra[1].tolist()))
    assert not any((u, n) in avoid for u, n in zip(
        batch.user_index.tolist(), batch.neg_item_index.tolist()))

    with pytest.raises(ValueError, match="Invalid 'batch_size'"):
        InteractionLoader(user, item, 15, batch_size=0)


def test_triple_loader():
    head = torch.arange(25)
    rel = head % 4
    tail = (head * 7) % 25
    loader = TripleLoader(head, rel, tail, batch_size=8)
    assert len(loader) == 4
    batches = list(loader)
    assert [b.head_index.numel() for b in batches] == [8, 8, 8, 1]
    for b in batches:
        assert set(b.keys()) == {'head_index', 'rel_type', 'tail_index'}
        assert torch.equal(b.rel_type, b.head_index % 4)
        assert torch.equal(b.tail_index, (b.head_index * 7) % 25)
    assert sorted(torch.cat([b.head_index for b in batches]).tolist()) == \
        list(range(25))
    with pytest.raises(ValueError, match='same size'):
        TripleLoader(head, rel[:3], tail)


def test_joint_loader_interleaving():
    user, item = random_pairs(10, 10, 10)
    rec = InteractionLoader(user, item, 10, batch_size=1, shuffle=False)
    kg = TripleLoader(torch.arange(4), torch.zeros(4, dtype=torch.long),
                      torch.arange(4), batch_size=1, shuffle=False)
    loader = JointLoader(rec, kg, rec_steps=7, kg_steps=3)
    out = list(loader)
    assert len(loader) == len(out) == 10 + 2 * 3
    tasks = ''.join('r' if 'user_index' in b else 'k' for b in out)
    assert tasks == 'r' * 7 + 'k' * 3 + 'r' * 3 + 'k' * 3
    # The KG loader restarts when it runs out (4 batches, 6 asked for):
    heads = [int(b.head_index) for b in out if 'head_index' in b]
    assert heads == [0, 1, 2, 3, 0, 1]
    recs = [b for b in out if 'user_index' in b]
    assert torch.equal(torch.cat([b.user_index for b in recs]), user)

    # No KG steps: the recommendation loader alone.
    assert all('user_index' in b for b in JointLoader(rec, kg, 4, 0))
    assert len(list(JointLoader(rec, kg, 4, 0))) == 10
    with pytest.raises(ValueError, match="Invalid 'rec_steps'"):
        JointLoader(rec, kg, rec_steps=0)
    empty = TripleLoader(torch.empty(0), torch.empty(0), torch.empty(0))
    with pytest.raises(ValueError, match='yields no batch'):
        list(JointLoader(rec, empty))


@pytest.mark.parametrize('shared_generator', [False, True])
def test_joint_loader_state_continues_the_kg_stream(shared_generator):
    # The KG stream runs across epochs; a checkpoint taken between epochs
    # must let a fresh loader continue it exactly.
    def make():
        gen = torch.Generator().manual_seed(1) if shared_generator else None
        user, item = random_pairs(10, 10, 10)
        rec = InteractionLoader(user, item, 10, batch_size=2, shuffle=True,
                                generator=gen)
        kg = TripleLoader(torch.arange(7), torch.zeros(7, dtype=torch.long),
                          torch.arange(7), batch_size=2, shuffle=True,
                          generator=gen)
        return JointLoader(rec, kg, rec_steps=2, kg_steps=1), gen

    def rng_state(gen):
        return gen.get_state() if gen is not None else torch.get_rng_state()

    def set_rng_state(gen, state):
        gen.set_state(state) if gen is not None else torch.set_rng_state(
            state)

    def heads(epoch):
        return [b.head_index.tolist() for b in epoch if 'head_index' in b]

    torch.manual_seed(0)
    loader, gen = make()
    assert loader.state_dict()['kg_pass_rng'] is None
    list(loader)
    state, rng = loader.state_dict(), rng_state(gen)
    assert state['kg_taken'] == 3  # 3 of the 4 batches of the first pass.
    expected = [heads(list(loader)) for _ in range(2)]

    fresh, gen2 = make()
    set_rng_state(gen2, rng)
    fresh.load_state_dict(state)
    assert torch.equal(rng_state(gen2), rng)  # Left as it was.
    assert [heads(list(fresh)) for _ in range(2)] == expected
    # The last batch of the first pass, then a reshuffled second pass:
    assert len(expected[0][0]) == 1

    fresh.load_state_dict({'kg_pass_rng': None, 'kg_taken': 0})
    assert fresh.state_dict() == {'kg_pass_rng': None, 'kg_taken': 0}


def test_ranking_eval_loader():
    num_users, num_items = 30, 12
    label_user, label_item = random_pairs(num_users, num_items, 40, seed=1)
    excl_user, excl_item = random_pairs(num_users, num_items, 200, seed=2)
    loader = RankingEvalLoader(label_user, label_item, excl_user, excl_item,
                               num_users=num_users, batch_size=7)
    labelled = sorted(set(label_user.tolist()))
    assert len(loader) == -(-len(labelled) // 7)

    users = []
    for batch in loader:
        assert set(batch.keys()) == {
            'user_index', 'edge_label_index', 'exclude_index'
        }
        users += batch.user_index.tolist()
        cases = [(batch.edge_label_index, (label_user, label_item)),
                 (batch.exclude_index, (excl_user, excl_item))]
        for index, pairs in cases:
            assert index.size(0) == 2
            got = set(
                zip(batch.user_index[index[0]].tolist(), index[1].tolist()))
            want = {(u, i)
                    for u, i in zip(pairs[0].tolist(), pairs[1].tolist())
                    if u in batch.user_index.tolist()}
            assert got == want
            assert index.size(1) == len(want)  # Repeated pairs kept once.
        # The layout is the one of the metrics' 'exclude_index':
        scores = torch.randn(batch.user_index.numel(), num_items)
        top = top_k(scores, 1, batch.exclude_index).view(-1)
        excluded = set(zip(batch.exclude_index[0].tolist(),
                           batch.exclude_index[1].tolist()))
        for row, i in enumerate(top.tolist()):
            if len({j for r, j in excluded if r == row}) < num_items:
                assert (row, i) not in excluded
    assert users == labelled  # Every labelled user exactly once, in order.

    # Without exclusions:
    loader = RankingEvalLoader(label_user, label_item, batch_size=100)
    batch = next(iter(loader))
    assert batch.exclude_index.shape == (2, 0)
    assert batch.edge_label_index.size(1) == len(
        set(zip(label_user.tolist(), label_item.tolist())))
    with pytest.raises(ValueError, match='given together'):
        RankingEvalLoader(label_user, label_item, exclude_user=excl_user)
