import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from pyg_recs.data import session_to_graph, sessions_to_graphs


def dense(data, weight):
    n = data.num_nodes
    out = torch.zeros(n, n)
    out[data.edge_index[0], data.edge_index[1]] = weight
    return out


def test_paper_example():
    # The session v1, v2, v3, v2, v4 of Figure 2 in the SR-GNN paper.
    data = session_to_graph([1, 2, 3, 2, 4], target=5)
    assert data.x.tolist() == [1, 2, 3, 4]
    assert data.edge_index.tolist() == [[0, 1, 1, 2], [1, 2, 3, 1]]
    assert data.click_index.tolist() == [0, 1, 2, 1, 3]
    assert data.last_index.tolist() == [3]
    assert data.y.tolist() == [5]
    # Outgoing matrix: row i holds 1 / |successors of i|.
    expected_out = torch.tensor([
        [0, 1, 0, 0],
        [0, 0, 0.5, 0.5],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
    ])
    # Incoming matrix (as in the paper, row j holds 1 / |predecessors of j|
    # for each of j's predecessors).
    expected_in = torch.tensor([
        [0, 0, 0, 0],
        [0.5, 0, 0.5, 0],
        [0, 1, 0, 0],
        [0, 1, 0, 0],
    ])
    assert torch.equal(dense(data, data.edge_weight_out), expected_out)
    assert torch.equal(dense(data, data.edge_weight_in).t(), expected_in)


def test_repeats_self_loop_and_single_click():
    data = session_to_graph([5, 5])
    assert data.x.tolist() == [5]
    assert data.edge_index.tolist() == [[0], [0]]
    assert data.edge_weight_in.tolist() == [1.0]
    assert data.edge_weight_out.tolist() == [1.0]
    assert 'y' not in data

    data = session_to_graph([7])
    assert data.x.tolist() == [7]
    assert data.edge_index.size() == (2, 0)
    assert data.last_index.tolist() == [0]

    # A repeated transition is one edge:
    data = session_to_graph([1, 2, 1, 2])
    assert data.edge_index.tolist() == [[0, 1], [1, 0]]


def test_errors():
    with pytest.raises(ValueError, match='empty'):
        sessions_to_graphs([[1, 2], []])
    with pytest.raises(ValueError, match='non-negative'):
        session_to_graph([1, -3])
    with pytest.raises(ValueError, match='targets'):
        sessions_to_graphs([[1, 2]], [1, 2])


def test_many_equals_single():
    rng = np.random.default_rng(0)
    sessions = [
        rng.integers(0, 6, size=rng.integers(1, 9)).tolist()
        for _ in range(50)
    ]
    targets = rng.integers(0, 6, size=50).tolist()
    data, slices = sessions_to_graphs(sessions, targets)
    for i, (session, target) in enumerate(zip(sessions, targets)):
        single = session_to_graph(session, target)
        for key in single.keys():
            start, end = slices[key][i], slices[key][i + 1]
            value = data[key][..., start:end]
            assert torch.equal(value, single[key]), key


def test_transitions_are_edges_and_weights_normalised():
    rng = np.random.default_rng(1)
    for _ in range(20):
        session = rng.integers(0, 5, size=rng.integers(2, 12)).tolist()
        data = session_to_graph(session)
        edges = set(map(tuple, data.edge_index.t().tolist()))
        node = {v: i for i, v in enumerate(data.x.tolist())}
        for a, b in zip(session[:-1], session[1:]):
            assert (node[a], node[b]) in edges
        assert len(edges) == data.edge_index.size(1)
        out_sum = torch.zeros(data.num_nodes).index_add_(
            0, data.edge_index[0], data.edge_weight_out)
        in_sum = torch.zeros(data.num_nodes).index_add_(
            0, data.edge_index[1], data.edge_weight_in)
        has_out = torch.zeros(data.num_nodes, dtype=torch.bool)
        has_out[data.edge_index[0]] = True
        has_in = torch.zeros(data.num_nodes, dtype=torch.bool)
        has_in[data.edge_index[1]] = True
        assert torch.allclose(out_sum[has_out], torch.ones(1))
        assert torch.allclose(in_sum[has_in], torch.ones(1))


def test_pyg_dataloader_batches():
    graphs = [session_to_graph([1, 2, 3, 2, 4], 5),
              session_to_graph([6, 6], 1)]
    batch = next(iter(DataLoader(graphs, batch_size=2)))
    assert batch.num_graphs == 2
    assert batch.edge_index.tolist() == [[0, 1, 1, 2, 4], [1, 2, 3, 1, 4]]
    assert batch.click_index.tolist() == [0, 1, 2, 1, 3, 4, 4]
    assert batch.last_index.tolist() == [3, 4]
    assert batch.batch.tolist() == [0, 0, 0, 0, 1]
