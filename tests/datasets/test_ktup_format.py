from pathlib import Path

import pytest
import torch

from pyg_recs.data.atomic import AtomicFileError
from pyg_recs.datasets.ktup_format import KTUPDataset

DBR = 'http://dbpedia.org/resource/'
DBO = 'http://dbpedia.org/ontology/'

FILES = {
    'u_map.dat': '0\t101\n1\t102\n2\t103\n',
    'i_map.dat': '0\t5\n1\t7\n2\t9\n',
    'train.dat': '0\t0\t5\n0\t1\t3\n1\t1\t4\n2\t2\t1\n',
    'valid.dat': '1\t0\t2\n',
    'test.dat': '0\t2\t4\n2\t0\t5\n',
    'kg/e_map.dat': f'0\t{DBR}A\n1\t{DBR}B\n2\t{DBR}C\n3\t{DBR}D\n',
    'kg/r_map.dat': f'0\t{DBO}director\n1\t{DBO}starring\n',
    # Triples are 'head tail relation':
    'kg/train.dat': '0\t2\t0\n1\t3\t1\n',
    'kg/test.dat': '0\t3\t1\n',
    # Item 42 is not in i_map.dat and entity Z not in e_map.dat: ignored.
    'i2kg_map.tsv': (f'5\tMovie Five\t{DBR}A\n9\tMovie Nine\t{DBR}B\n'
                     f'42\tFiltered Out\t{DBR}C\n7\tSeven\t{DBR}Z\n'),
}


def make_folder(root: Path, **changes) -> Path:
    files = dict(FILES)
    files.update(changes)
    for name, text in files.items():
        if text is None:
            continue
        path = root / 'raw' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_ktup_dataset(tmp_path):
    dataset = KTUPDataset(str(make_folder(tmp_path)))
    assert str(dataset) == ('KTUPDataset(num_users=3, num_items=3, '
                            'num_entities=5, num_relations=2)')
    data = dataset[0]
    assert data['user'].raw_id.tolist() == [101, 102, 103]
    assert data['item'].raw_id.tolist() == [5, 7, 9]
    assert data['entity'].raw_id == [DBR + c for c in 'ABCD'] + ['']
    assert data.relation_names == [DBO + 'director', DBO + 'starring']
    # Item 7 has no entity in e_map.dat and gets a slot of its own:
    assert data['item'].entity.tolist() == [0, 4, 1]
    assert data['entity'].in_kg.tolist() == [True] * 4 + [False]

    rates = data['user', 'rates', 'item']
    assert rates.edge_index.tolist() == [[0, 0, 1, 2, 1, 0, 2],
                                         [0, 1, 1, 2, 0, 2, 0]]
    assert rates.rating.tolist() == [5, 3, 4, 1, 2, 4, 5]
    assert rates.train_mask.tolist() == [True] * 4 + [False] * 3
    assert rates.val_mask.tolist() == [False] * 4 + [True, False, False]
    assert rates.test_mask.tolist() == [False] * 5 + [True, True]
    assert 'time' not in rates

    kg = data['entity', 'relation', 'entity']
    assert kg.edge_index.tolist() == [[0, 1, 0], [2, 3, 3]]
    assert kg.edge_type.tolist() == [0, 1, 1]
    assert kg.train_mask.tolist() == [True, True, False]
    assert not kg.val_mask.any()  # No kg/valid.dat.
    assert kg.test_mask.tolist() == [False, False, True]


def test_ktup_dataset_string_ids_and_gaps(tmp_path):
    root = make_folder(tmp_path, **{
        'u_map.dat': '0\talice\n2\tbob\n1\tcarol\n',
        'train.dat': '0\t0\t5\n2\t1\t3\n1\t1\t4\n2\t2\t1\n',
    })
    data = KTUPDataset(str(root))[0]
    assert data['user'].raw_id == ['alice', 'carol', 'bob']  # In id order.
    assert data['user', 'rates', 'item'].edge_index[0].tolist()[:4] == \
        [0, 2, 1, 2]


@pytest.mark.parametrize('name, text, line, field', [
    ('train.dat', '0\t0\t5\n7\t1\t3\n', 2, 'user'),
    ('test.dat', '0\t2\t4\n2\t3\t5\n', 2, 'item'),
    ('kg/test.dat', '0\t3\t1\n0\t3\t2\n', 2, 'relation'),
    ('kg/train.dat', '0\t2\t0\n9\t3\t1\n', 2, 'head'),
    ('valid.dat', '1\t0\n', 1, 'rating'),
    ('train.dat', '0\t0\tfive\n', 1, 'rating'),
    ('i_map.dat', '0\t5\n1\t7\n1\t9\n', 3, 'id'),
])
def test_ktup_dataset_malformed(tmp_path, name, text, line, field):
    root = make_folder(tmp_path, **{name: text})
    with pytest.raises(AtomicFileError) as info:
        KTUPDataset(str(root))
    err = info.value
    assert err.path.endswith(name.split('/')[-1])
    assert (err.line, err.field) == (line, field)


def test_ktup_dataset_lenient(tmp_path):
    root = make_folder(tmp_path, **{'test.dat': '0\t2\t4\nbroken line\n'})
    with pytest.raises(AtomicFileError):
        KTUPDataset(str(root))
    with pytest.warns(UserWarning, match='skipped 1 line'):
        dataset = KTUPDataset(str(root), strict=False)
    rates = dataset[0]['user', 'rates', 'item']
    assert int(rates.test_mask.sum()) == 1
    assert dataset.processed_dir.endswith('processed_lenient')


def test_ktup_dataset_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='joint-kg-recommender'):
        KTUPDataset(str(tmp_path))
    root = make_folder(tmp_path / 'x', **{'kg/r_map.dat': None})
    with pytest.raises(FileNotFoundError):
        KTUPDataset(str(root))
    assert torch.is_tensor(
        KTUPDataset(str(make_folder(tmp_path / 'y')))[0]['item'].entity)
