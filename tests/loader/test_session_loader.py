import torch
from torch_geometric.loader import DataLoader

from pyg_recs.datasets import SessionDataset
from pyg_recs.loader import SessionLoader


def test_session_loader_equals_pyg_dataloader(sample_root):
    dataset = SessionDataset(sample_root, 'train')
    ours = list(SessionLoader(dataset, batch_size=64))
    pyg = list(DataLoader(dataset, batch_size=64))
    assert len(ours) == len(pyg) == (len(dataset) + 63) // 64
    for a, b in zip(ours, pyg):
        assert a.num_graphs == b.num_graphs
        assert set(a.keys()) == set(b.keys())
        for key in b.keys():
            assert torch.equal(a[key], b[key]), key


def test_session_loader_shuffle_and_subset(sample_root):
    dataset = SessionDataset(sample_root, 'train')
    torch.manual_seed(0)
    loader = SessionLoader(dataset, batch_size=100, shuffle=True)
    seen = torch.cat([batch.y for batch in loader])
    assert seen.numel() == len(dataset)
    assert torch.equal(seen.sort().values, dataset.y.sort().values)
    assert not torch.equal(seen, dataset.y)

    loader = SessionLoader(dataset, batch_size=7, drop_last=True,
                           indices=torch.arange(20))
    assert len(loader) == 2
    assert [b.num_graphs for b in loader] == [7, 7]
