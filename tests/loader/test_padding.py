import pytest
import torch

from pyg_recs.data import session_to_graph
from pyg_recs.data.session_graph import IGNORE_INDEX, sessions_to_graphs
from pyg_recs.datasets import SessionDataset
from pyg_recs.engine import Trainer
from pyg_recs.loader import SessionLoader
from pyg_recs.loader.session_loader import bucket_size
from pyg_recs.nn.models import SRGNN


def test_bucket_size():
    sizes = [bucket_size(n) for n in range(1, 26)]
    assert sizes[:12] == [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12]
    assert sizes[12:] == [16] * 4 + [24] * 8 + [32]
    for n in range(1, 3000):
        b = bucket_size(n)
        assert n <= b < 1.5 * n + 1


def tiny_dataset():
    from torch_geometric.data import InMemoryDataset

    class Tiny(InMemoryDataset):
        def __init__(self):
            super().__init__()
            self._data, self.slices = sessions_to_graphs(
                [[1, 2, 3, 2], [4, 4], [5]], targets=[3, 1, 2])

    return Tiny()


def test_padded_batch_layout():
    dataset = tiny_dataset()
    plain = next(iter(SessionLoader(dataset, batch_size=4)))
    padded = next(iter(SessionLoader(dataset, batch_size=4, pad=True)))
    assert 'pad=True' in str(SessionLoader(dataset, 4, pad=True))
    num_nodes, num_edges = plain.num_nodes, plain.edge_index.size(1)
    num_clicks = plain.click_index.numel()
    assert (num_nodes, num_edges, num_clicks) == (5, 4, 7)
    # 4 + 1 session slots; nodes, edges and clicks padded to the bucket of
    # the number of clicks plus one:
    assert padded.num_graphs == 5
    assert padded.num_nodes == bucket_size(8) == 8
    assert padded.edge_index.size(1) == 8
    assert padded.click_index.numel() == 8
    assert padded.session_mask.tolist() == [True] * 3 + [False] * 2
    assert padded.y.tolist() == [3, 1, 2, IGNORE_INDEX, IGNORE_INDEX]
    # The real part is unchanged:
    for key in ('x', 'edge_index', 'edge_weight_in', 'edge_weight_out',
                'click_index', 'batch'):
        n = plain[key].size(-1)
        assert torch.equal(padded[key][..., :n], plain[key]), key
    assert torch.equal(padded.last_index[:3], plain.last_index)
    # The padding: edges from the first padding node to itself with weight
    # 0, clicks and padding sessions on that node, which belongs to the
    # last (padding) session.
    assert (padded.edge_index[:, num_edges:] == num_nodes).all()
    assert (padded.edge_weight_in[num_edges:] == 0).all()
    assert (padded.edge_weight_out[num_edges:] == 0).all()
    assert (padded.click_index[num_clicks:] == num_nodes).all()
    assert (padded.last_index[3:] == num_nodes).all()
    assert (padded.batch[num_nodes:] == 4).all()
    assert padded.ptr.tolist() == [0, 3, 4, 5, 5, 8]


def test_padded_model_equals_unpadded_on_a_single_session():
    torch.manual_seed(0)
    model = SRGNN(10, hidden_channels=8)
    dataset = tiny_dataset()
    plain = next(iter(SessionLoader(dataset, batch_size=1)))
    padded = next(iter(SessionLoader(dataset, batch_size=1, pad=True)))
    assert padded.num_graphs == 2
    scores = model.batch_scores(padded)
    assert torch.allclose(scores[:1], model.batch_scores(plain), atol=1e-6)
    assert torch.allclose(model.batch_loss(padded), model.batch_loss(plain),
                          atol=1e-6)
    assert session_to_graph([1]).num_nodes == 1


def _grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model.batch_loss(batch)
    loss.backward()
    return loss.detach(), {
        name: param.grad.clone()
        for name, param in model.named_parameters()
    }


def test_padding_gives_identical_losses_gradients_and_metrics(sample_root):
    train = SessionDataset(sample_root, 'train')
    test = SessionDataset(sample_root, 'test')
    torch.manual_seed(1)
    model = SRGNN(train.num_items, hidden_channels=32)
    indices = torch.randperm(len(train))
    # 1085 training sessions in batches of 100: the last one has 85 real
    # sessions and 16 padding ones.
    plain = SessionLoader(train, 100, indices=indices)
    padded = SessionLoader(train, 100, indices=indices, pad=True)
    count = 0
    for a, b in zip(plain, padded):
        assert b.num_graphs == 101
        assert int(b.session_mask.sum()) == a.num_graphs
        loss_a, grad_a = _grads(model, a)
        loss_b, grad_b = _grads(model, b)
        assert torch.allclose(loss_a, loss_b, rtol=0, atol=1e-6)
        assert grad_a.keys() == grad_b.keys()
        for name in grad_a:
            assert torch.allclose(grad_a[name], grad_b[name], rtol=0,
                                  atol=1e-6), name
        count += 1
    assert count == len(plain) == len(padded) == 11

    # Evaluation metrics are those of the real sessions alone (99 test
    # sessions in batches of 40: the last one has 19 real sessions).
    trainer = Trainer(model, progress=False, ks=(5, 20))
    out_a = trainer.evaluate(SessionLoader(test, 40))
    out_b = trainer.evaluate(SessionLoader(test, 40, pad=True))
    out_a.pop('seconds'), out_b.pop('seconds')
    assert out_a.keys() == out_b.keys() and len(out_a) == 6
    for key in out_a:
        assert out_a[key] == pytest.approx(out_b[key], abs=1e-6), key


def test_padding_bounds_the_number_of_shapes(sample_root):
    train = SessionDataset(sample_root, 'train')
    torch.manual_seed(2)
    plain_shapes, padded_shapes = set(), set()
    sizes = []
    loader = SessionLoader(train, 64, shuffle=True, pad=True)
    for _ in range(3):  # Three shuffled epochs.
        for batch in loader:
            real = batch.session_mask
            padded_shapes.add((batch.num_nodes, batch.edge_index.size(1),
                               batch.click_index.numel(), batch.num_graphs))
            num_nodes = int(batch.ptr[int(real.sum())])
            num_clicks = int((batch.batch[batch.click_index] <
                              int(real.sum())).sum())
            num_edges = int((batch.edge_weight_in > 0).sum())
            plain_shapes.add((num_nodes, num_edges, num_clicks))
            sizes.append((num_nodes, num_edges, num_clicks))
    # Every batch has one size, the bucket of its number of clicks plus
    # one, for its nodes, edges and clicks:
    clicks = [s[2] for s in sizes]
    lo, hi = bucket_size(min(clicks) + 1), bucket_size(max(clicks) + 1)
    buckets = {bucket_size(n) for n in range(lo, hi + 1)}
    assert {s[:3] for s in padded_shapes} == {(b, b, b) for b in buckets}
    assert {s[3] for s in padded_shapes} == {65}
    # 17 batches per epoch, 51 in all, almost all of distinct real shapes,
    # but two or three padded ones (the clicks of a batch of 64 sessions
    # vary by less than a factor of two):
    assert len(sizes) == 51
    assert len(plain_shapes) > 40
    assert len(padded_shapes) == len(buckets) <= 3
