r"""Exporters of the benchmark harness: they write the exact splits that
``pyg_recs`` trains and evaluates on as RecBole atomic files, so that a
peer library (see ``benchmarks/peers``) sees identical data.

* Session data (SR-GNN): :func:`prepare_session_root` materialises the
  dataset root that ``pyg_recs`` reads (optionally a subset of the SR-GNN
  pickles), :func:`export_session` writes its processed
  :class:`~pyg_recs.datasets.SessionDataset` splits as
  ``NAME.{train,valid,test}.inter`` (one prefix example a line).
* Knowledge-aware data (KTUP): :func:`export_kg` writes the interaction
  masks, the KG training triples and the item-entity links of an
  :class:`~pyg_recs.datasets.AtomicKGDataset` as ``NAME.*.inter``,
  ``NAME.kg`` and ``NAME.link``.

Nothing here imports RecBole.
"""
import json
import os
import os.path as osp
import pickle
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from pyg_recs.io import atomic_json_dump, atomic_write, link_files

SPLITS = ('train', 'valid', 'test')
SESSION_HEADER = 'session_id:token\titem_id_list:token_seq\titem_id:token'
KG_INTER_HEADER = 'user_id:token\titem_id:token'
KG_HEADER = 'head_id:token\trelation_id:token\ttail_id:token'
LINK_HEADER = 'item_id:token\tentity_id:token'


# Session data ###############################################################

def session_split_sizes(num_train_file: int,
                        val_ratio: float = 0.1) -> Tuple[int, int]:
    r"""The sizes of the :obj:`'train'` and :obj:`'valid'` splits that
    :class:`~pyg_recs.datasets.SessionDataset` cuts from a :obj:`train.txt`
    of :obj:`num_train_file` examples (the last :obj:`val_ratio` share is
    validation)."""
    num_valid = int(round(num_train_file * val_ratio))
    return num_train_file - num_valid, num_valid


def prepare_session_root(
    source: str,
    root: str,
    max_train: Optional[int] = None,
    max_eval: Optional[int] = None,
    val_ratio: float = 0.1,
) -> Tuple[str, float, Dict[str, Any]]:
    r"""Prepares the :class:`~pyg_recs.datasets.SessionDataset` root that
    both libraries are run on, from the SR-GNN pickles :obj:`train.txt` and
    :obj:`test.txt` in the folder :obj:`source`.

    Without :obj:`max_train` and :obj:`max_eval` the two pickles are linked
    into :obj:`root/raw` and :obj:`val_ratio` is returned as it is. With
    them, the subset is written as new pickles into :obj:`root/raw`: the
    first :obj:`max_train` examples of the training split, followed by the
    first :obj:`max_eval` examples of the validation split (the last
    :obj:`val_ratio` of the original :obj:`train.txt`), and the first
    :obj:`max_eval` test examples; the returned validation ratio cuts this
    new :obj:`train.txt` exactly at the same place. The item universe is
    then that of the subset, for both libraries.

    Returns the root, the validation ratio to open it with, and a
    description of the data.
    """
    for name, value in (('max_train', max_train), ('max_eval', max_eval)):
        if value is not None and value < 1:
            raise ValueError(f"Invalid '{name}' (got {value}); expected a "
                             f"positive number of examples")
    files = [osp.join(source, f) for f in ('train.txt', 'test.txt')]
    for path in files:
        if not osp.isfile(path):
            raise FileNotFoundError(f"SR-GNN pickle '{path}' not found")
    raw = osp.join(root, 'raw')
    os.makedirs(raw, exist_ok=True)
    info: Dict[str, Any] = {'source': osp.abspath(source),
                            'max_train': max_train, 'max_eval': max_eval}
    if max_train is None and max_eval is None:
        link_files(files, raw)
        info['subset'] = False
        return root, val_ratio, info

    marker = osp.join(raw, 'subset.json')
    if osp.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if (done.get('source') == info['source']
                and done.get('max_train') == max_train
                and done.get('max_eval') == max_eval
                and done.get('source_val_ratio') == val_ratio):
            return root, done['val_ratio'], done

    from pyg_recs.data.safe_pickle import safe_load
    train_s, train_t = safe_load(files[0])
    test_s, test_t = safe_load(files[1])
    num_train, _ = session_split_sizes(len(train_t), val_ratio)
    n_tr = num_train if max_train is None else min(max_train, num_train)
    valid_end = len(train_t) if max_eval is None else min(
        num_train + max_eval, len(train_t))
    n_te = len(test_t) if max_eval is None else min(max_eval, len(test_t))
    new_train = (list(train_s[:n_tr]) + list(train_s[num_train:valid_end]),
                 list(train_t[:n_tr]) + list(train_t[num_train:valid_end]))
    new_test = (list(test_s[:n_te]), list(test_t[:n_te]))
    n_va = valid_end - num_train
    new_ratio = n_va / (n_tr + n_va)
    if session_split_sizes(n_tr + n_va, new_ratio) != (n_tr, n_va):
        raise RuntimeError(f'Cannot express a {n_tr}/{n_va} split as a '
                           f'validation ratio')  # pragma: no cover
    for name, obj in (('train.txt', new_train), ('test.txt', new_test)):
        atomic_write(osp.join(raw, name),
                     lambda f, obj=obj: pickle.dump(obj, f, protocol=4))
    info.update({
        'subset': True,
        'source_val_ratio': val_ratio,
        'val_ratio': new_ratio,
        'num_train': n_tr,
        'num_valid': n_va,
        'num_test': n_te,
        'source_num_train': num_train,
        'source_num_valid': len(train_t) - num_train,
        'source_num_test': len(test_t),
    })
    atomic_json_dump(info, marker)
    return root, new_ratio, info


def session_sequences(dataset) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Reconstructs the examples of a processed
    :class:`~pyg_recs.datasets.SessionDataset` from its stored graphs,
    vectorised: the clicks of example :obj:`i` are
    :obj:`x[click_index]` of its graph.

    Returns the flat clicks (dense item ids), the offsets :obj:`ptr` of each
    example in them and the targets (dense item ids).
    """
    data, slices = dataset._data, dataset.slices
    x, click = data.x, data.click_index
    x_ptr, click_ptr = slices['x'], slices['click_index']
    lengths = click_ptr.diff()
    offset = x_ptr[:-1].repeat_interleave(lengths)
    items = x[click + offset]
    y = data.y.view(-1)
    if y.numel() != lengths.numel():
        raise ValueError(f'Expected one target per session graph (got '
                         f'{y.numel()} for {lengths.numel()} graphs)')
    return items.numpy(), click_ptr.numpy(), y.numpy()


def _session_lines(items: np.ndarray, ptr: np.ndarray, targets: np.ndarray,
                   first_id: int) -> str:
    tokens = (items + 1).astype(str)
    seqs = np.split(tokens, ptr[1:-1]) if ptr.size > 1 else []
    lines = [f'{first_id + i}\t{" ".join(seq)}\t{t + 1}'
             for i, (seq, t) in enumerate(zip(seqs, targets.tolist()))]
    return '\n'.join([SESSION_HEADER] + lines) + '\n'


def export_session(root: str, val_ratio: float, out_dir: str,
                   name: str) -> Dict[str, Any]:
    r"""Writes the :obj:`'train'`, :obj:`'valid'` and :obj:`'test'` splits
    of the :class:`~pyg_recs.datasets.SessionDataset` at :obj:`root` as
    RecBole session files :obj:`out_dir/NAME.{split}.inter`.

    One line is one example: a unique :obj:`session_id` (numbered across
    the three files), the prefix (oldest click first) and the next item.
    Item tokens are the dense ids of ``pyg_recs`` plus one (for the usual
    1-based SR-GNN pickles, the original ids). Returns the counts.
    """
    from pyg_recs.datasets import SessionDataset

    os.makedirs(out_dir, exist_ok=True)
    info: Dict[str, Any] = {'format': 'recbole-session', 'name': name,
                            'item_token': 'dense id + 1'}
    seen = []
    first_id = 0
    for split in SPLITS:
        ds = SessionDataset(root, split, val_ratio=val_ratio)
        items, ptr, targets = session_sequences(ds)
        text = _session_lines(items, ptr, targets, first_id)
        atomic_write(osp.join(out_dir, f'{name}.{split}.inter'),
                     lambda f, text=text: f.write(text), mode='w')
        first_id += targets.size
        info[f'n_{split}'] = int(targets.size)
        seen += [items, targets]
        info['n_items_pyg_recs'] = ds.num_items
    info['n_items_in_files'] = int(np.unique(np.concatenate(seen)).size)
    return info


# Knowledge-aware data #######################################################

def _raw(ids: Any, index: Tensor) -> np.ndarray:
    if isinstance(ids, Tensor):
        return ids[index].numpy().astype(str)
    return np.asarray(ids, dtype=object)[index.numpy()].astype(str)


def _write_table(path: str, header: str, columns: Sequence[np.ndarray]):
    rows = ['\t'.join(row) for row in zip(*columns)]
    text = '\n'.join([header] + rows) + '\n'
    atomic_write(path, lambda f: f.write(text), mode='w')


def export_kg(data, out_dir: str, name: str,
              require_negatives: bool = True) -> Dict[str, Any]:
    r"""Writes the knowledge-aware :class:`~torch_geometric.data.HeteroData`
    of :class:`~pyg_recs.datasets.AtomicKGDataset` as RecBole atomic files
    in :obj:`out_dir`:

    * :obj:`NAME.{train,valid,test}.inter`: the (user, item) pairs of the
      :obj:`train_mask`, :obj:`val_mask` and :obj:`test_mask` of
      :obj:`('user', 'rates', 'item')`, with the original ids;
    * :obj:`NAME.kg`: the KG *training* triples (the ones the ``pyg_recs``
      model trains on), with the original entity ids and relation names;
    * :obj:`NAME.link`: every item that has a KG entity, with its entity.

    Unless :obj:`require_negatives` is :obj:`False`, raises a
    :class:`ValueError` when a user has interacted with every item
    (RecBole's negative sampler refuses to start then). Returns the
    counts.
    """
    from pyg_recs.datasets.knowledge_graph import RATES, RELATION

    os.makedirs(out_dir, exist_ok=True)
    rates = data[RATES]
    user, item = rates.edge_index
    num_items = int(data['item'].num_nodes)
    per_user = torch.bincount(user, minlength=int(data['user'].num_nodes))
    if (require_negatives and per_user.numel() > 0
            and int(per_user.max()) >= num_items):
        bad = int(per_user.argmax())
        raise ValueError(f'User {bad} has interacted with all {num_items} '
                         f'items: RecBole cannot sample negatives for it')
    user_raw, item_raw = data['user'].raw_id, data['item'].raw_id
    info: Dict[str, Any] = {'format': 'recbole-kg', 'name': name}
    for split, mask in zip(SPLITS, ('train_mask', 'val_mask', 'test_mask')):
        m = rates[mask]
        _write_table(osp.join(out_dir, f'{name}.{split}.inter'),
                     KG_INTER_HEADER,
                     [_raw(user_raw, user[m]), _raw(item_raw, item[m])])
        info[f'n_{split}'] = int(m.sum())

    kg = data[RELATION]
    ent_raw = list(data['entity'].raw_id)
    m = kg.train_mask
    head, tail = kg.edge_index[:, m]
    rel = kg.edge_type[m]
    _write_table(osp.join(out_dir, f'{name}.kg'), KG_HEADER, [
        _raw(ent_raw, head),
        _raw(list(data.relation_names), rel),
        _raw(ent_raw, tail)
    ])
    info['n_kg_triples'] = int(m.sum())
    info['n_kg_triples_all'] = int(m.numel())

    item_entity = data['item'].entity
    linked = data['entity'].in_kg[item_entity]
    items = torch.arange(num_items)[linked]
    _write_table(osp.join(out_dir, f'{name}.link'), LINK_HEADER, [
        _raw(item_raw, items),
        _raw(ent_raw, item_entity[linked]),
    ])
    in_train = torch.zeros(int(data['entity'].num_nodes), dtype=torch.bool)
    in_train[head] = True
    in_train[tail] = True
    info.update({
        'n_link': int(items.numel()),
        'n_link_entity_not_in_kg_train': int(
            (~in_train[item_entity[linked]]).sum()),
        'n_users': int(data['user'].num_nodes),
        'n_items_pyg_recs': num_items,
        'n_items_in_files': int(item[rates.train_mask | rates.val_mask
                                     | rates.test_mask].unique().numel()),
        'n_entities_pyg_recs': int(data['entity'].num_nodes),
        'n_relations': len(data.relation_names),
    })
    return info


__all__ = [
    'session_split_sizes',
    'prepare_session_root',
    'session_sequences',
    'export_session',
    'export_kg',
]
