from pathlib import Path

import numpy as np
import pytest

from pyg_recs.data.atomic import (
    AtomicFileError,
    check_nonempty,
    read_atomic,
    read_tsv,
)

SHARED = Path(__file__).resolve().parents[3] / 'shared' / 'data'
TEST_KG = SHARED / 'recbole-test-kg'

HEADER = 'user_id:token\titem_id:token\trating:float\ttimestamp:float\n'


def write(tmp_path, text, name='x.inter', mode='w'):
    path = tmp_path / name
    if mode == 'wb':
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_read_atomic_types_and_line_index(tmp_path):
    path = write(
        tmp_path, HEADER + '1\t10\t4\t100\n\n2\tA7\t3.5\t200\n'
        '3\t10\t1\t300')
    df = read_atomic(path, required=['user_id', 'item_id'])
    assert list(df.columns) == ['user_id', 'item_id', 'rating', 'timestamp']
    assert df.attrs['types'] == {
        'user_id': 'token',
        'item_id': 'token',
        'rating': 'float',
        'timestamp': 'float',
    }
    assert df['user_id'].tolist() == ['1', '2', '3']
    assert df['item_id'].tolist() == ['10', 'A7', '10']
    assert df['rating'].dtype == np.float64
    assert df['rating'].tolist() == [4.0, 3.5, 1.0]
    # The blank line 3 is skipped, but the line numbers stay right:
    assert df.index.tolist() == [2, 4, 5]


def test_read_atomic_seq_columns_and_crlf(tmp_path):
    path = write(
        tmp_path, b'item_id:token\tclass:token_seq\tvec:float_seq\r\n'
        b'1\tAction Comedy\t0.5 1.5\r\n2\tDrama\t\r\n', mode='wb')
    df = read_atomic(path)
    assert df['class'].tolist() == ['Action Comedy', 'Drama']
    assert df['vec'].tolist() == ['0.5 1.5', '']
    assert df.index.tolist() == [2, 3]


def test_read_atomic_header_only(tmp_path):
    df = read_atomic(write(tmp_path, HEADER))
    assert len(df) == 0
    assert list(df.columns) == ['user_id', 'item_id', 'rating', 'timestamp']


@pytest.mark.parametrize('text, line, field, match', [
    ('', 1, None, 'empty'),
    ('\n' + HEADER, 1, None, 'empty or its first line is blank'),
    ('1\t10\t4\t100\n', 1, '1', 'typed'),
    ('user_id:token\titem_id:int\n1\t2\n', 1, 'item_id:int', 'typed'),
    ('user_id\titem_id:token\n1\t2\n', 1, 'user_id', 'typed'),
    ('user_id:token,item_id:token\n1,2\n', 1,
     'user_id:token,item_id:token', 'tab-separated'),
    ('a:token\ta:float\n1\t2\n', 1, 'a:float', 'twice'),
    (HEADER + '1\t10\t4\t100\n1,10,4,100\n', 3, 'item_id', 'got 1'),
    (HEADER + '1\t10\t4\n', 2, 'timestamp', 'got 3'),
    (HEADER + '1\t10\t4\t100\n\n1\t10\t4\t100\t7\n', 4, 'field 5',
     'surplus'),
    (HEADER + '1\t10\tnan\t100\n', 2, 'rating', "'nan'"),
    (HEADER + '1\t10\t4\t100\n1\t11\t\t100\n', 3, 'rating', "''"),
    (HEADER + '1\t10\tfour\t100\n', 2, 'rating', 'finite number'),
    (HEADER + '1\t10\t4\tinf\n', 2, 'timestamp', 'finite number'),
])
def test_read_atomic_malformed(tmp_path, text, line, field, match):
    path = write(tmp_path, text)
    with pytest.raises(AtomicFileError, match=match) as info:
        read_atomic(path)
    err = info.value
    assert err.line == line
    assert err.field == field
    assert str(path) in str(err) and f'line {line}' in str(err)


def test_read_atomic_required(tmp_path):
    path = write(tmp_path, 'user_id:token\trating:token\n1\t5\n')
    with pytest.raises(AtomicFileError, match="'item_id' is missing") as e:
        read_atomic(path, required=['user_id', 'item_id'])
    assert (e.value.line, e.value.field) == (1, 'item_id')
    with pytest.raises(AtomicFileError, match="type 'float'") as e:
        read_atomic(path, required={'rating': 'float'})
    assert (e.value.line, e.value.field) == (1, 'rating')
    df = read_atomic(path, required={'user_id': 'token', 'rating': 'token'})
    assert df['rating'].tolist() == ['5']


def test_read_atomic_lenient_drops_surplus_fields(tmp_path):
    path = write(tmp_path, HEADER + '1\t10\t4\t100\n2\t11\t5\t200\t1')
    with pytest.warns(UserWarning, match='line 3'):
        df = read_atomic(path, strict=False)
    assert df['item_id'].tolist() == ['10', '11']
    assert df['timestamp'].tolist() == [100.0, 200.0]
    # Too few fields stay an error:
    path = write(tmp_path, HEADER + '1\t10\t4\t100\t9\n2\t11\n')
    with pytest.raises(AtomicFileError) as e:
        read_atomic(path, strict=False)
    assert (e.value.line, e.value.field) == (3, 'rating')


def test_check_nonempty(tmp_path):
    path = write(tmp_path, 'head_id:token\ttail_id:token\na\tb\nc\t\n')
    df = read_atomic(path)
    with pytest.raises(AtomicFileError, match='empty') as e:
        check_nonempty(df, ['head_id', 'tail_id'])
    assert (e.value.line, e.value.field) == (3, 'tail_id')


def test_read_tsv(tmp_path):
    path = write(tmp_path, '0\t5\t4\n1\t6\t3\n', name='train.dat')
    df = read_tsv(path, ['user', 'item', 'rating'], ['int', 'int', 'float'])
    assert df['user'].dtype == np.int64
    assert df['item'].tolist() == [5, 6]
    assert df.index.tolist() == [1, 2]

    path = write(tmp_path, '0\t5\t4\n1\t6.5\t3\n', name='bad.dat')
    with pytest.raises(AtomicFileError, match='integer') as e:
        read_tsv(path, ['user', 'item', 'rating'], ['int', 'int', 'float'])
    assert (e.value.line, e.value.field) == (2, 'item')

    path = write(tmp_path, '0\t5\t4\n1 6 3\n2\t7\t5\n', name='bad2.dat')
    with pytest.raises(AtomicFileError) as e:
        read_tsv(path, ['user', 'item', 'rating'], ['int', 'int', 'float'])
    assert (e.value.line, e.value.field) == (2, 'item')
    with pytest.warns(UserWarning, match='skipped 1 line'):
        df = read_tsv(path, ['user', 'item', 'rating'],
                      ['int', 'int', 'float'], strict=False)
    assert df['user'].tolist() == [0, 2]
    assert df.index.tolist() == [1, 3]

    with pytest.raises(ValueError, match="Invalid 'types'"):
        read_tsv(path, ['user'], ['long'])


def test_read_atomic_real_file():
    path = TEST_KG / 'test.kg'
    if not path.exists():
        pytest.skip(f"'{path}' not found")
    import pandas as pd
    df = read_atomic(path, required=['head_id', 'relation_id', 'tail_id'])
    ref = pd.read_csv(path, sep='\t', dtype=str, keep_default_na=False)
    assert len(df) == len(ref) == 11338
    assert df['head_id'].tolist() == ref['head_id:token'].tolist()
    assert df['relation_id'].nunique() == 24

    # RecBole's own test.inter has a surplus field on its last line:
    with pytest.raises(AtomicFileError) as e:
        read_atomic(TEST_KG / 'test.inter')
    assert (e.value.line, e.value.field) == (6018, 'field 5')
    with pytest.warns(UserWarning):
        df = read_atomic(TEST_KG / 'test.inter', strict=False)
    assert len(df) == 6017
    assert df.iloc[-1].tolist() == ['130', '121', 5.0, 876250746.0]
