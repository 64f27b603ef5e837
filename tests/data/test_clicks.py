import os.path as osp
import random
import time

import numpy as np
import pandas as pd
import pytest

from pyg_recs.data import safe_load
from pyg_recs.data.clicks import (
    read_diginetica_clicks,
    read_yoochoose_clicks,
    srgnn_preprocess,
)
from tests.conftest import shared_path

HEADER = 'session_id;user_id;item_id;timeframe;eventdate\n'
LINE = '1;NA;5;10;2016-05-01\n'
YC = '1,2014-04-07T10:51:09.277Z,214536502,0\n'


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# Readers #####################################################################


def test_read_diginetica(tmp_path):
    path = write(tmp_path, 'views.csv',
                 HEADER + '2;NA;7;3;2016-05-02\n2;17;8;1;2016-05-03\n')
    df = read_diginetica_clicks(path)
    assert list(df.columns) == [
        'session_id', 'item_id', 'timeframe', 'eventdate'
    ]
    assert df['session_id'].tolist() == [2, 2]
    assert df['item_id'].tolist() == [7, 8]
    assert df['timeframe'].tolist() == [3, 1]
    assert df['eventdate'].dtype == np.dtype('datetime64[s]')
    assert df['eventdate'].tolist() == [
        pd.Timestamp('2016-05-02'), pd.Timestamp('2016-05-03')
    ]

    # The original camel-case header of the CIKM Cup file, columns swapped:
    path = write(tmp_path, 'camel.csv',
                 'sessionId;userId;itemId;eventdate;timeframe\n'
                 '3;NA;9;2016-05-04;12\n')
    df = read_diginetica_clicks(path)
    assert df.values.tolist() == [[3, 9, 12, pd.Timestamp('2016-05-04')]]


def test_read_yoochoose(tmp_path):
    path = write(tmp_path, 'clicks.dat',
                 YC + '1,2014-04-07T10:54:09.868Z,214536500,S\n'
                 '2,2014-04-08T00:00:00.000Z,9,2053\n')
    for chunksize in [1, 2, 100]:
        df = read_yoochoose_clicks(path, chunksize=chunksize)
        assert list(df.columns) == ['session_id', 'item_id', 'timestamp']
        assert df['session_id'].tolist() == [1, 1, 2]
        assert df['item_id'].tolist() == [214536502, 214536500, 9]
        assert df['session_id'].dtype == np.int32
        assert df['timestamp'].tolist() == [
            pd.Timestamp('2014-04-07 10:51:09.277'),
            pd.Timestamp('2014-04-07 10:54:09.868'),
            pd.Timestamp('2014-04-08'),
        ]
    # Ids beyond int32 stay int64; a header line is skipped:
    path = write(tmp_path, 'big.dat', 'session_id,timestamp,item_id,category'
                 '\n' + YC.replace('214536502', '99999999999'))
    df = read_yoochoose_clicks(path)
    assert df['item_id'].dtype == np.int64
    assert df['item_id'].tolist() == [99999999999]


DIGINETICA_ERRORS = [
    ('', ['is empty']),
    (HEADER, ['holds no clicks']),
    (LINE * 2, ['line 1', 'header line is missing']),
    (HEADER.replace(';', ',') + LINE.replace(';', ','),
     ['line 1', "';'-separated", "','-separated"]),
    ('session_id;user_id;item_id;eventdate\n1;NA;5;2016-05-01\n',
     ['line 1', 'timeframe']),
    (HEADER + LINE + '1;NA;x5;10;2016-05-01\n',
     ['line 3', "field 'item_id'", "'x5'"]),
    (HEADER + LINE * 3 + 'abc;NA;5;10;2016-05-01\n',
     ['line 5', "field 'session_id'"]),
    (HEADER + LINE + '1;NA;5;5.5;2016-05-01\n',
     ['line 3', "field 'timeframe'"]),
    (HEADER + LINE + '1;NA;5;10;2016-05-01;7\n',
     ['line 3', 'expected 5', 'saw 6']),
    (HEADER + LINE + '1;NA;5\n', ['line 3', "field 'timeframe'"]),
    (HEADER + LINE + '1;NA;5;10\n', ['line 3', "field 'eventdate'"]),
    (HEADER + LINE + LINE + '1;NA;5;10;2016-13-01\n',
     ['line 4', "field 'eventdate'", '2016-13-01']),
    (HEADER + LINE + '1;NA;5;10;01/05/2016\n', ['line 3', "'eventdate'"]),
    (HEADER + LINE + '\n' + LINE, ['line 3', 'empty']),
]


@pytest.mark.parametrize('text,parts', DIGINETICA_ERRORS)
@pytest.mark.parametrize('chunksize', [2, 1000])
def test_read_diginetica_errors(tmp_path, text, parts, chunksize):
    path = write(tmp_path, 'bad-views.csv', text)
    with pytest.raises(ValueError) as info:
        read_diginetica_clicks(path, chunksize=chunksize)
    msg = str(info.value)
    assert 'bad-views.csv' in msg
    for part in parts:
        assert part in msg


YOOCHOOSE_ERRORS = [
    ('', ['is empty']),
    (YC.replace(',', ';'), ['line 1', 'comma-separated', 'saw 1']),
    (YC + YC.replace(',', ';'), ['line 2', "field 'session_id'", "';'"]),
    ('420374,2014-04-06T18:44:58.314Z,214537888,12462,1\n',
     ['line 1', 'expected 4', 'saw 5']),
    (YC * 3 + '2,2014-04-07T10:51:09.277Z,5,0,9\n',
     ['line 4', 'expected 4', 'saw 5']),
    (YC + '2,2014-04-07T10:51:09.277Z,abc,0\n',
     ['line 2', "field 'item_id'", "'abc'"]),
    (YC * 4 + 'x,2014-04-07T10:51:09.277Z,5,0\n',
     ['line 5', "field 'session_id'"]),
    (YC + '2,2014-04-07T10:51:09.277Z\n', ['line 2', "field 'item_id'"]),
    (YC + '2,yesterday,5,0\n', ['line 2', "field 'timestamp'", 'yesterday']),
    (YC * 2 + '2,2014-04-31T10:51:09Z,5,0\n', ['line 3', "'timestamp'"]),
    (YC + '\n' + YC, ['line 2', 'empty']),
]


@pytest.mark.parametrize('text,parts', YOOCHOOSE_ERRORS)
@pytest.mark.parametrize('chunksize', [2, 1000])
def test_read_yoochoose_errors(tmp_path, text, parts, chunksize):
    path = write(tmp_path, 'bad-clicks.dat', text)
    with pytest.raises(ValueError) as info:
        read_yoochoose_clicks(path, chunksize=chunksize)
    msg = str(info.value)
    assert 'bad-clicks.dat' in msg
    for part in parts:
        assert part in msg


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.csv'):
        read_diginetica_clicks(str(tmp_path / 'nothing.csv'))
    with pytest.raises(FileNotFoundError, match='nothing.dat'):
        read_yoochoose_clicks(str(tmp_path / 'nothing.dat'))
    path = write(tmp_path, 'ok.dat', YC)
    with pytest.raises(ValueError, match="'chunksize'"):
        read_yoochoose_clicks(path, chunksize=0)


# SR-GNN preprocessing ########################################################


def test_sample_equals_reference():
    root = shared_path('srgnn-sample')
    df = read_diginetica_clicks(osp.join(root, 'sample_train-item-views.csv'))
    assert len(df) == 12391
    out = srgnn_preprocess(df, 'diginetica')
    ref = osp.join(root, 'srgnn-format')
    train = safe_load(osp.join(ref, 'train.txt'))
    test = safe_load(osp.join(ref, 'test.txt'))
    all_train_seq = safe_load(osp.join(ref, 'all_train_seq.txt'))
    assert len(out.train[0]) == 1205 and len(out.test[0]) == 99
    assert out.train[0] == train[0] and out.train[1] == train[1]
    assert out.test[0] == test[0] and out.test[1] == test[1]
    assert out.all_train_seq == all_train_seq
    flat = srgnn_preprocess(df, 'diginetica', as_arrays=True)
    assert unflatten(flat.train) == tuple(train)
    assert unflatten(flat.test) == tuple(test)
    assert flat.train[0][0].dtype == np.int64
    # item_ids maps the new ids back to the raw ones, all frequent:
    assert len(set(out.item_ids.tolist())) == 309
    counts = df['item_id'].value_counts()
    assert (counts[out.item_ids].to_numpy() >= 5).all()


def digi(rows):
    r"""Clicks from :obj:`(session, item, timeframe, day)` rows."""
    return pd.DataFrame({
        'session_id': [r[0] for r in rows],
        'item_id': [r[1] for r in rows],
        'timeframe': [r[2] for r in rows],
        'eventdate': pd.to_datetime(
            [f'2016-05-{r[3]:02d}' for r in rows]).astype('datetime64[s]'),
    })


def test_protocol_by_hand():
    rows = []
    # Items 10..13 are frequent; item 99 is clicked 4 times only.
    rows += [(1, 11, 5, 1), (1, 10, 5, 1), (1, 12, 1, 1)]  # tie: file order
    rows += [(2, 12, 0, 1), (2, 99, 1, 1), (2, 13, 2, 1)]
    rows += [(3, 13, 0, 2), (3, 10, 1, 2), (3, 11, 2, 2)]
    rows += [(4, 10, 0, 3)]  # length 1: dropped
    rows += [(5, 99, 0, 3), (5, 11, 1, 3)]  # left with one click: dropped
    rows += [(6, 10, 0, 3), (6, 12, 1, 3), (6, 13, 2, 3)]
    rows += [(7, 11, 0, 9), (7, 10, 1, 9)]  # split day (16 - 7): dropped
    rows += [(8, 99, 0, 16), (8, 12, 1, 16), (8, 11, 2, 16)]
    rows += [(9, 13, 0, 12), (9, 99, 1, 12), (9, 10, 2, 12)]
    rows += [(10, 12, 0, 14), (10, 13, 1, 14)]
    rows += [(6, 13, 3, 3)]  # session 6 again, later in the file
    rows += [(2, 11, 3, 2)]  # session 2 is dated by its last line: day 2
    out = srgnn_preprocess(digi(rows), 'diginetica')

    # Training sessions by date, ties in order of first appearance:
    # 1 (day 1), 2 (day 2, seen before 3 but last seen after it), 3 (day 2),
    # 6 (day 3). Session 1 sorted by timeframe, the tie kept: 12, 11, 10.
    assert out.item_ids.tolist() == [12, 11, 10, 13]
    assert out.all_train_seq == [[1, 2, 3], [1, 4, 2], [4, 3, 2],
                                 [3, 1, 4, 4]]
    # Longest prefix first:
    assert out.train == (
        [[1, 2], [1], [1, 4], [1], [4, 3], [4], [3, 1, 4], [3, 1], [3]],
        [3, 2, 2, 4, 2, 3, 4, 4, 1],
    )
    # Test sessions by date: 9 (day 12), 10 (day 14), 8 (day 16), with
    # item 99 removed:
    assert out.test == ([[4], [1], [1]], [3, 4, 2])

    # With 4 test days, session 7 is for training and session 9 falls on
    # the split day:
    out = srgnn_preprocess(digi(rows), 'diginetica', test_days=4)
    assert out.all_train_seq[-1] == [2, 3]
    assert out.test == ([[1], [1]], [4, 2])


def yc(rows):
    return pd.DataFrame({
        'session_id': [r[0] for r in rows],
        'item_id': [r[1] for r in rows],
        'timestamp': pd.to_datetime([r[2] for r in rows]),
    })


def test_yoochoose_protocol_by_hand():
    day = '2014-04-0{}T{}'
    rows = []
    for s in range(1, 9):  # Training sessions over days 1 to 3.
        rows += [(s, 1, day.format(1 + s % 3, '10:00:00.000')),
                 (s, 2 + s % 2, day.format(1 + s % 3, '10:00:01.000')),
                 (s, 1 + s % 3, day.format(1 + s % 3, '10:00:02.000'))]
    # Clicks stay in file order; the date is that of the last line:
    rows += [(20, 3, day.format(4, '13:00:00.000')),
             (20, 1, day.format(4, '12:30:00.000'))]
    # Exactly one day before the last click, once truncated to seconds:
    rows += [(21, 2, day.format(4, '11:59:59.000')),
             (21, 2, day.format(4, '12:00:00.999'))]
    rows += [(22, 1, day.format(5, '12:00:00.000')),
             (22, 3, day.format(5, '12:00:00.000'))]
    out = srgnn_preprocess(yc(rows), 'yoochoose')
    # By date, ties (sessions 3 and 6) in order of first appearance:
    # 3, 6 | 1, 4, 7 | 2, 5, 8.
    assert out.all_train_seq == [[1, 2, 1], [1, 3, 1], [1, 2, 3], [1, 3, 3],
                                 [1, 2, 3], [1, 3, 2], [1, 2, 2], [1, 3, 2]]
    assert out.item_ids.tolist() == [1, 3, 2]
    assert out.test == ([[2], [1]], [1, 2])
    assert len(out.train[0]) == 16

    # Fractions keep the most recent int(16 / N) examples:
    for frac, size in [('1/4', 4), ('1/3', 5), ('1/16', 1)]:
        part = srgnn_preprocess(yc(rows), 'yoochoose', fraction=frac)
        assert part.train[0] == out.train[0][-size:]
        assert part.train[1] == out.train[1][-size:]
        assert part.test == out.test
        # all_train_seq starts at the session of the first kept example:
        assert part.all_train_seq == out.all_train_seq[-((size + 1) // 2):]
    # int(16 / 64) == 0 keeps everything, as the reference's [-0:] does:
    part = srgnn_preprocess(yc(rows), 'yoochoose', fraction='1/64')
    assert part.train == out.train
    assert part.all_train_seq == out.all_train_seq


def naive_srgnn(df, dataset, fraction=None):
    r"""A plain-Python statement of the SR-GNN protocol, to check the
    vectorised implementation against."""
    clicks, last = {}, {}
    date_col = 'eventdate' if dataset == 'diginetica' else 'timestamp'
    for row in df.itertuples(index=False):
        key = (row.timeframe, ) if dataset == 'diginetica' else ()
        clicks.setdefault(row.session_id, []).append((key, row.item_id))
        date = getattr(row, date_col).floor('s')
        last[row.session_id] = date.value // 10**9
    clicks = {s: [i for _, i in sorted(c, key=lambda c: c[0])]
              for s, c in clicks.items() if len(c) > 1}
    count = {}
    for seq in clicks.values():
        for i in seq:
            count[i] = count.get(i, 0) + 1
    clicks = {s: [i for i in c if count[i] >= 5] for s, c in clicks.items()}
    clicks = {s: c for s, c in clicks.items() if len(c) >= 2}
    split = max(last[s] for s in clicks) - 86400 * (
        7 if dataset == 'diginetica' else 1)
    train = sorted((s for s in clicks if last[s] < split),
                   key=lambda s: last[s])
    test = sorted((s for s in clicks if last[s] > split),
                  key=lambda s: last[s])
    ids = {}
    seqs = [[ids.setdefault(i, len(ids) + 1) for i in clicks[s]]
            for s in train]
    test_seqs = [[ids[i] for i in clicks[s] if i in ids] for s in test]
    test_seqs = [seq for seq in test_seqs if len(seq) >= 2]

    def expand(seqs):
        out = [(seq[:n], seq[n], k) for k, seq in enumerate(seqs)
               for n in range(len(seq) - 1, 0, -1)]
        return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]

    xs, ys, ks = expand(seqs)
    if fraction is not None:
        size = len(xs) // int(fraction.split('/')[1])
        if size > 0:
            xs, ys, seqs = xs[-size:], ys[-size:], seqs[ks[-size]:]
    return (xs, ys), expand(test_seqs)[:2], seqs


@pytest.mark.parametrize('seed', range(8))
def test_against_naive(seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(rng.randint(20, 80)):
        session, day = rng.randint(1, 40), rng.randint(1, 28)
        for _ in range(rng.randint(1, 7)):
            rows.append((session, rng.randint(1, 12), rng.randint(0, 4), day))
    df = digi(rows)
    train, test, seqs = naive_srgnn(df, 'diginetica')
    out = srgnn_preprocess(df, 'diginetica')
    assert out.train == train and out.test == test
    assert out.all_train_seq == seqs

    rows = []
    for _ in range(rng.randint(20, 100)):
        session, start = rng.randint(1, 60), rng.randint(0, 4 * 86400)
        for k in range(rng.randint(1, 7)):
            t = pd.Timestamp('2014-04-01') + pd.Timedelta(
                milliseconds=1000 * start + rng.randint(0, 999) + k * 3000)
            rows.append((session, rng.randint(1, 10), t))
    df = yc(rows)
    for fraction in [None, '1/4', '1/64']:
        train, test, seqs = naive_srgnn(df, 'yoochoose', fraction)
        out = srgnn_preprocess(df, 'yoochoose', fraction=fraction)
        assert out.train == train and out.test == test
        assert out.all_train_seq == seqs
        flat = srgnn_preprocess(df, 'yoochoose', fraction=fraction,
                                as_arrays=True)
        assert unflatten(flat.train) == train
        assert unflatten(flat.test) == test
        assert unflatten((flat.all_train_seq, [])) == (seqs, [])


def unflatten(examples):
    (items, ptr), targets = examples
    sessions = [items[a:b].tolist() for a, b in zip(ptr[:-1], ptr[1:])]
    return sessions, list(targets)


@pytest.mark.skipif(not hasattr(time, 'tzset'), reason='needs time.tzset')
def test_local_time(monkeypatch):
    # 2014-03-09 is a daylight saving time change in New York: in local
    # time, 'one day before' the last click is an hour later on the clock.
    rows = [(s, i, f'2014-03-0{d}T{h}')
            for s, d, h in [(1, 7, '10:00:00'), (2, 8, '12:00:00'),
                            (3, 8, '11:30:00'), (4, 9, '12:00:00')]
            for i in (1, 2)]
    rows += [(s, i, '2014-03-07T09:00:00') for s in range(10, 14)
             for i in (1, 2)]
    monkeypatch.setenv('TZ', 'America/New_York')
    time.tzset()
    try:
        utc = srgnn_preprocess(yc(rows), 'yoochoose')
        local = srgnn_preprocess(yc(rows), 'yoochoose', local_time=True)
        expected = time.mktime(time.strptime('2014-03-09T12:00:00',
                                             '%Y-%m-%dT%H:%M:%S')) - 86400
        assert expected == time.mktime(time.strptime(
            '2014-03-08T11:00:00', '%Y-%m-%dT%H:%M:%S'))
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()
    # UTC: session 2 (12:00) is on the split second and dropped; session 3
    # is for training. Local: the split is at 11:00, both are for testing.
    assert len(utc.test[0]) == 1 and len(local.test[0]) == 3
    assert len(utc.all_train_seq) == len(local.all_train_seq) + 1


def test_preprocess_errors():
    df = digi([(1, 1, 0, 1), (1, 2, 1, 1)])
    with pytest.raises(ValueError, match="Invalid 'dataset'.*sample"):
        srgnn_preprocess(df, 'sample')
    with pytest.raises(ValueError, match="Invalid 'fraction'.*'one/3'"):
        srgnn_preprocess(df, fraction='one/3')
    with pytest.raises(ValueError, match="lack the column.*timestamp"):
        srgnn_preprocess(df, 'yoochoose')
    with pytest.raises(ValueError, match='No session is left'):
        srgnn_preprocess(df)
    with pytest.raises(ValueError, match="Invalid 'min_item_count'"):
        srgnn_preprocess(df, min_item_count=0)


def test_read_gzip_and_not_utf8(tmp_path):
    import gzip
    text = HEADER + '2;NA;7;3;2016-05-02\n2;17;8;1;2016-05-03\n'
    plain = read_diginetica_clicks(write(tmp_path, 'views.csv', text))
    path = tmp_path / 'views-gz.csv'  # Compressed under any name.
    path.write_bytes(gzip.compress(text.encode()))
    assert read_diginetica_clicks(str(path)).equals(plain)

    path = tmp_path / 'latin1.csv'
    path.write_bytes((HEADER + '2;NA;7;3;2016-05-02\n').encode() +
                     b'2;\xff;8;1;2016-05-03\n')
    with pytest.raises(ValueError, match="latin1.csv', line .*not valid "
                       "UTF-8"):
        read_diginetica_clicks(str(path))
    path.write_bytes(b'\xff' + HEADER.encode())
    with pytest.raises(ValueError, match="latin1.csv', line 1.*UTF-8"):
        read_diginetica_clicks(str(path))

    path = tmp_path / 'cut.csv'
    path.write_bytes(gzip.compress(text.encode())[:-12])
    with pytest.raises(ValueError, match="cut.csv"):
        read_diginetica_clicks(str(path))


def test_negative_ids_warn(tmp_path):
    path = write(tmp_path, 'neg.csv', HEADER + '1;NA;-5;10;2016-05-01\n'
                 '-2;NA;6;10;2016-05-01\n-2;NA;-7;10;2016-05-01\n')
    with pytest.warns(UserWarning) as record:
        df = read_diginetica_clicks(path)
    messages = [str(w.message) for w in record]
    assert any("2 clicks have a negative session_id (the first is click 2"
               in m for m in messages)
    assert any("2 clicks have a negative item_id" in m for m in messages)
    assert df['item_id'].tolist() == [-5, 6, -7]
