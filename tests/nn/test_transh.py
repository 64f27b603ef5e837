import math

import pytest
import torch
from torch_geometric.nn.kge import KGEModel

from pyg_recs.nn.kge.transh import TransH


def hand_model(p_norm: float) -> TransH:
    # Two entities in 2-d, one relation with normal (0, 2) -> w = (0, 1).
    model = TransH(2, 1, 2, p_norm=p_norm)
    with torch.no_grad():
        model.node_emb.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 1.0]]))
        model.rel_emb.weight.copy_(torch.tensor([[0.5, 0.5]]))
        model.rel_norm_emb.weight.copy_(torch.tensor([[0.0, 2.0]]))
    return model


def test_transh_projection_by_hand():
    model = hand_model(p_norm=1.0)
    # h = (1, 2), t = (3, 1), w = (0, 1): h_perp = (1, 0), t_perp = (3, 0),
    # h_perp + d - t_perp = (1 + 0.5 - 3, 0 + 0.5 - 0) = (-1.5, 0.5).
    h, r, t = torch.tensor([0]), torch.tensor([0]), torch.tensor([1])
    assert torch.allclose(model.normal(r), torch.tensor([[0.0, 1.0]]))
    assert torch.allclose(
        TransH.project(model.node_emb(h), model.normal(r)),
        torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(model(h, r, t), torch.tensor([-2.0]))
    # The reverse direction: t_perp + d - h_perp = (2.5, 0.5).
    assert torch.allclose(model(t, r, h), torch.tensor([-3.0]))

    model = hand_model(p_norm=2.0)
    assert torch.allclose(model(h, r, t), torch.tensor([-math.sqrt(2.5)]))


def test_transh_constraints_by_hand():
    model = hand_model(p_norm=1.0)
    # (w^T d)^2 / ||d||^2 = 0.5^2 / 0.5 = 0.5
    assert torch.allclose(model.orthogonal_loss(), torch.tensor(0.5))
    # Entities: ||(1, 2)||^2 - 1 = 4, ||(3, 1)||^2 - 1 = 9, mean 6.5;
    # relation: ||(0.5, 0.5)||^2 = 0.5 < 1, no penalty.
    assert torch.allclose(model.norm_loss(), torch.tensor(6.5))
    assert torch.allclose(model.norm_loss(torch.tensor([0])),
                          torch.tensor(4.0))


def test_transh_init_and_repr():
    model = TransH(10, 3, 16, margin=2.0, p_norm=2.0)
    assert str(model) == ('TransH(10, num_relations=3, hidden_channels=16, '
                          'p_norm=2.0)')
    assert model.margin == 2.0
    for emb in (model.node_emb, model.rel_emb, model.rel_norm_emb):
        assert torch.allclose(emb.weight.norm(dim=-1), torch.ones(
            emb.num_embeddings))
    before = model.node_emb.weight.detach().clone()
    model.reset_parameters()
    assert not torch.allclose(before, model.node_emb.weight)
    assert {name for name, _ in model.named_parameters()} == {
        'node_emb.weight', 'rel_emb.weight', 'rel_norm_emb.weight'
    }

    with pytest.raises(ValueError, match="'num_nodes'"):
        TransH(0, 3, 16)
    with pytest.raises(ValueError, match="'num_relations'"):
        TransH(10, 0, 16)


@pytest.mark.parametrize('p_norm', [1.0, 2.0])
def test_transh_score_all_matches_forward(p_norm):
    torch.manual_seed(12345)
    model = TransH(13, 4, 8, p_norm=p_norm)
    head = torch.tensor([0, 5, 12, 3])
    rel = torch.tensor([1, 0, 3, 3])
    tail = torch.tensor([7, 7, 2, 12])
    ent = torch.arange(13)

    tails = model.score_all_tails(head, rel)
    heads = model.score_all_heads(rel, tail)
    assert tails.size() == heads.size() == (4, 13)
    for b in range(4):
        expected = model(head[b].expand(13), rel[b].expand(13), ent)
        assert torch.allclose(tails[b], expected, atol=1e-6)
        expected = model(ent, rel[b].expand(13), tail[b].expand(13))
        assert torch.allclose(heads[b], expected, atol=1e-6)

    # Chunking does not change the result:
    assert torch.allclose(model.score_all_tails(head, rel, chunk_size=3),
                          tails)
    assert torch.allclose(model.score_all_heads(rel, tail, chunk_size=1),
                          heads)
    with pytest.raises(ValueError, match="'chunk_size'"):
        model.score_all_tails(head, rel, chunk_size=0)


def test_transh_batched_test_matches_kge_model_test():
    torch.manual_seed(0)
    model = TransH(30, 3, 8)
    head = torch.randint(30, (25, ))
    rel = torch.randint(3, (25, ))
    tail = torch.randint(30, (25, ))
    ours = model.test(head, rel, tail, batch_size=7, k=5, log=False)
    pyg = KGEModel.test(model, head, rel, tail, batch_size=7, k=5, log=False)
    assert ours == pytest.approx(pyg)


def test_transh_learns_toy_kg():
    torch.manual_seed(42)
    num_nodes = 12
    # Relation 0: i -> i + 1 (a chain), relation 1: i -> 11 - i (mirror).
    head = torch.cat([torch.arange(11), torch.arange(12)])
    tail = torch.cat([torch.arange(1, 12), 11 - torch.arange(12)])
    rel = torch.cat([torch.zeros(11), torch.ones(12)]).long()

    model = TransH(num_nodes, 2, 16, margin=1.0, p_norm=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)

    def true_rank() -> float:
        with torch.no_grad():
            scores = model.score_all_tails(head, rel)
            true = scores.gather(1, tail.view(-1, 1))
            return float((scores > true).sum(dim=-1).float().mean())

    rank_before = true_rank()
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = model.loss(head, rel, tail)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    rank_after = true_rank()
    assert rank_after < rank_before
    assert rank_after < 2.0
    with torch.no_grad():
        pos = model(head, rel, tail)
        neg = model(head, rel, torch.randint(num_nodes, tail.size()))
    assert float(pos.mean()) > float(neg.mean())


def test_transh_meets_the_recommender_interface():
    from pyg_recs.nn.models import Recommender
    torch.manual_seed(0)
    model = TransH(num_nodes=12, num_relations=3, hidden_channels=8)
    assert isinstance(model, Recommender) and isinstance(model, KGEModel)
    batch = {'head_index': torch.tensor([0, 5]),
             'rel_type': torch.tensor([1, 2]),
             'tail_index': torch.tensor([3, 4])}
    scores = model.batch_scores(batch)
    assert torch.allclose(
        scores, model.score_all_tails(batch['head_index'],
                                      batch['rel_type']))
    top = model.recommend(batch, k=4)
    assert torch.equal(top, scores.topk(4).indices)
    exclude = torch.tensor([[0], [int(top[0, 0])]])
    assert int(top[0, 0]) not in model.recommend(batch, 4, exclude)[0]
    loss = model.batch_loss(batch)
    assert loss.dim() == 0
    with pytest.raises(ValueError, match='empty batch'):
        model.loss(*[torch.tensor([], dtype=torch.long)] * 3)
    with pytest.raises(ValueError, match='rel_type'):
        model.batch_scores({'head_index': torch.tensor([0])})


def test_ktup_kg_loss_is_transh_loss_plus_constraints():
    from pyg_recs.nn.models import KTUP
    torch.manual_seed(0)
    model = KTUP(num_users=4, num_items=5, num_entities=9, num_relations=2,
                 hidden_channels=8, item_entity=torch.arange(5),
                 orthogonal_weight=0.0, norm_weight=0.0, kg_weight=1.0)
    triples = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0]),
               torch.tensor([3, 4, 5]))
    torch.manual_seed(1)
    ktup = model.kg_loss(*triples)
    torch.manual_seed(1)
    transh = model.kg.loss(*triples, margin=model.margin)
    assert torch.allclose(ktup, transh)
