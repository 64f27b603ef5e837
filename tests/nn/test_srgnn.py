import pytest
import torch
from torch_geometric.data import Batch

from pyg_recs.data import session_to_graph
from pyg_recs.nn.models import SRGNN

SESSIONS = [[1, 2, 3, 2, 4], [5, 5], [7], [1, 9, 8, 9, 1, 2]]


def make_batch(sessions=SESSIONS, targets=None):
    targets = targets or [0] * len(sessions)
    return Batch.from_data_list(
        [session_to_graph(s, t) for s, t in zip(sessions, targets)])


def test_srgnn_shapes_and_interface():
    torch.manual_seed(0)
    model = SRGNN(num_items=10, hidden_channels=16)
    assert str(model) == 'SRGNN(10, hidden_channels=16, num_steps=1)'
    batch = make_batch(targets=[4, 1, 2, 3])
    scores = model.batch_scores(batch)
    assert scores.size() == (4, 10)
    loss = model.batch_loss(batch)
    assert loss.dim() == 0 and loss > 0
    loss.backward()
    assert model.item_emb.weight.grad is not None
    top = model.recommend(batch, k=3)
    assert top.size() == (4, 3)
    assert torch.equal(top, scores.topk(3).indices)


def test_srgnn_batch_equals_single_sessions():
    # The scatter readout over the batch vector gives the same session
    # embeddings as computing every session on its own.
    torch.manual_seed(0)
    model = SRGNN(num_items=10, hidden_channels=8).eval()
    batched = model.batch_scores(make_batch())
    for i, session in enumerate(SESSIONS):
        single = model.batch_scores(make_batch([session]))
        assert torch.allclose(batched[i], single[0], atol=1e-5)


def test_srgnn_readout_matches_reference_formula():
    torch.manual_seed(0)
    model = SRGNN(num_items=10, hidden_channels=8).eval()
    session = [1, 2, 3, 2, 4]
    data = session_to_graph(session)
    h = model.conv(model.item_emb(data.x), data.edge_index,
                   data.edge_weight_in, data.edge_weight_out)
    seq_hidden = h[data.click_index]  # One row per click, repeats included.
    ht = seq_hidden[-1:]
    att = model.attention
    alpha = att.att(torch.sigmoid(att.lin_last(ht) +
                                  att.lin_click(seq_hidden)))
    a = (alpha * seq_hidden).sum(0, keepdim=True)
    s_h = model.lin_hybrid(torch.cat([a, ht], 1))
    expected = s_h @ model.item_emb.weight.t()
    out = model.batch_scores(make_batch([session]))
    assert torch.allclose(out, expected, atol=1e-6)


def test_srgnn_attention_softmax_and_nonhybrid():
    model = SRGNN(10, 8, attention_softmax=True, hybrid=False)
    assert model.batch_scores(make_batch()).size() == (4, 10)


def test_srgnn_rejects_unknown_items():
    model = SRGNN(num_items=5, hidden_channels=8)
    with pytest.raises(ValueError, match=r'Item ids must be in \[0, 4\]'):
        model.batch_scores(make_batch([[1, 7]]))
    with pytest.raises(ValueError, match='num_items'):
        SRGNN(0)
    with pytest.raises(ValueError, match="'k'"):
        model.recommend(make_batch([[1, 2]]), k=0)
