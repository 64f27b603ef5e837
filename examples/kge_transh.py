r"""TransH trained alone on a knowledge graph, the way PyG's
`examples/kge_fb15k_237.py` trains TransE.

The triples come from a RecBole atomic file (`head_id:token`,
`relation_id:token`, `tail_id:token`), by default the Freebase KG of the
RecBole test set (11,337 triples, 24 relations):

    python examples/kge_transh.py --epochs 100
    python examples/kge_transh.py --kg ../shared/data/ml-100k-kg/ml-100k.kg

The triples are split 80/10/10; the model with the best filtered validation
MRR is selected and evaluated on the test triples with `model.test()`
(PyG's raw protocol) and with filtered ranks (the other true tails of each
query removed, the usual protocol for KG completion).
"""
import argparse
import copy
import os.path as osp
import time

import numpy as np
import torch
import torch.optim as optim

from pyg_recs.data.atomic import read_atomic
from pyg_recs.data.split import random_split_mask
from pyg_recs.metrics import filtered_rank, rank_metrics
from pyg_recs.nn.kge import TransH

SHARED = osp.join(osp.dirname(osp.realpath(__file__)), '..', '..', 'shared',
                  'data')

parser = argparse.ArgumentParser()
parser.add_argument('--kg', type=str,
                    default=osp.join(SHARED, 'recbole-test-kg', 'test.kg'),
                    help='a RecBole .kg atomic file')
parser.add_argument('--hidden_channels', type=int, default=50)
parser.add_argument('--margin', type=float, default=1.0)
parser.add_argument('--p_norm', type=float, default=1.0)
parser.add_argument('--lr', type=float, default=0.01)
parser.add_argument('--batch_size', type=int, default=1000)
parser.add_argument('--epochs', type=int, default=100)
parser.add_argument('--eval_every', type=int, default=10)
parser.add_argument('--max_eval', type=int, default=None,
                    help='evaluate only the first N validation and test '
                    'triples (a quick check)')
parser.add_argument('--seed', type=int, default=2019)
parser.add_argument('--device', type=str, default='cpu')
args = parser.parse_args()

torch.manual_seed(args.seed)
device = torch.device(args.device)

# Triples: entity and relation tokens to dense ids. ######################
df = read_atomic(args.kg, required={'head_id': 'token',
                                    'relation_id': 'token',
                                    'tail_id': 'token'})
df = df.drop_duplicates(['head_id', 'relation_id', 'tail_id'])
entities, ent_index = np.unique(
    np.concatenate([df['head_id'].to_numpy(), df['tail_id'].to_numpy()]),
    return_inverse=True)
relations, rel_type = np.unique(df['relation_id'].to_numpy(),
                                return_inverse=True)
head_index = torch.from_numpy(ent_index[:len(df)]).long()
tail_index = torch.from_numpy(ent_index[len(df):]).long()
rel_type = torch.from_numpy(rel_type).long()
triples = torch.stack([head_index, rel_type, tail_index]).to(device)
print(f'{osp.basename(args.kg)}: {triples.size(1):,} triples, '
      f'{len(entities):,} entities, {len(relations)} relations')

train_mask, val_mask, test_mask = random_split_mask(
    triples.size(1), ratios=(0.8, 0.1, 0.1), seed=args.seed, device=device)
train, val, test = (triples[:, train_mask], triples[:, val_mask],
                    triples[:, test_mask])
val, test = val[:, :args.max_eval], test[:, :args.max_eval]

model = TransH(
    num_nodes=len(entities),
    num_relations=len(relations),
    hidden_channels=args.hidden_channels,
    margin=args.margin,
    p_norm=args.p_norm,
).to(device)

loader = model.loader(
    head_index=train[0],
    rel_type=train[1],
    tail_index=train[2],
    batch_size=args.batch_size,
    shuffle=True,
)

optimizer = optim.Adam(model.parameters(), lr=args.lr)


def train_epoch():
    model.train()
    total_loss = total_examples = 0
    for head_index, rel_type, tail_index in loader:
        optimizer.zero_grad()
        loss = model.loss(head_index, rel_type, tail_index)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * head_index.numel()
        total_examples += head_index.numel()
    return total_loss / total_examples


def known_tails(head_index, rel_type):
    # [2, M] pairs (row, entity): every true tail of (head[row], rel[row], ?)
    # in the whole KG, removed before ranking (the filtered setting).
    query = head_index * len(relations) + rel_type
    key = triples[0] * len(relations) + triples[1]
    row, col = (query.view(-1, 1) == key.view(1, -1)).nonzero().t()
    return torch.stack([row, triples[2, col]])


@torch.no_grad()
def test_filtered(data, batch_size=256):
    model.eval()
    ranks = []
    for start in range(0, data.size(1), batch_size):
        h, r, t = data[:, start:start + batch_size]
        scores = model.score_all_tails(h, r)  # [batch_size, num_entities]
        ranks.append(filtered_rank(scores, t, known_tails(h, r)))
    return rank_metrics(ranks, ks=(1, 10))


best_mrr, best_epoch, best_state = -1.0, 0, None
start = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    loss = train_epoch()
    print(f'Epoch: {epoch:03d}, Loss: {loss:.4f}')
    if epoch % args.eval_every == 0 or epoch == args.epochs:
        val_metrics = test_filtered(val)
        print(f'Epoch: {epoch:03d}, Val MRR: {val_metrics["MRR"]:.4f}, '
              f'Val Hits@10: {val_metrics["Hits@10"]:.4f} (filtered)')
        if val_metrics['MRR'] > best_mrr:
            best_mrr, best_epoch = val_metrics['MRR'], epoch
            best_state = copy.deepcopy(model.state_dict())
print(f'Training: {time.perf_counter() - start:.1f} s, '
      f'best epoch {best_epoch}')

model.load_state_dict(best_state)
model.eval()
mean_rank, mrr, hits_at_10 = model.test(
    head_index=test[0],
    rel_type=test[1],
    tail_index=test[2],
    batch_size=256,
    k=10,
    log=False,
)
print(f'Test (raw): Mean Rank: {mean_rank:.2f}, MRR: {mrr:.4f}, '
      f'Hits@10: {hits_at_10:.4f}')
test_metrics = test_filtered(test)
print(f'Test (filtered): Mean Rank: {test_metrics["MR"]:.2f}, '
      f'MRR: {test_metrics["MRR"]:.4f}, '
      f'Hits@1: {test_metrics["Hits@1"]:.4f}, '
      f'Hits@10: {test_metrics["Hits@10"]:.4f}')
