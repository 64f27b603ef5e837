r"""Bad and borderline model inputs: ids outside the vocabulary, empty
batches, sessions of length one and users without training items give a
defined result or a clear error, never an index error from deep inside
PyTorch (a device-side assertion on a GPU) or a silent wrong answer."""
import re

import pytest
import torch
from torch_geometric.data import Batch

from pyg_recs.data import session_to_graph, sessions_to_graphs
from pyg_recs.nn.kge import TransH
from pyg_recs.nn.models import KTUP, SRGNN

NUM_ITEMS = 10


def srgnn():
    torch.manual_seed(0)
    return SRGNN(NUM_ITEMS, hidden_channels=8).eval()


def batch_of(*sessions):
    return Batch.from_data_list([session_to_graph(s) for s in sessions])


# SR-GNN ######################################################################

@pytest.mark.parametrize('session, low, high', [
    ([3, NUM_ITEMS], 3, NUM_ITEMS),
    ([-1, 2], -1, 2),
    ([2**40], 2**40, 2**40),
])
def test_srgnn_item_outside_vocabulary(session, low, high):
    model = srgnn()
    data = Batch.from_data_list([session_to_graph([1, 2]),
                                 session_to_graph(session)
                                 if low >= 0 else _raw_graph(session)])
    with pytest.raises(ValueError) as info:
        model.batch_scores(data)
    assert str(info.value) == (f'Item ids must be in [0, {NUM_ITEMS - 1}] '
                               f'(got ids from {min(1, low)} to '
                               f'{max(2, high)})')


def _raw_graph(session):
    # session_to_graph refuses negative ids itself; build the graph of the
    # shifted session and shift the ids back.
    data = session_to_graph([v - min(session) for v in session])
    data.x = data.x + min(session)
    return data


def test_session_to_graph_refuses_negative_ids():
    with pytest.raises(ValueError, match='Invalid item id -1 at click 1'):
        session_to_graph([3, -1])


def test_srgnn_empty_batch():
    # A Batch cannot be empty; the tensors of zero sessions can.
    model = srgnn()
    data, _ = sessions_to_graphs([])
    scores = model(data.x, data.edge_index, data.click_index,
                   data.last_index, None, data.edge_weight_in,
                   data.edge_weight_out)
    assert scores.size() == (0, NUM_ITEMS)
    assert model.batch_scores(_Empty(data)).size() == (0, NUM_ITEMS)
    assert model.recommend(_Empty(data), k=5).size() == (0, 5)


class _Empty:
    r"""An empty mini-batch with the attributes of a collated batch."""
    def __init__(self, data):
        self.x, self.edge_index = data.x, data.edge_index
        self.click_index, self.last_index = data.click_index, data.last_index
        self.batch = data.x.new_zeros(0)
        self.edge_weight_in = data.edge_weight_in
        self.edge_weight_out = data.edge_weight_out


def test_srgnn_sessions_of_length_one():
    model = srgnn()
    sessions = [[4], [5, 5], [1, 2, 3, 2], [7]]
    scores = model.batch_scores(batch_of(*sessions))
    assert scores.size() == (4, NUM_ITEMS)
    assert torch.isfinite(scores).all()
    # Batching does not change any session's scores:
    for i, session in enumerate(sessions):
        alone = model.batch_scores(batch_of(session))
        assert torch.allclose(alone[0], scores[i], atol=1e-6)
    # A one-click session and a repeated click are different inputs:
    assert not torch.allclose(scores[0], model.batch_scores(
        batch_of([4, 4]))[0])
    top = model.recommend(batch_of([4]), k=20)
    assert top.size() == (1, NUM_ITEMS)  # k is capped at the vocabulary.
    assert sorted(top[0].tolist()) == list(range(NUM_ITEMS))


# KTUP and TransH #############################################################

NUM_USERS, NUM_ENTITIES, NUM_RELATIONS = 4, 12, 3


def ktup(use_kg=True):
    torch.manual_seed(0)
    item_entity = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, -1, 11])
    return KTUP(NUM_USERS, NUM_ITEMS, NUM_ENTITIES, NUM_RELATIONS,
                hidden_channels=8, item_entity=item_entity if use_kg else None,
                use_kg=use_kg).eval()


def t(*values):
    return torch.tensor(values, dtype=torch.long)


USER_RANGE = f"'user_index' must hold ids in [0, {NUM_USERS - 1}]"
ITEM_RANGE = f"'item_index' must hold ids in [0, {NUM_ITEMS - 1}]"


@pytest.mark.parametrize('use_kg', [True, False])
def test_ktup_ids_outside_vocabulary(use_kg):
    model = ktup(use_kg)
    ok_user, ok_item = t(0, 3), t(0, 9)

    cases = [
        (lambda: model(t(0, NUM_USERS), ok_item),
         USER_RANGE + f' (got values from 0 to {NUM_USERS})'),
        (lambda: model(ok_user, t(-1, 2)),
         ITEM_RANGE + ' (got values from -1 to 2)'),
        (lambda: model(ok_user, t(NUM_ITEMS, 2)),
         ITEM_RANGE + f' (got values from 2 to {NUM_ITEMS})'),
        (lambda: model.full_scores(t(7)), USER_RANGE),
        (lambda: model.batch_scores({'user_index': t(-3)}), USER_RANGE),
        (lambda: model.recommend(t(1, 99), k=3), USER_RANGE),
        (lambda: model.explain(ok_user, t(0, 10)), ITEM_RANGE),
        (lambda: model.preference_attention(t(4, 0), ok_item), USER_RANGE),
        (lambda: model.rec_loss(ok_user, ok_item, t(1, 10)),
         f"'neg_item_index' must hold ids in [0, {NUM_ITEMS - 1}]"),
        (lambda: model.batch_loss({
            'user_index': t(5, 0),
            'pos_item_index': ok_item,
            'neg_item_index': ok_item
        }), USER_RANGE),
        (lambda: model.recommend(ok_user, 3, exclude=torch.tensor(
            [[0, 2], [1, 6]])), "'exclude[0]' must hold ids in [0, 1]"),
        (lambda: model.recommend(ok_user, 3, exclude=torch.tensor(
            [[0, 1], [3, 10]])), "'exclude[1]' must hold ids in [0, 9]"),
        (lambda: model.recommend(ok_user, 3, exclude=t(0, 1)),
         "'exclude' must have shape [2, M] (got [2])"),
    ]
    for fn, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            fn()


def test_ktup_non_integer_ids():
    model = ktup()
    with pytest.raises(TypeError, match="'user_index' must be an integer "
                       r'tensor of ids \(got torch.float32\)'):
        model(torch.tensor([0.0]), t(1))
    with pytest.raises(TypeError, match="'item_index' .* torch.bool"):
        model(t(0), torch.tensor([True]))


def test_ktup_kg_ids_outside_vocabulary():
    model = ktup()
    h, r = t(0, 1), t(0, 2)
    with pytest.raises(ValueError, match=r"'head_index' must hold ids in "
                       r'\[0, 11\] \(got values from 0 to 12\)'):
        model.kg_loss(t(0, NUM_ENTITIES), r, h)
    with pytest.raises(ValueError, match=r"'rel_type' must hold ids in "
                       r'\[0, 2\] \(got values from 0 to 3\)'):
        model.batch_loss({'head_index': h, 'rel_type': t(0, 3),
                          'tail_index': h})
    with pytest.raises(ValueError, match="'tail_index'"):
        model.kg(h, r, t(-1, 0))
    with pytest.raises(ValueError, match="'rel_type'"):
        model.kg_scores_all_tails(h, t(5, 0))
    with pytest.raises(ValueError, match="'tail_index'"):
        model.kg_scores_all_heads(r, t(0, 40))
    with pytest.raises(ValueError, match="'tail_index'"):
        model.kg.test(h, r, t(0, 12), batch_size=2, log=False)


def test_transh_ids_outside_vocabulary():
    torch.manual_seed(0)
    model = TransH(5, 2, 4)
    with pytest.raises(ValueError, match=r"'head_index' must hold ids in "
                       r'\[0, 4\] \(got values from 5 to 5\)'):
        model(t(5), t(0), t(1))
    with pytest.raises(ValueError, match="'rel_type'"):
        model.loss(t(0), t(2), t(1))
    # In range, the checks change nothing:
    assert model(t(0, 4), t(1, 0), t(1, 2)).size() == (2, )
    scores = model.score_all_tails(t(0, 4), t(1, 0))
    assert torch.allclose(scores[:, 2], model(t(0, 4), t(1, 0), t(2, 2)))


def test_ktup_empty_batch():
    model = ktup()
    empty = t()
    assert model(empty, empty).size() == (0, )
    assert model.full_scores(empty).size() == (0, NUM_ITEMS)
    assert model.batch_scores({'user_index': empty}).size() == (0, NUM_ITEMS)
    assert model.recommend(empty, k=3).size() == (0, 3)
    assert model.explain(empty, empty) == []
    # A loss over nothing is undefined (it would be NaN): a clear error.
    with pytest.raises(ValueError, match='empty batch'):
        model.rec_loss(empty, empty, empty)
    with pytest.raises(ValueError, match='empty batch'):
        model.kg_loss(empty, empty, empty)


def test_ktup_user_without_training_items():
    model = ktup()
    users = t(0, 2)
    plain = model.recommend(users, k=4)
    # Neither user has training items: an empty exclusion changes nothing.
    none = torch.empty(2, 0, dtype=torch.long)
    assert torch.equal(model.recommend(users, 4, exclude=none), plain)
    # User 0 has training items, user 2 has none:
    seen = plain[0, :2]
    exclude = torch.stack([torch.zeros_like(seen), seen])
    top = model.recommend(users, 4, exclude=exclude)
    assert torch.equal(top[1], plain[1])
    assert not set(seen.tolist()) & set(top[0].tolist())
    scores = model.full_scores(users)[0]
    scores[seen] = float('-inf')
    assert torch.equal(top[0], scores.topk(4).indices)


def test_ktup_checks_do_not_change_training():
    # The loss is the plain computation on the same ids.
    import torch.nn.functional as F

    from pyg_recs.nn.kge.transh import orthogonal_penalty
    model = ktup()
    user, pos, neg = t(0, 1, 3), t(2, 8, 9), t(5, 0, 1)
    model.train()
    loss = model.rec_loss(user, pos, neg)
    normal = F.normalize(model.pref_norm_emb.weight, p=2, dim=-1)
    expected = -F.logsigmoid(model(user, pos) - model(user, neg)).mean() + \
        orthogonal_penalty(model.pref_emb.weight, normal).sum()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert model.user_emb.weight.grad[2].abs().sum() == 0  # Unused user.
    assert model.user_emb.weight.grad[0].abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_out_of_range_ids_on_cuda_raise_no_device_assert():
    # An index error inside a CUDA kernel is a device-side assertion that
    # poisons the whole process; the checks must raise before any kernel.
    device = torch.device('cuda')
    model = ktup().to(device)
    user, item = t(0, 3).to(device), t(0, NUM_ITEMS).to(device)
    with pytest.raises(ValueError, match="'item_index'"):
        model(user, item)
    with pytest.raises(ValueError, match="'user_index'"):
        model.recommend(t(NUM_USERS).to(device), k=2)
    with pytest.raises(ValueError, match="'head_index'"):
        model.kg_loss(t(NUM_ENTITIES).to(device), t(0).to(device),
                      t(0).to(device))
    sr = srgnn().to(device)
    with pytest.raises(ValueError, match='Item ids must be in'):
        sr.batch_scores(batch_of([1, NUM_ITEMS]).to(device))
    # The process (and the device) is still usable:
    assert model(user, t(0, 1).to(device)).size() == (2, )
    torch.cuda.synchronize()
