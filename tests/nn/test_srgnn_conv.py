import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

import pyg_recs.typing
from pyg_recs.data import session_to_graph
from pyg_recs.nn import SRGNNConv
from pyg_recs.typing import SparseTensor


def reference_cell(conv, hidden, A):
    # The dense GNNCell of the SR-GNN reference code (one step), with
    # A = [A_in | A_out] of shape [n, 2n] as built by its get_slice().
    n = hidden.size(0)
    input_in = A[:, :n] @ conv.lin_in(hidden) + conv.bias_in
    input_out = A[:, n:2 * n] @ conv.lin_out(hidden) + conv.bias_out
    inputs = torch.cat([input_in, input_out], 1)
    gi = inputs @ conv.gru.weight_ih.t() + conv.gru.bias_ih
    gh = hidden @ conv.gru.weight_hh.t() + conv.gru.bias_hh
    i_r, i_i, i_n = gi.chunk(3, 1)
    h_r, h_i, h_n = gh.chunk(3, 1)
    resetgate = torch.sigmoid(i_r + h_r)
    inputgate = torch.sigmoid(i_i + h_i)
    newgate = torch.tanh(i_n + resetgate * h_n)
    return newgate + inputgate * (hidden - newgate)


def reference_adjacency(session):
    # The reference get_slice(): u_A[u][v] = 1 for every transition.
    node = sorted(set(session), key=session.index)
    n = len(node)
    u_A = torch.zeros(n, n)
    for a, b in zip(session[:-1], session[1:]):
        u_A[node.index(a), node.index(b)] = 1
    u_sum_in = u_A.sum(0)
    u_sum_in[u_sum_in == 0] = 1
    u_A_in = u_A / u_sum_in
    u_sum_out = u_A.sum(1)
    u_sum_out[u_sum_out == 0] = 1
    u_A_out = u_A.t() / u_sum_out
    return torch.cat([u_A_in, u_A_out]).t()


def test_srgnn_conv_matches_reference_cell():
    torch.manual_seed(0)
    session = [1, 2, 3, 2, 4, 4, 1]
    data = session_to_graph(session)
    conv = SRGNNConv(8)
    assert str(conv) == 'SRGNNConv(8, num_steps=1)'
    x = torch.randn(data.num_nodes, 8)
    out = conv(x, data.edge_index, data.edge_weight_in, data.edge_weight_out)
    assert out.size() == (data.num_nodes, 8)
    expected = reference_cell(conv, x, reference_adjacency(session))
    assert torch.allclose(out, expected, atol=1e-6)


def test_srgnn_conv_multiple_steps():
    torch.manual_seed(0)
    data = session_to_graph([3, 1, 3, 2])
    conv = SRGNNConv(4, num_steps=3)
    x = torch.randn(data.num_nodes, 4)
    expected = x
    A = reference_adjacency([3, 1, 3, 2])
    for _ in range(3):
        expected = reference_cell(conv, expected, A)
    out = conv(x, data.edge_index, data.edge_weight_in, data.edge_weight_out)
    assert torch.allclose(out, expected, atol=1e-6)


def batch():
    sessions = [[1, 2, 3, 2, 4], [5, 5], [7], [1, 9, 8, 9, 1, 2]]
    return Batch.from_data_list([session_to_graph(s) for s in sessions])


def test_srgnn_conv_sparse_inputs_equal():
    torch.manual_seed(0)
    b = batch()
    n = b.num_nodes
    conv = SRGNNConv(16)
    x = torch.randn(n, 16)
    out = conv(x, b.edge_index, b.edge_weight_in, b.edge_weight_out)
    # Weights derived from the graph itself:
    assert torch.allclose(conv(x, b.edge_index), out, atol=1e-6)
    # torch.sparse adjacency in PyG's transposed convention:
    adj_t = to_torch_coo_tensor(b.edge_index.flip(0), size=(n, n))
    assert torch.allclose(conv(x, adj_t), out, atol=1e-6)
    adj_t = to_torch_csr_tensor(b.edge_index.flip(0), size=(n, n))
    assert torch.allclose(conv(x, adj_t), out, atol=1e-6)
    if pyg_recs.typing.WITH_TORCH_SPARSE:
        adj_t = SparseTensor.from_edge_index(b.edge_index.flip(0),
                                             sparse_sizes=(n, n))
        assert torch.allclose(conv(x, adj_t), out, atol=1e-6)
    with pytest.raises(ValueError, match='sparse adjacency'):
        conv(x, adj_t, b.edge_weight_in)


def test_srgnn_conv_permutation_invariance():
    torch.manual_seed(0)
    b = batch()
    n = b.num_nodes
    conv = SRGNNConv(8)
    x = torch.randn(n, 8)
    out = conv(x, b.edge_index, b.edge_weight_in, b.edge_weight_out)
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    edge_perm = torch.randperm(b.edge_index.size(1))
    out_perm = conv(x[perm], inv[b.edge_index][:, edge_perm],
                    b.edge_weight_in[edge_perm],
                    b.edge_weight_out[edge_perm])
    assert torch.allclose(out_perm, out[perm], atol=1e-6)


def test_srgnn_conv_reset_and_errors():
    conv = SRGNNConv(4)
    before = conv.lin_in.weight.clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_in.weight)
    assert conv.lin_in.weight.abs().max() <= 0.5
    with pytest.raises(ValueError, match='num_steps'):
        SRGNNConv(4, num_steps=0)
    with pytest.raises(ValueError, match='node states'):
        conv(torch.randn(3, 5), torch.tensor([[0], [1]]))


def test_srgnn_conv_on_plain_directed_graph():
    # Works on any directed graph: a cycle with a chord.
    edge_index = torch.tensor([[0, 1, 2, 0], [1, 2, 0, 2]])
    conv = SRGNNConv(4, num_steps=2)
    out = conv(torch.randn(3, 4), edge_index)
    assert out.size() == (3, 4)
    assert torch.isfinite(out).all()
