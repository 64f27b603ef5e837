import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from pyg_recs.data.atomic import AtomicFileError
from pyg_recs.datasets.knowledge_graph import AtomicKGDataset
from pyg_recs.datasets.movielens import MovieLens100KKG

SHARED = Path(__file__).resolve().parents[3] / 'shared' / 'data'
TEST_KG = SHARED / 'recbole-test-kg'
ML100K = SHARED / 'ml-100k-kg'

RATES = ('user', 'rates', 'item')
ALIGNED = ('item', 'aligned_with', 'entity')
RELATION = ('entity', 'relation', 'entity')


def link_raw(src: Path, root: Path, names) -> Path:
    if not src.exists():
        pytest.skip(f"'{src}' not found")
    raw = root / 'raw'
    raw.mkdir(parents=True)
    for name in names:
        os.symlink(src / name, raw / name)
    return root


def write_raw(root: Path, name: str, inter: str, kg: str, link: str) -> Path:
    raw = root / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f'{name}.inter').write_text(inter)
    (raw / f'{name}.kg').write_text(kg)
    (raw / f'{name}.link').write_text(link)
    return root


INTER = ('user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
         'u2\t10\t4\t100\n'
         'u1\t10\t3\t101\n'
         'u1\t9\t5\t102\n'
         'u1\t10\t1\t103\n'  # A repeated pair: the first line is kept.
         'u2\t11\t2\t104\n')
KG = ('head_id:token\trelation_id:token\ttail_id:token\n'
      'e.b\tdirected_by\te.x\n'
      'e.a\tstarring\te.y\n'
      'e.b\tstarring\te.y\n'
      'e.a\tstarring\te.y\n')  # A repeated triple: kept once.
LINK = 'item_id:token\tentity_id:token\n9\te.b\n10\te.a\n'


def test_atomic_kg_dataset_tiny(tmp_path):
    root = write_raw(tmp_path, 'tiny', INTER, KG, LINK)
    dataset = AtomicKGDataset(str(root), 'tiny', ratios=(1.0, 0.0, 0.0),
                              kg_ratios=(1.0, 0.0, 0.0))
    assert str(dataset) == ('AtomicKGDataset(tiny, num_users=2, num_items=3, '
                            'num_entities=5, num_relations=2)')
    data = dataset[0]
    assert isinstance(data, HeteroData)
    assert data['user'].raw_id == ['u1', 'u2']  # Not all numeric: str.
    assert data['item'].raw_id.tolist() == [9, 10, 11]  # Numeric order.
    # Entities in string order, then a slot for the unlinked item 11:
    assert data['entity'].raw_id == ['e.a', 'e.b', 'e.x', 'e.y', '']
    assert data['entity'].in_kg.tolist() == [True] * 4 + [False]
    assert data['item'].entity.tolist() == [1, 0, 4]
    assert data[ALIGNED].edge_index.tolist() == [[0, 1, 2], [1, 0, 4]]
    assert data.relation_names == ['directed_by', 'starring']

    rates = data[RATES]
    assert rates.edge_index.tolist() == [[1, 0, 0, 1], [1, 1, 0, 2]]
    assert rates.rating.tolist() == [4.0, 3.0, 5.0, 2.0]
    assert rates.time.dtype == torch.long
    assert rates.time.tolist() == [100, 101, 102, 104]
    assert bool(rates.train_mask.all())

    kg = data[RELATION]
    assert kg.edge_index.tolist() == [[1, 0, 1], [2, 3, 3]]
    assert kg.edge_type.tolist() == [0, 1, 1]
    assert dataset.num_relations == 2 and dataset.num_entities == 5


def test_atomic_kg_dataset_reload_and_processed_dir(tmp_path):
    root = write_raw(tmp_path, 'tiny', INTER, KG, LINK)
    dataset = AtomicKGDataset(str(root), 'tiny', ratios=(0.5, 0.0, 0.5),
                              seed=3)
    assert dataset.processed_dir.endswith(
        os.path.join('processed', 'tiny_r0.5-0-0.5_kg0.7-0.1-0.2_seed3'))
    path = Path(dataset.processed_paths[0])
    stamp = path.stat().st_mtime_ns
    stats = json.loads((path.parent / 'stats.json').read_text())
    assert stats['num_interactions'] == 4 and stats['num_triples'] == 3
    assert stats['num_linked_items'] == 2

    again = AtomicKGDataset(str(root), 'tiny', ratios=(0.5, 0.0, 0.5),
                            seed=3)
    assert path.stat().st_mtime_ns == stamp  # Loaded, not processed again.
    assert torch.equal(again[0][RATES].test_mask, dataset[0][RATES].test_mask)

    other = AtomicKGDataset(str(root), 'tiny', ratios=(0.5, 0.0, 0.5),
                            seed=4)
    assert other.processed_dir != dataset.processed_dir


def test_atomic_kg_dataset_missing_raw(tmp_path):
    with pytest.raises(FileNotFoundError, match='tiny.inter'):
        AtomicKGDataset(str(tmp_path), 'tiny')
    with pytest.raises(ValueError, match="Invalid 'ratios'"):
        AtomicKGDataset(str(tmp_path), 'tiny', ratios=(0.5, 0.5, 0.5))


@pytest.mark.parametrize('part, text, file, line, field', [
    ('inter', INTER.split('\n', 1)[1], 'inter', 1, 'u2'),
    ('inter', INTER.replace('rating:float', 'rating:number'), 'inter', 1,
     'rating:number'),
    ('inter', INTER.replace('u1\t9\t5\t102', 'u1,9,5,102'), 'inter', 4,
     'item_id'),
    ('inter', INTER.replace('u1\t9\t5\t102', 'u1\t9\tNaN\t102'), 'inter', 4,
     'rating'),
    ('inter', INTER.replace('rating:float', 'rating:token'), 'inter', 1,
     'rating'),
    ('inter', INTER.replace('u1\t9', '\t9'), 'inter', 4, 'user_id'),
    ('link', LINK + '12\te.x\n', 'link', 4, 'item_id'),
    ('link', LINK + '9\te.x\n', 'link', 4, 'item_id'),
    ('kg', KG.replace('head_id:token\t', ''), 'kg', 1, 'head_id'),
    ('kg', KG + 'e.c\tstarring\n', 'kg', 6, 'tail_id'),
])
def test_atomic_kg_dataset_malformed(tmp_path, part, text, file, line, field):
    files = {'inter': INTER, 'kg': KG, 'link': LINK}
    files[part] = text
    root = write_raw(tmp_path, 'bad', files['inter'], files['kg'],
                     files['link'])
    with pytest.raises(AtomicFileError) as info:
        AtomicKGDataset(str(root), 'bad')
    err = info.value
    assert err.path.endswith(f'bad.{file}')
    assert (err.line, err.field) == (line, field)
    assert f"bad.{file}', line {line}, field '{field}'" in str(err)


def test_recbole_test_kg(tmp_path):
    root = link_raw(TEST_KG, tmp_path,
                    ['test.inter', 'test.kg', 'test.link'])
    # RecBole's file has a stray fifth field on its last line (6018):
    with pytest.raises(AtomicFileError, match="line 6018, field 'field 5'"):
        AtomicKGDataset(str(root), 'test')

    with pytest.warns(UserWarning, match='line 6018'):
        dataset = AtomicKGDataset(str(root), 'test', strict=False)
    data = dataset[0]
    assert data['user'].num_nodes == 171
    assert data['item'].num_nodes == 200
    assert data['entity'].num_nodes == 6033 + 2
    assert int(data['entity'].in_kg.sum()) == 6033
    assert len(data.relation_names) == 24
    rates, kg = data[RATES], data[RELATION]
    assert rates.edge_index.size(1) == 6017
    assert kg.edge_index.size(1) == 11338
    assert int(data['entity'].in_kg[data['item'].entity].sum()) == 198
    assert int(kg.edge_index.max()) < 6033  # Slots hold no triples.

    import pandas as pd
    inter = pd.read_csv(TEST_KG / 'test.inter', sep='\t', dtype=str,
                        usecols=[0, 1, 2])
    link = pd.read_csv(TEST_KG / 'test.link', sep='\t', dtype=str)
    kg_df = pd.read_csv(TEST_KG / 'test.kg', sep='\t', dtype=str)

    # Every interaction maps back to its raw ids and rating:
    user_ids = data['user'].raw_id.numpy()
    item_ids = data['item'].raw_id.numpy()
    row, col = rates.edge_index.numpy()
    assert (user_ids[row].astype(str) == inter['user_id:token']).all()
    assert (item_ids[col].astype(str) == inter['item_id:token']).all()
    assert np.allclose(rates.rating.numpy(),
                       inter['rating:float'].astype(float))
    # Every link maps back to its entity:
    entity_ids = np.asarray(data['entity'].raw_id, dtype=object)
    item_pos = {str(v): i for i, v in enumerate(item_ids)}
    for raw_item, raw_entity in zip(link['item_id:token'],
                                    link['entity_id:token']):
        assert entity_ids[data['item'].entity[item_pos[raw_item]]] == \
            raw_entity
    # And every triple:
    head, tail = kg.edge_index.numpy()
    relation = np.asarray(data.relation_names, dtype=object)
    assert (entity_ids[head] == kg_df['head_id:token']).all()
    assert (entity_ids[tail] == kg_df['tail_id:token']).all()
    assert (relation[kg.edge_type.numpy()] == kg_df['relation_id:token']).all()

    # Splits: disjoint, complete, every user keeps a training interaction:
    masks = [rates.train_mask, rates.val_mask, rates.test_mask]
    assert bool((masks[0] ^ masks[1] ^ masks[2]).all())
    assert bool((masks[0] | masks[1] | masks[2]).all())
    assert torch.bincount(rates.edge_index[0][masks[0]],
                          minlength=171).min() >= 1
    kg_masks = [kg.train_mask, kg.val_mask, kg.test_mask]
    assert [int(m.sum()) for m in kg_masks] == [7936, 1134, 2268]


def test_movielens_100k_kg(tmp_path):
    root = link_raw(ML100K, tmp_path,
                    ['ml-100k.inter', 'ml-100k.kg', 'ml-100k.link'])
    t = time.perf_counter()
    dataset = MovieLens100KKG(str(root))  # Raw files present: no download.
    seconds = time.perf_counter() - t
    data = dataset[0]
    assert data['user'].num_nodes == 943
    assert data['item'].num_nodes == 1682
    assert data[RATES].edge_index.size(1) == 100_000
    assert data[RELATION].edge_index.size(1) == 91_631
    assert int(data['entity'].in_kg.sum()) == 34_628
    assert data['entity'].num_nodes == 34_628 + 84
    assert len(data.relation_names) == 24
    assert int(data['entity'].in_kg[data['item'].entity].sum()) == 1_598
    assert data['user'].raw_id.tolist() == list(range(1, 944))
    assert data['item'].raw_id.tolist() == list(range(1, 1683))
    rates = data[RATES]
    n = [int(rates[f'{s}_mask'].sum()) for s in ('train', 'val', 'test')]
    assert sum(n) == 100_000 and n[0] > 70_000 and n[2] > 19_000
    assert seconds < 60


@pytest.mark.download
def test_movielens_100k_kg_download(tmp_path):
    dataset = MovieLens100KKG(str(tmp_path))
    assert dataset[0][RATES].edge_index.size(1) == 100_000


def test_atomic_kg_dataset_empty_kg(tmp_path):
    header = KG.split('\n', 1)[0] + '\n'
    root = write_raw(tmp_path, 'nokg', INTER, header, LINK)
    with pytest.raises(AtomicFileError, match=r"nokg.kg', line 2: the file "
                       "holds no triples"):
        AtomicKGDataset(str(root), 'nokg')


def test_atomic_kg_dataset_link_outside_kg_warns(tmp_path):
    root = write_raw(tmp_path, 'out', INTER, KG, LINK + '11\te.zzz\n')
    with pytest.warns(UserWarning, match=r"out.link': 1 of 3 linked "
                      r"entities occur in no triple of 'out.kg' \(the first "
                      r"on line 4, 'e.zzz'\)"):
        AtomicKGDataset(str(root), 'out')
