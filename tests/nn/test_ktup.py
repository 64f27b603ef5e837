import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from pyg_recs.nn.models.ktup import KTUP

NUM_USERS, NUM_ITEMS, NUM_ENTITIES, NUM_RELATIONS = 6, 9, 12, 4
# Items 0-7 are aligned with entities, item 8 is not:
ITEM_ENTITY = torch.tensor([3, 0, 1, 2, 11, 5, 6, 7, -1])


def make_model(use_kg: bool = True, use_st_gumbel: bool = False,
               p_norm: float = 1.0, seed: int = 0, **kwargs) -> KTUP:
    torch.manual_seed(seed)
    return KTUP(NUM_USERS, NUM_ITEMS, NUM_ENTITIES, NUM_RELATIONS,
                hidden_channels=8, item_entity=ITEM_ENTITY if use_kg else None,
                use_st_gumbel=use_st_gumbel, use_kg=use_kg, p_norm=p_norm,
                **kwargs)


def pairs():
    user = torch.tensor([0, 1, 2, 3, 4, 5, 0, 5])
    item = torch.tensor([0, 1, 2, 3, 4, 8, 8, 6])
    return user, item


def test_ktup_repr_and_parameters():
    model = make_model()
    assert str(model) == ('KTUP(6, 9, num_entities=12, num_relations=4, '
                          'hidden_channels=8, use_st_gumbel=False, '
                          'use_kg=True)')
    assert str(model.kg) == ('TransH(12, num_relations=4, hidden_channels=8, '
                             'p_norm=1.0)')
    assert {name for name, _ in model.named_parameters()} == {
        'user_emb.weight', 'item_emb.weight', 'pref_emb.weight',
        'pref_norm_emb.weight', 'kg.node_emb.weight', 'kg.rel_emb.weight',
        'kg.rel_norm_emb.weight'
    }
    assert torch.equal(model.item_entity, ITEM_ENTITY)
    assert 'item_entity' in model.state_dict()

    tup = make_model(use_kg=False)
    assert str(tup) == ('KTUP(6, 9, num_entities=0, num_relations=4, '
                        'hidden_channels=8, use_st_gumbel=False, '
                        'use_kg=False)')
    assert tup.kg is None
    assert {name for name, _ in tup.named_parameters()} == {
        'user_emb.weight', 'item_emb.weight', 'pref_emb.weight',
        'pref_norm_emb.weight'
    }


def test_ktup_item_embeddings_are_normalised():
    # RecBole assigns the normalised item embeddings to a misspelled
    # attribute (`weight_data`) and keeps the raw Xavier rows; we, as the
    # reference, use unit rows.
    model = make_model()
    for weight in (model.user_emb.weight, model.item_emb.weight,
                   model.pref_emb.weight, model.pref_norm_emb.weight,
                   model.kg.node_emb.weight, model.kg.rel_emb.weight):
        assert torch.allclose(weight.norm(dim=-1),
                              torch.ones(weight.size(0)), atol=1e-6)

    with torch.no_grad():
        model.item_emb.weight.mul_(3.0)
    before = model.item_emb.weight.detach().clone()
    model.reset_parameters()
    assert not torch.allclose(before, model.item_emb.weight)
    assert torch.allclose(model.item_emb.weight.norm(dim=-1),
                          torch.ones(NUM_ITEMS), atol=1e-6)


def test_ktup_item_representation():
    model = make_model()
    item = torch.arange(NUM_ITEMS)
    rep = model.item_representation(item)
    expected = model.item_emb.weight[:8] + model.kg.node_emb.weight[
        ITEM_ENTITY[:8]]
    assert torch.allclose(rep[:8], expected)
    # The unaligned item is not enhanced:
    assert torch.allclose(rep[8], model.item_emb.weight[8])
    assert torch.allclose(model.item_representation(), rep)

    # Without `item_entity`, item i is entity i:
    torch.manual_seed(0)
    model = KTUP(3, 4, 5, 2, hidden_channels=8)
    assert model.item_entity.tolist() == [0, 1, 2, 3]
    assert torch.allclose(model.item_representation(),
                          model.item_emb.weight + model.kg.node_emb.weight[:4])


def test_ktup_invalid_arguments():
    with pytest.raises(ValueError, match="'item_entity' is required"):
        KTUP(3, 6, 5, 2)
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        KTUP(3, 4, 5, 2, item_entity=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='got values from -2 to 3'):
        KTUP(3, 4, 5, 2, item_entity=torch.tensor([0, 1, -2, 3]))
    with pytest.raises(ValueError, match='got values from 0 to 5'):
        KTUP(3, 4, 5, 2, item_entity=torch.tensor([0, 1, 5, 3]))
    with pytest.raises(ValueError, match="'num_relations'"):
        KTUP(3, 4, 5, 0)
    with pytest.raises(ValueError, match="'temperature'"):
        KTUP(3, 4, 5, 2, temperature=0.0)
    # TUP needs no entities:
    KTUP(3, 4, 0, 2, use_kg=False)


@pytest.mark.parametrize('use_kg', [True, False])
def test_ktup_soft_attention_is_a_softmax(use_kg):
    # The reference and RecBole weight the preferences by the raw logits.
    model = make_model(use_kg=use_kg)
    user, item = pairs()
    logits = model.preference_logits(user, item)
    alpha = model.preference_attention(user, item)
    assert alpha.size() == (8, NUM_RELATIONS)
    assert (alpha >= 0).all()
    assert torch.allclose(alpha.sum(dim=-1), torch.ones(8))
    assert torch.allclose(alpha, torch.softmax(logits, dim=-1))

    # The logits are (u + i_hat) . (p + r) / 2 (TUP: (u + i) . p / 2):
    u = model.user_emb(user)
    i = model.item_representation(item)
    key = model.pref_emb.weight
    if use_kg:
        key = key + model.kg.rel_emb.weight
    assert torch.allclose(logits, (u + i) @ key.t() / 2, atol=1e-6)


def test_ktup_hard_attention_straight_through():
    model = make_model(use_st_gumbel=True)
    model.train()
    user, item = torch.tensor([2]), torch.tensor([5])
    alpha = model.preference_attention(user, item)
    assert sorted(alpha.detach().view(-1).tolist()) == pytest.approx(
        [0.0, 0.0, 0.0, 1.0])
    chosen = int(alpha.argmax())

    model.zero_grad()
    model(user, item).sum().backward()
    grad = model.pref_emb.weight.grad
    assert grad is not None
    assert grad[chosen].abs().sum() > 0
    # Preferences not chosen only get gradients through the soft attention
    # logits (straight-through estimator):
    others = [r for r in range(NUM_RELATIONS) if r != chosen]
    assert (grad[others].abs().sum(dim=-1) > 0).all()


def test_ktup_hard_attention_is_random_only_in_training():
    model = make_model(use_st_gumbel=True)
    user = torch.arange(NUM_USERS).repeat_interleave(NUM_ITEMS)
    item = torch.arange(NUM_ITEMS).repeat(NUM_USERS)

    model.train()
    torch.manual_seed(1)
    first = model.preference_attention(user, item).argmax(dim=-1)
    second = model.preference_attention(user, item).argmax(dim=-1)
    assert not torch.equal(first, second)  # Gumbel noise is sampled

    model.eval()
    with torch.no_grad():
        logits = model.preference_logits(user, item)
        first = model.preference_attention(user, item)
        second = model.preference_attention(user, item)
        assert torch.equal(first, second)
        assert torch.equal(
            first, F.one_hot(logits.argmax(dim=-1), NUM_RELATIONS).float())
        assert torch.equal(model(user, item), model(user, item))
        assert torch.equal(model.full_scores(user[:6]),
                           model.full_scores(user[:6]))
    # With gradients enabled the values are still the arg max:
    alpha = model.preference_attention(user, item)
    assert alpha.requires_grad
    assert torch.allclose(alpha, first)


@pytest.mark.parametrize('use_kg', [True, False])
@pytest.mark.parametrize('use_st_gumbel', [False, True])
@pytest.mark.parametrize('p_norm', [1.0, 2.0])
@pytest.mark.parametrize('temperature', [1.0, 0.3])
def test_ktup_full_scores_match_pairwise(use_kg, use_st_gumbel, p_norm,
                                         temperature):
    # (L2 full scores come from inner products, see _score_l2_all.)
    model = make_model(use_kg=use_kg, use_st_gumbel=use_st_gumbel,
                       p_norm=p_norm, temperature=temperature)
    model.eval()
    user_index = torch.tensor([4, 0, 2, 2, 5])
    batch = Data(user_index=user_index)
    with torch.no_grad():
        scores = model.batch_scores(batch)
        assert scores.size() == (5, NUM_ITEMS)
        user = user_index.repeat_interleave(NUM_ITEMS)
        item = torch.arange(NUM_ITEMS).repeat(5)
        expected = model(user, item).view(5, NUM_ITEMS)
        assert torch.allclose(scores, expected, atol=1e-5)
        for chunk_size in (1, 4, 100):
            assert torch.allclose(model.full_scores(user_index, chunk_size),
                                  expected, atol=1e-5)
    # With gradients (straight-through path for the hard attention):
    assert torch.allclose(model(user, item).view(5, NUM_ITEMS), expected,
                          atol=1e-5)
    with pytest.raises(ValueError, match="'chunk_size'"):
        model.full_scores(user_index, chunk_size=0)
    with pytest.raises(ValueError, match="'user_index'"):
        model.batch_scores(Data(x=user_index))


def test_ktup_score_by_hand():
    # One preference tied to one relation: the attention is trivially one,
    # so the score is TransH's on the induced hyperplane.
    torch.manual_seed(0)
    model = KTUP(1, 1, 1, 1, hidden_channels=2, p_norm=1.0)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.item_emb.weight.copy_(torch.tensor([[2.0, 0.0]]))
        model.kg.node_emb.weight.copy_(torch.tensor([[1.0, 1.0]]))
        model.pref_emb.weight.copy_(torch.tensor([[1.0, 0.0]]))
        model.kg.rel_emb.weight.copy_(torch.tensor([[0.0, 1.0]]))
        model.pref_norm_emb.weight.copy_(torch.tensor([[0.0, 3.0]]))
        model.kg.rel_norm_emb.weight.copy_(torch.tensor([[0.0, 0.5]]))
    # i_hat = (3, 1), p = ((1, 0) + (0, 1)) / 2 = (0.5, 0.5), w = (0, 1):
    # u_perp = (1, 0), i_perp = (3, 0), u_perp + p - i_perp = (-1.5, 0.5).
    score = model(torch.tensor([0]), torch.tensor([0]))
    assert torch.allclose(score, torch.tensor([-2.0]))


def test_ktup_recommend():
    model = make_model()
    model.eval()
    user_index = torch.tensor([1, 3])
    scores = model.full_scores(user_index)
    top = model.recommend(user_index, k=3)
    assert top.size() == (2, 3)
    assert torch.equal(top, scores.topk(3, dim=-1).indices)

    exclude = torch.tensor([[0, 0, 1], [int(top[0, 0]), int(top[0, 1]),
                                        int(top[1, 2])]])
    top_ex = model.recommend(user_index, k=NUM_ITEMS, exclude=exclude)
    assert top_ex.size() == (2, NUM_ITEMS)
    assert int(top[0, 0]) not in top_ex[0, :7].tolist()
    assert int(top[0, 1]) not in top_ex[0, :7].tolist()
    assert int(top[1, 2]) not in top_ex[1, :8].tolist()
    assert top_ex[0, 0] == top[0, 2]
    with pytest.raises(ValueError, match="'k'"):
        model.recommend(user_index, k=0)


def test_ktup_explain():
    model = make_model(use_st_gumbel=True)
    model.eval()
    user, item = pairs()
    names = ['genre', 'director', 'actor', 'writer']
    out = model.explain(user, item, relation_names=names)
    assert len(out) == 8
    logits = model.preference_logits(user, item)
    hard = model.preference_attention(user, item)
    for b, entry in enumerate(out):
        assert entry['user'] == int(user[b])
        assert entry['item'] == int(item[b])
        assert sum(entry['probabilities']) == pytest.approx(1.0)
        top = int(logits[b].argmax())
        assert entry['relation'] == top
        assert entry['relation_name'] == names[top]
        assert int(hard[b].argmax()) == top  # the relation used to score
        assert max(entry['probabilities']) == entry['probabilities'][top]
    assert model.explain(user[:1], item[:1])[0]['relation_name'] is None
    with pytest.raises(ValueError, match="'relation_names'"):
        model.explain(user, item, relation_names=names[:3])


def test_ktup_losses_and_batch_loss():
    model = make_model()
    user, item = pairs()
    neg = torch.tensor([8, 7, 6, 5, 4, 3, 2, 1])
    rec = model.rec_loss(user, item, neg)
    assert rec.dim() == 0 and rec > 0
    batch = Data(user_index=user, pos_item_index=item, neg_item_index=neg)
    assert torch.allclose(model.batch_loss(batch), rec)
    assert torch.allclose(
        model.batch_loss({
            'user_index': user,
            'pos_item_index': item,
            'neg_item_index': neg
        }), rec)

    # The BPR term alone:
    pos_score, neg_score = model(user, item), model(user, neg)
    bpr = -F.logsigmoid(pos_score - neg_score).mean()
    no_constraints = make_model(orthogonal_weight=0.0)
    assert torch.allclose(no_constraints.rec_loss(user, item, neg), bpr)
    assert rec > bpr  # the orthogonality constraint is active

    head = torch.tensor([0, 1, 2, 3])
    rel = torch.tensor([0, 1, 2, 3])
    tail = torch.tensor([4, 5, 6, 7])
    torch.manual_seed(5)
    kg = model.kg_loss(head, rel, tail)
    assert kg.dim() == 0 and kg > 0
    torch.manual_seed(5)
    kg_batch = Data(head_index=head, rel_type=rel, tail_index=tail)
    assert torch.allclose(model.batch_loss(kg_batch), kg)
    half = make_model(kg_weight=0.5)
    torch.manual_seed(5)
    assert torch.allclose(half.kg_loss(head, rel, tail), 0.5 * kg)

    with pytest.raises(ValueError, match='needs the fields'):
        model.batch_loss(Data(user_index=user))


def test_tup_rejects_kg_batches():
    model = make_model(use_kg=False)
    head = torch.tensor([0, 1])
    batch = Data(head_index=head, rel_type=head, tail_index=head)
    with pytest.raises(ValueError, match=r'use_kg=False\) \(TUP\)'):
        model.batch_loss(batch)
    with pytest.raises(ValueError, match='use_kg=False'):
        model.kg_loss(head, head, head)
    with pytest.raises(ValueError, match='use_kg=False'):
        model.kg_scores_all_tails(head, head)
    # Recommendation batches still work:
    user, item = pairs()
    loss = model.batch_loss(
        Data(user_index=user, pos_item_index=item, neg_item_index=item))
    assert torch.isfinite(loss)


def test_ktup_kg_scores_all_tails():
    model = make_model()
    head, rel = torch.tensor([0, 7, 11]), torch.tensor([3, 0, 1])
    scores = model.kg_scores_all_tails(head, rel)
    assert scores.size() == (3, NUM_ENTITIES)
    ent = torch.arange(NUM_ENTITIES)
    for b in range(3):
        expected = model.kg(head[b].expand(NUM_ENTITIES),
                            rel[b].expand(NUM_ENTITIES), ent)
        assert torch.allclose(scores[b], expected, atol=1e-6)
    heads = model.kg_scores_all_heads(rel, head)
    assert heads.size() == (3, NUM_ENTITIES)


def test_ktup_rec_loss_reaches_shared_kg_embeddings():
    model = make_model()
    user, item = pairs()
    model.rec_loss(user, item, torch.roll(item, 1)).backward()
    grad = model.kg.node_emb.weight.grad.abs().sum(dim=-1)
    touched = ITEM_ENTITY[torch.cat([item, torch.roll(item, 1)])]
    touched = touched[touched >= 0].unique()
    assert (grad[touched] > 0).all()
    untouched = [e for e in range(NUM_ENTITIES) if e not in touched.tolist()]
    assert (grad[untouched] == 0).all()
    assert (model.kg.rel_emb.weight.grad.abs().sum(dim=-1) > 0).all()


@pytest.mark.parametrize('use_st_gumbel', [False, True])
def test_ktup_training_decreases_rec_loss(use_st_gumbel):
    torch.manual_seed(7)
    num_users, num_items = 20, 30
    model = KTUP(num_users, num_items, 40, 3, hidden_channels=16,
                 use_st_gumbel=use_st_gumbel)
    # Every user likes 5 random items:
    user = torch.arange(num_users).repeat_interleave(5)
    pos = torch.randint(num_items, (num_users * 5, ))
    neg = torch.randint(num_items, (num_users * 5, ))
    head = torch.randint(40, (60, ))
    rel = torch.randint(3, (60, ))
    tail = torch.randint(40, (60, ))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def bpr() -> float:
        model.eval()
        with torch.no_grad():
            diff = model(user, pos) - model(user, neg)
        model.train()
        return float(-F.logsigmoid(diff).mean())

    before = bpr()
    for step in range(50):
        optimizer.zero_grad()
        if step % 5 == 4:
            loss = model.batch_loss(
                Data(head_index=head, rel_type=rel, tail_index=tail))
        else:
            loss = model.batch_loss(
                Data(user_index=user, pos_item_index=pos,
                     neg_item_index=neg))
        loss.backward()
        optimizer.step()
    after = bpr()
    assert after < 0.5 * before
