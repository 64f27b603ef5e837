r"""SRGNNConv inside a user's own PyG model, on a graph that is not a session.

`SRGNNConv` aggregates the predecessors and the successors of every node
separately and updates the node with a GRU, so it can tell "cites" from
"is cited by". Here it is stacked with PyG's `GCNConv` for node
classification on a small random citation graph: every paper cites earlier
papers, mostly of its own topic, and has noisy bag-of-words features.

    python examples/srgnn_conv_citation.py --epochs 200

Without `edge_weight_in`/`edge_weight_out`, `SRGNNConv` normalises by the
in- and out-degrees of `edge_index`, the way SR-GNN normalises its session
graphs. The model with the best validation accuracy is evaluated on the
test nodes.
"""
import argparse
import copy

import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv
from torch_geometric.utils import coalesce, to_undirected

from pyg_recs.nn import SRGNNConv

parser = argparse.ArgumentParser()
parser.add_argument('--num_nodes', type=int, default=2000)
parser.add_argument('--num_classes', type=int, default=5)
parser.add_argument('--num_features', type=int, default=100)
parser.add_argument('--citations', type=int, default=5,
                    help='references per paper')
parser.add_argument('--hidden_channels', type=int, default=32)
parser.add_argument('--num_steps', type=int, default=2,
                    help='propagation steps of SRGNNConv')
parser.add_argument('--lr', type=float, default=0.01)
parser.add_argument('--epochs', type=int, default=200)
parser.add_argument('--seed', type=int, default=12345)
args = parser.parse_args()

torch.manual_seed(args.seed)


def citation_graph(num_nodes: int, num_classes: int, num_features: int,
                   citations: int, homophily: float = 0.6) -> Data:
    # Papers in order of publication; paper i > 0 cites `citations` papers
    # before it (repeats merged), a share `homophily` of them of its topic.
    y = torch.randint(num_classes, (num_nodes, ))
    paper = torch.arange(1, num_nodes).view(-1, 1, 1)
    cand = (torch.rand(num_nodes - 1, citations, 32) * paper).long()
    same = y[cand] == y[1:].view(-1, 1, 1)  # topic of each candidate
    first_same = cand.gather(-1, same.long().argmax(-1, keepdim=True))
    want_same = torch.rand(num_nodes - 1, citations, 1) < homophily
    cited = torch.where(want_same & same.any(-1, keepdim=True), first_same,
                        cand[..., :1]).view(-1)
    citing = paper.expand(-1, citations, 1).reshape(-1)
    # A citation i -> j: paper j's information flows to paper i.
    edge_index = coalesce(torch.stack([cited, citing]), num_nodes=num_nodes)

    # Bag of words: a few topic words, some noise words.
    topic_words = torch.rand(num_classes, num_features) < 0.1
    x = torch.rand(num_nodes, num_features) < 0.05
    x |= topic_words[y] & (torch.rand(num_nodes, num_features) < 0.1)
    x = x.float()

    perm = torch.randperm(num_nodes)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    val_mask = torch.zeros(num_nodes, dtype=torch.bool)
    test_mask = torch.zeros(num_nodes, dtype=torch.bool)
    train_mask[perm[:num_nodes // 10]] = True
    val_mask[perm[num_nodes // 10:num_nodes // 5]] = True
    test_mask[perm[num_nodes // 5:]] = True
    return Data(x=x, y=y, edge_index=edge_index, train_mask=train_mask,
                val_mask=val_mask, test_mask=test_mask)


data = citation_graph(args.num_nodes, args.num_classes, args.num_features,
                      args.citations)
print(f'Citation graph: {data.num_nodes:,} papers, {data.num_edges:,} '
      f'directed citations, {args.num_classes} topics')


class Net(torch.nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int,
                 out_channels: int, num_steps: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(in_channels, hidden_channels)
        self.conv1 = SRGNNConv(hidden_channels, num_steps=num_steps)
        self.conv2 = GCNConv(hidden_channels, out_channels)

    def forward(self, x, edge_index, undirected_edge_index):
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.lin(x).relu()
        # Directed: separate transforms for cited and citing papers.
        x = self.conv1(x, edge_index)
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, undirected_edge_index)


model = Net(data.num_features, args.hidden_channels, args.num_classes,
            args.num_steps)
print(model)
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr,
                             weight_decay=5e-4)
undirected_edge_index = to_undirected(data.edge_index)


def train():
    model.train()
    optimizer.zero_grad()
    out = model(data.x, data.edge_index, undirected_edge_index)
    loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def test():
    model.eval()
    pred = model(data.x, data.edge_index, undirected_edge_index).argmax(-1)
    return [
        float((pred[mask] == data.y[mask]).float().mean())
        for mask in (data.train_mask, data.val_mask, data.test_mask)
    ]


best_val_acc, best_state = -1.0, None
for epoch in range(1, args.epochs + 1):
    loss = train()
    train_acc, val_acc, test_acc = test()
    if val_acc > best_val_acc:
        best_val_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
    print(f'Epoch: {epoch:03d}, Loss: {loss:.4f}, Train: {train_acc:.4f}, '
          f'Val: {val_acc:.4f}, Test: {test_acc:.4f}')

model.load_state_dict(best_state)
train_acc, val_acc, test_acc = test()
print(f'Selected on validation: Val: {val_acc:.4f}, Test accuracy: '
      f'{test_acc:.4f}')
