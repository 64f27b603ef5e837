r"""SR-GNN's successors on the shared blocks: NISER+, GC-SAN and TAGNN."""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from pyg_recs.data import session_to_graph
from pyg_recs.engine import Trainer, seed_everything
from pyg_recs.loader import SessionLoader
from pyg_recs.metrics import RankingMetrics
from pyg_recs.nn.aggr import SoftAttentionReadout, click_positions
from pyg_recs.nn.models import GCSAN, NISER, SRGNN, TAGNN, SessionGNN

SESSIONS = [[1, 2, 3, 2, 4], [5, 5], [7], [1, 9, 8, 9, 1, 2]]
FAMILY = [SRGNN, NISER, GCSAN, TAGNN]


def make_batch(sessions=SESSIONS, targets=None):
    targets = targets or [0] * len(sessions)
    return Batch.from_data_list(
        [session_to_graph(s, t) for s, t in zip(sessions, targets)])


@pytest.mark.parametrize('cls', FAMILY)
def test_shapes_loss_and_interface(cls):
    torch.manual_seed(0)
    model = cls(num_items=10, hidden_channels=16)
    assert isinstance(model, SessionGNN)
    assert str(model).startswith(f'{cls.__name__}(10, hidden_channels=16')
    batch = make_batch(targets=[4, 1, 2, 3])
    scores = model.batch_scores(batch)
    assert scores.size() == (4, 10) and torch.isfinite(scores).all()
    loss = model.batch_loss(batch)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
    top = model.eval().recommend(batch, k=3)
    assert torch.equal(top, model.batch_scores(batch).topk(3).indices)


@pytest.mark.parametrize('cls', FAMILY)
def test_batch_equals_single_sessions_in_any_order(cls):
    torch.manual_seed(0)
    model = cls(num_items=10, hidden_channels=8).eval()
    batched = model.batch_scores(make_batch())
    for i, session in enumerate(SESSIONS):
        single = model.batch_scores(make_batch([session]))
        assert torch.allclose(batched[i], single[0], atol=1e-5)
    perm = [2, 0, 3, 1]
    shuffled = model.batch_scores(make_batch([SESSIONS[i] for i in perm]))
    assert torch.allclose(shuffled, batched[perm], atol=1e-5)


@pytest.mark.parametrize('cls', FAMILY)
def test_node_order_does_not_matter(cls):
    # Relabelling the nodes of a session graph (and its click and edge
    # indices with them) leaves the scores unchanged.
    torch.manual_seed(0)
    model = cls(num_items=10, hidden_channels=8).eval()
    data = session_to_graph([1, 9, 8, 9, 1, 2], 0)
    perm = torch.tensor([3, 0, 2, 1])  # new position of every old node
    moved = data.clone()
    moved.x = torch.empty_like(data.x)
    moved.x[perm] = data.x
    moved.edge_index = perm[data.edge_index]
    moved.click_index = perm[data.click_index]
    moved.last_index = perm[data.last_index]
    a = model.batch_scores(Batch.from_data_list([data]))
    b = model.batch_scores(Batch.from_data_list([moved]))
    assert torch.allclose(a, b, atol=1e-5)


def test_click_order_matters_for_position_and_attention_models():
    torch.manual_seed(0)
    for cls in (NISER, GCSAN):
        model = cls(num_items=10, hidden_channels=8).eval()
        a = model.batch_scores(make_batch([[1, 2, 3]]))
        b = model.batch_scores(make_batch([[2, 1, 3]]))
        assert not torch.allclose(a, b, atol=1e-4), cls.__name__


def test_click_positions():
    click_batch = torch.tensor([0, 0, 0, 1, 3, 3])
    positions, last = click_positions(click_batch, num_sessions=4)
    assert positions.tolist() == [0, 1, 2, 0, 0, 1]
    assert last.tolist()[:2] == [2, 3] and last.tolist()[3] == 5


def test_soft_attention_readout_softmax_sums_to_session_mean_weights():
    torch.manual_seed(0)
    readout = SoftAttentionReadout(4, softmax=True)
    v = torch.randn(5, 4)
    index = torch.tensor([0, 0, 0, 1, 1])
    # Equal clicks get equal weights: the readout is their mean.
    v[1], v[2] = v[0], v[0]
    out = readout(v, index, v[[2, 4]])
    assert torch.allclose(out[0], v[0], atol=1e-6)


def test_niser_scores_are_scaled_cosines():
    torch.manual_seed(0)
    model = NISER(10, 8, scale=12.0).eval()
    batch = make_batch()
    scores = model.batch_scores(batch)
    assert scores.abs().max() <= 12.0 + 1e-5
    s = model.session_embedding(batch.x, batch.edge_index,
                                batch.click_index, batch.last_index,
                                batch.batch, batch.edge_weight_in,
                                batch.edge_weight_out)
    assert torch.allclose(s.norm(dim=-1), torch.ones(4), atol=1e-5)
    expected = 12.0 * s @ F.normalize(model.item_emb.weight, dim=-1).t()
    assert torch.allclose(scores, expected, atol=1e-5)
    # Later positions than max_positions share the last embedding:
    short = NISER(10, 8, max_positions=2).eval()
    assert short.batch_scores(make_batch([[1, 2, 3, 4, 5]])).size() == (1, 10)
    with pytest.raises(ValueError, match='scale'):
        NISER(10, 8, scale=0)


def test_gcsan_omega_mixes_attention_and_graph_state():
    torch.manual_seed(0)
    model = GCSAN(10, 8, omega=0.0).eval()
    batch = make_batch()
    h = model.conv(model.item_emb(batch.x), batch.edge_index,
                   batch.edge_weight_in, batch.edge_weight_out)
    expected = h[batch.last_index] @ model.item_emb.weight.t()
    assert torch.allclose(model.batch_scores(batch), expected, atol=1e-5)
    # One block: causal or not, the last click sees the whole session.
    torch.manual_seed(1)
    a = GCSAN(10, 8, causal=False).eval()
    torch.manual_seed(1)
    b = GCSAN(10, 8, causal=True).eval()
    assert torch.allclose(a.batch_scores(batch), b.batch_scores(batch),
                          atol=1e-5)
    with pytest.raises(ValueError, match='heads'):
        GCSAN(10, 8, heads=3)


@pytest.mark.parametrize('num_layers,causal,heads',
                         [(1, False, 1), (2, False, 2), (2, True, 1)])
def test_gcsan_last_query_block_equals_the_whole_encoder(num_layers, causal,
                                                         heads):
    from torch_geometric.utils import to_dense_batch
    torch.manual_seed(0)
    model = GCSAN(12, 8, num_layers=num_layers, causal=causal,
                  heads=heads).eval()
    batch = make_batch()
    h = model.conv(model.item_emb(batch.x), batch.edge_index,
                   batch.edge_weight_in, batch.edge_weight_out)
    # The reference: every block over every click, then the last click.
    dense, mask = to_dense_batch(h[batch.click_index],
                                 batch.batch[batch.click_index])
    size = dense.size(1)
    attn_mask = torch.ones(size, size, dtype=torch.bool).triu(1) \
        if causal else None
    out = model.encoder(dense, mask=attn_mask, src_key_padding_mask=~mask)
    length = mask.sum(1)
    f_last = out[torch.arange(len(SESSIONS)), length - 1]
    s = model.omega * f_last + (1 - model.omega) * h[batch.last_index]
    expected = s @ model.item_emb.weight.t()
    assert torch.allclose(model.batch_scores(batch), expected, atol=1e-5)
    # Gradients reach every block (training mode, no dropout):
    model.train()
    model.encoder.apply(lambda m: setattr(m, 'p', 0.0)
                        if isinstance(m, torch.nn.Dropout) else None)
    model.batch_loss(batch).backward()
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_tagnn_matches_the_per_item_formula():
    torch.manual_seed(0)
    model = TAGNN(10, 8).eval()
    session = [1, 9, 8, 9, 1, 2]
    data = session_to_graph(session)
    h = model.conv(model.item_emb(data.x), data.edge_index,
                   data.edge_weight_in, data.edge_weight_out)
    seq = h[data.click_index]  # one row per click
    ht = seq[-1:]
    att = model.attention
    alpha = torch.softmax(att.att(torch.sigmoid(
        att.lin_last(ht) + att.lin_click(seq))), dim=0)
    s_h = model.lin_hybrid(torch.cat([(alpha * seq).sum(0, True), ht], 1))
    expected = []
    for i in range(10):  # a session vector for every candidate item
        v = model.item_emb.weight[i]
        beta = torch.softmax(model.lin_target(seq) @ v, dim=0)
        expected.append((s_h[0] + beta @ seq) @ v)
    out = model.batch_scores(Batch.from_data_list([data]))
    assert torch.allclose(out[0], torch.stack(expected), atol=1e-5)


def test_old_srgnn_checkpoints_still_load():
    model = SRGNN(10, 8)
    state = {(k.replace('attention.', '')): v
             for k, v in model.state_dict().items()}
    assert 'lin_last.weight' in state
    other = SRGNN(10, 8)
    other.load_state_dict(state)
    for a, b in zip(model.parameters(), other.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize('cls', FAMILY)
def test_padded_batches_give_the_same_scores(cls, sample_root):
    from pyg_recs.datasets import SessionDataset
    ds = SessionDataset(sample_root, 'test')
    torch.manual_seed(0)
    model = cls(ds.num_items, 8).eval()
    plain = next(iter(SessionLoader(ds, 16)))
    padded = next(iter(SessionLoader(ds, 16, pad=True)))
    a = model.batch_scores(plain)
    b = model.batch_scores(padded)[:16]
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize('cls', [NISER, GCSAN, TAGNN])
def test_sample_training_beats_most_popular(cls, sample_root):
    from pyg_recs.datasets import SessionDataset
    train = SessionDataset(sample_root, 'train')
    test = SessionDataset(sample_root, 'test')
    seed_everything(12345)
    model = cls(train.num_items, hidden_channels=32)
    trainer = Trainer(model, epochs=6, lr=0.01, lr_step=0, progress=False)
    history = trainer.fit(SessionLoader(train, 64, shuffle=True))
    assert history[-1]['loss'] < history[0]['loss']
    test_loader = SessionLoader(test, 256)
    metrics = trainer.evaluate(test_loader)
    counts = torch.bincount(train.y, minlength=train.num_items).float()
    baseline = RankingMetrics(['HR', 'MRR'], ks=[20])
    for batch in test_loader:
        baseline.update_from_scores(counts.expand(batch.num_graphs, -1),
                                    batch.y)
    pop = baseline.compute()
    assert metrics['HR@20'] > pop['HR@20']
    assert metrics['MRR@20'] > pop['MRR@20']


def test_segment_softmax_sum_matches_pyg_softmax_and_gradients():
    from torch_geometric.utils import segment, softmax

    from pyg_recs.nn.aggr import segment_softmax_sum
    torch.manual_seed(0)
    ptr = torch.tensor([0, 3, 4, 9])
    logits = torch.randn(9, 5, dtype=torch.double, requires_grad=True)
    values = torch.randn(9, 5, dtype=torch.double, requires_grad=True)
    out = segment_softmax_sum(logits, values, ptr)
    expected = segment(softmax(logits, ptr=ptr, dim=0) * values, ptr)
    assert torch.allclose(out, expected)
    assert torch.autograd.gradcheck(
        lambda a, b: segment_softmax_sum(a, b, ptr), (logits, values))
    # Large logits do not overflow; -inf (a row that is never clicked)
    # gets no weight.
    big = logits.detach().clone()
    big[0] = 1e4
    big[1] = float('-inf')
    out = segment_softmax_sum(big, values.detach(), ptr)
    assert torch.allclose(out[0], values.detach()[0])
    assert segment_softmax_sum(
        logits[:0], values[:0], torch.tensor([0])).size() == (0, 5)
    with pytest.raises(ValueError, match='every segment'):
        segment_softmax_sum(logits, values, torch.tensor([0, 3, 3, 9]))
    with pytest.raises(ValueError, match='same shape'):
        segment_softmax_sum(logits, values[:, :2], ptr)


def test_tagnn_counts_repeated_clicks_and_accepts_unsorted_batches():
    # Session [1, 2, 1]: node of item 1 clicked twice must weigh as two
    # clicks in the target attention (the per-item formula over clicks).
    torch.manual_seed(0)
    model = TAGNN(10, 8).eval()
    batch = make_batch([[1, 2, 1], [3, 4]])
    with torch.no_grad():
        h = model.node_states(batch.x, batch.edge_index,
                              batch.edge_weight_in, batch.edge_weight_out)
        items = model.item_weights()
        s_h = model.readout(h, batch.click_index, batch.last_index,
                            batch.batch)
        clicks = h[batch.click_index]
        session = batch.batch[batch.click_index]
        expected = []
        for b in range(2):
            hc = clicks[session == b]
            beta = (model.lin_target(hc) @ items.t()).softmax(dim=0)
            expected.append(s_h[b] @ items.t() + (beta * (hc @ items.t()))
                            .sum(dim=0))
        scores = model.batch_scores(batch)
    assert torch.allclose(scores, torch.stack(expected), atol=1e-5)
    # The same batch with its nodes stored out of session order.
    perm = torch.tensor([2, 0, 3, 1])
    inv = perm.argsort()
    with torch.no_grad():
        shuffled = model(batch.x[perm], inv[batch.edge_index],
                         inv[batch.click_index], inv[batch.last_index],
                         batch.batch[perm], batch.edge_weight_in,
                         batch.edge_weight_out)
    assert torch.allclose(shuffled, scores, atol=1e-5)
