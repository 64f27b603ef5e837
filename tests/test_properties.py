r"""Property-based tests (hypothesis) for session graphs and the readers of
malformed input: random sessions must give graphs with the invariants of
SR-GNN, and random malformed input must fail with our own error types
only, naming the line at fault."""
import os.path as osp
import pickle
import re
import tempfile
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyg_recs.data import (
    UnsafePickleError,
    safe_load,
    session_to_graph,
    sessions_to_graphs,
)
from pyg_recs.data.atomic import AtomicFileError, read_atomic, read_tsv
from pyg_recs.datasets.session_dataset import check_examples

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Session graphs ##############################################################

# Short sessions over few items (many repeats and self-loops such as 5, 5),
# and very long random sessions.
short_sessions = st.lists(st.integers(0, 12), min_size=1, max_size=25)
long_sessions = st.builds(
    lambda seed, n, k: np.random.default_rng(seed).integers(0, k, n).tolist(),
    st.integers(0, 2**32 - 1), st.integers(500, 5000), st.integers(1, 300))
sessions = st.one_of(short_sessions, short_sessions, long_sessions)


def check_session_graph(session, data):
    r"""Checks the graph of one session against its definition."""
    nodes = list(dict.fromkeys(session))  # Unique, in order of first click.
    assert data.x.tolist() == nodes
    assert data.num_nodes == len(nodes)
    click = data.click_index
    assert data.x[click].tolist() == session
    assert data.last_index.tolist() == [int(click[-1])]

    # Every transition is an edge, each once, sorted by source and target:
    transitions = {(int(a), int(b)) for a, b in zip(click[:-1], click[1:])}
    edges = [tuple(e) for e in data.edge_index.t().tolist()]
    assert edges == sorted(transitions)
    assert data.edge_index.dtype == torch.long

    # Weights per node sum to one in each direction:
    src, dst = data.edge_index
    n = len(nodes)
    out_sum = torch.zeros(n, dtype=torch.float64).index_add_(
        0, src, data.edge_weight_out.double())
    in_sum = torch.zeros(n, dtype=torch.float64).index_add_(
        0, dst, data.edge_weight_in.double())
    has_out = torch.bincount(src, minlength=n) > 0
    has_in = torch.bincount(dst, minlength=n) > 0
    assert torch.allclose(out_sum[has_out], torch.ones(int(has_out.sum()),
                                                       dtype=torch.float64))
    assert torch.allclose(in_sum[has_in], torch.ones(int(has_in.sum()),
                                                     dtype=torch.float64))
    assert (out_sum[~has_out] == 0).all() and (in_sum[~has_in] == 0).all()
    # ... and are uniform over the distinct neighbours:
    out_deg = torch.bincount(src, minlength=n).double()
    in_deg = torch.bincount(dst, minlength=n).double()
    assert torch.allclose(data.edge_weight_out.double(), 1 / out_deg[src])
    assert torch.allclose(data.edge_weight_in.double(), 1 / in_deg[dst])


@SETTINGS
@given(session=sessions, target=st.none() | st.integers(0, 10**6))
@example(session=[5], target=None)
@example(session=[5, 5], target=5)
@example(session=[5, 5, 5, 3, 5], target=None)
def test_session_to_graph_invariants(session, target):
    data = session_to_graph(session, target)
    check_session_graph(session, data)
    if target is None:
        assert 'y' not in data
    else:
        assert data.y.tolist() == [target]


def test_session_to_graph_examples():
    # A self-loop is an edge of its own; a single click has no edge.
    data = session_to_graph([5, 5])
    assert data.x.tolist() == [5]
    assert data.edge_index.tolist() == [[0], [0]]
    assert data.edge_weight_in.tolist() == [1.0]
    data = session_to_graph([7])
    assert data.edge_index.size() == (2, 0)
    assert data.last_index.tolist() == [0]


def split_graphs(data, slices, num):
    r"""Cuts the collated output of :func:`sessions_to_graphs` into
    :obj:`num` graphs."""
    out = []
    for i in range(num):
        graph = {}
        for key, value in data.to_dict().items():
            start, end = int(slices[key][i]), int(slices[key][i + 1])
            graph[key] = value[..., start:end]
        out.append(graph)
    return out


@SETTINGS
@given(batch=st.lists(sessions, min_size=0, max_size=12),
       with_targets=st.booleans())
def test_many_sessions_equal_one_at_a_time(batch, with_targets):
    targets = [len(s) for s in batch] if with_targets else None
    data, slices = sessions_to_graphs(batch, targets)
    graphs = split_graphs(data, slices, len(batch))
    for i, session in enumerate(batch):
        single = session_to_graph(session,
                                  None if targets is None else targets[i])
        assert set(graphs[i]) == set(single.to_dict())
        for key, value in single.to_dict().items():
            assert torch.equal(graphs[i][key], value), key

    # The flat (items, ptr) form gives the same graphs:
    items = np.asarray([v for s in batch for v in s], dtype=np.int64)
    ptr = np.cumsum([0] + [len(s) for s in batch]).astype(np.int64)
    flat, flat_slices = sessions_to_graphs((items, ptr), targets)
    for key, value in data.to_dict().items():
        assert torch.equal(flat[key], value)
        assert torch.equal(flat_slices[key], slices[key])


@SETTINGS
@given(batch=st.lists(st.lists(st.integers(-3, 2**31), max_size=5),
                      max_size=5))
def test_sessions_to_graphs_rejects_with_value_error(batch):
    try:
        data, slices = sessions_to_graphs(batch)
    except ValueError as e:
        assert ('empty' in str(e) and any(len(s) == 0 for s in batch)) or \
            ('non-negative' in str(e) and min(v for s in batch for v in s) < 0)
        return
    assert all(len(s) > 0 for s in batch)
    assert int(slices['last_index'][-1]) == len(batch)


def test_sessions_to_graphs_huge_ids():
    batch = [[4], [2**62], [1], [1], [0]]
    data, slices = sessions_to_graphs(batch)
    for graph, session in zip(split_graphs(data, slices, 5), batch):
        assert graph['x'].tolist() == session


def test_check_examples_rejects_ids_beyond_int64():
    with pytest.raises(ValueError):
        sessions, targets = check_examples(([[2**63]], [1]), 'x.txt')
        sessions_to_graphs(sessions, targets)


# SR-GNN pickles ##############################################################

scalars = (st.none() | st.booleans() | st.integers(-3, 10**6)
           | st.floats(allow_nan=True) | st.text(max_size=3)
           | st.binary(max_size=3))
junk = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=2), children, max_size=2),
    max_leaves=12)
# Mostly valid item ids with the occasional junk value:
near_ids = st.integers(0, 50) | st.integers(0, 50) | st.integers(0, 50) | junk
near_sessions = st.lists(near_ids, max_size=6) | junk
near_examples = st.tuples(st.lists(near_sessions, max_size=5),
                          st.lists(near_ids, max_size=5))
examples_or_junk = near_examples | near_examples | junk


@SETTINGS
@given(obj=examples_or_junk, as_list=st.booleans())
@example(obj=([[1, 2]], [3]), as_list=False)
@example(obj=([[1, True]], [3]), as_list=False)
@example(obj=([[]], [3]), as_list=False)
@example(obj=([[1]], [3, 4]), as_list=False)
@example(obj=([], []), as_list=False)
def test_check_examples_only_value_errors(obj, as_list):
    if as_list and isinstance(obj, tuple):
        obj = list(obj)
    # Through the whole reading path: pickle, restricted unpickler, checks
    # and graph building.
    try:
        loaded = safe_load(pickle.dumps(obj))
        sessions, targets = check_examples(loaded, 'train.txt')
    except ValueError as e:
        assert "'train.txt'" in str(e) or "'<bytes>'" in str(e)
        return
    assert len(sessions) == len(targets) > 0
    for session, target in zip(sessions, targets):
        assert len(session) > 0
        for value in list(session) + [target]:
            assert type(value) is int and value >= 0
    data, slices = sessions_to_graphs(sessions, targets)
    assert data.y.tolist() == list(targets)


@SETTINGS
@given(raw=st.binary(max_size=64)
       | st.builds(lambda obj, cut: pickle.dumps(obj)[:cut], junk,
                   st.integers(0, 40)))
def test_safe_load_random_bytes(raw):
    try:
        safe_load(raw)
    except (ValueError, UnsafePickleError):
        pass


@pytest.mark.parametrize('payload, name', [
    (b'cos\nsystem\n(S"echo 1"\ntR.', 'os.system'),  # GLOBAL + REDUCE
    (b'(cos\nsystem\nS"echo 1"\no.', 'os.system'),  # OBJ
    (b'(S"echo 1"\nios\nsystem\n.', 'os.system'),  # INST
    (b'\x80\x04\x8c\x02os\x8c\x06system\x93.', 'os.system'),  # STACK_GLOBAL
])
def test_safe_load_refuses_every_global_opcode(payload, name):
    with pytest.raises(UnsafePickleError, match=name):
        safe_load(payload)


def test_safe_load_refuses_extension_codes():
    import copyreg
    copyreg.add_extension('os', 'system', 240)
    try:
        with pytest.raises(UnsafePickleError, match='os.system'):
            safe_load(b'\x80\x02\x82\xf0.')  # EXT1 240
    finally:
        copyreg.remove_extension('os', 'system', 240)


# Atomic files ################################################################

HEADER = ['user_id:token', 'item_id:token', 'rating:float',
          'timestamp:float']
NAMES = [h.split(':')[0] for h in HEADER]

FIELD_VALUES = ['1', '42', '3.5', '-2', '1e3', 'abc', '', ' ', 'nan', 'inf',
                '1e400', '0x10', '"', "'", '#', 'é', 'a b', '\r', '\x00',
                'user_id:token', 'rating:float', ':', 'x:token_seq']
fields = st.sampled_from(FIELD_VALUES) | st.text(max_size=4)
lines = st.lists(fields, max_size=6).map('\t'.join)
headers = (st.just('\t'.join(HEADER)) | st.just('\t'.join(HEADER[:2]))
           | lines)


@st.composite
def atomic_bytes(draw):
    text = '\n'.join([draw(headers)] + draw(st.lists(lines, max_size=8)))
    raw = text.encode('utf-8')
    if draw(st.booleans()):
        raw = raw.replace(b'\n', b'\r\n')
    if draw(st.integers(0, 9)) == 0:
        raw = raw + draw(st.binary(min_size=1, max_size=4))  # Maybe bad UTF-8.
    if draw(st.integers(0, 9)) == 0:
        raw = b'\xef\xbb\xbf' + raw  # A byte-order mark.
    return raw


@pytest.fixture(scope='module')
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield folder


def write(folder, raw, name='x.inter'):
    path = osp.join(folder, name)
    with open(path, 'wb') as f:
        f.write(raw)
    return path


@SETTINGS
@given(raw=atomic_bytes(), strict=st.booleans())
def test_read_atomic_random_input(scratch, raw, strict):
    path = write(scratch, raw)
    num_lines = max(1, raw.replace(b'\r\n', b'\n').rstrip(b'\n').count(b'\n')
                    + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            df = read_atomic(path, strict=strict)
    except AtomicFileError as e:
        assert 1 <= e.line <= num_lines, (e.line, num_lines)
        assert str(e).startswith(f"'{path}', line {e.line}")
        return
    # Accepted: one row per non-blank body line, finite floats.
    body = raw.replace(b'\r\n', b'\n').split(b'\n')[1:]
    assert len(df) == sum(1 for line in body if line != b'')
    for name, type_ in df.attrs['types'].items():
        if type_ == 'float':
            assert np.isfinite(df[name].to_numpy()).all()


valid_token = st.text('abcxyz0123456789._-', min_size=1, max_size=6)
valid_float = (st.integers(-10**6, 10**6).map(str)
               | st.floats(-1e6, 1e6, allow_nan=False).map(repr))
valid_line = st.tuples(valid_token, valid_token, valid_float,
                       valid_float).map('\t'.join)
BAD_FLOATS = ['abc', 'nan', '', 'inf', '-inf', '1,5', '1.2.3', '1e400', '--1']


@st.composite
def corrupted_file(draw):
    r"""A valid atomic file with blank lines, and one corrupted line;
    returns the bytes and the expected line and field of the error."""
    body = draw(st.lists(valid_line | st.just(''), min_size=1, max_size=15))
    at = draw(st.integers(0, len(body) - 1))
    fields = draw(valid_line).split('\t')
    kind = draw(st.sampled_from(['missing', 'surplus', 'float']))
    if kind == 'missing':
        keep = draw(st.integers(1, 3))
        fields, field = fields[:keep], NAMES[keep]
    elif kind == 'surplus':
        fields, field = fields + draw(st.lists(valid_token, min_size=1,
                                               max_size=2)), 'field 5'
    else:
        col = draw(st.sampled_from([2, 3]))
        fields[col], field = draw(st.sampled_from(BAD_FLOATS)), NAMES[col]
    body.insert(at, '\t'.join(fields))
    body += draw(st.lists(valid_line | st.just(''), max_size=3))
    newline = draw(st.sampled_from(['\n', '\r\n']))
    raw = newline.join(['\t'.join(HEADER)] + body).encode()
    return raw, at + 2, field, kind


@SETTINGS
@given(case=corrupted_file())
def test_read_atomic_names_the_corrupted_line(scratch, case):
    raw, line, field, kind = case
    path = write(scratch, raw)
    with pytest.raises(AtomicFileError) as info:
        read_atomic(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(info.value).startswith(
        f"'{path}', line {line}, field '{field}': ")
    if kind == 'surplus':  # The lenient mode drops surplus fields.
        with pytest.warns(UserWarning, match=f'first on line {line}'):
            df = read_atomic(path, strict=False)
        assert list(df.columns) == NAMES


@SETTINGS
@given(values=st.lists(st.sampled_from(['1', '-7', '12', '3.0', '1.5', 'x',
                                        '', 'nan', '1e15', '2**3']),
                       min_size=1, max_size=10))
def test_read_tsv_int_column(scratch, values):
    path = write(scratch, '\n'.join(f'{i}\t{v}' for i, v in
                                    enumerate(values)).encode(), 'x.tsv')
    try:
        df = read_tsv(path, ['id', 'value'], ['token', 'int'])
    except AtomicFileError as e:
        bad = [i for i, v in enumerate(values)
               if v in ('1.5', 'x', '', 'nan', '2**3')]
        assert bad, values
        assert (e.line, e.field) == (bad[0] + 1, 'value')
        assert repr(values[bad[0]]) in str(e)
        return
    assert df['value'].tolist() == [int(float(v)) for v in values]


@pytest.mark.parametrize('value', ['1e20', '12345678901234567890'])
def test_read_tsv_int_overflow(scratch, value):
    path = write(scratch, f'0\t{value}\n'.encode(), 'x.tsv')
    try:
        df = read_tsv(path, ['id', 'value'], ['token', 'int'])
    except AtomicFileError as e:
        assert (e.line, e.field) == (1, 'value')
        return
    assert df['value'].tolist() == [int(float(value))]


# Failed processing ###########################################################

def processed_files(root):
    import os
    return sorted(name for _, _, files in os.walk(osp.join(root))
                  for name in files if not name.endswith(('.txt', '.inter',
                                                          '.kg', '.link')))


def test_failed_session_processing_leaves_no_file(tmp_path):
    from pyg_recs.datasets import SessionDataset
    raw = tmp_path / 'raw'
    raw.mkdir()
    (raw / 'train.txt').write_bytes(pickle.dumps(([[1, 2], [3]], [3, 4])))
    (raw / 'test.txt').write_bytes(pickle.dumps(([[1, 2], [3, -5]], [3, 4])))
    with pytest.raises(ValueError, match=r"test.txt', example 1: item ids "
                       r'must be non-negative ints below 2\*\*63 \(got -5\)'):
        SessionDataset(str(tmp_path))
    assert processed_files(tmp_path) == []


def test_failed_kg_processing_leaves_no_file(tmp_path):
    from pyg_recs.datasets import AtomicKGDataset
    raw = tmp_path / 'raw'
    raw.mkdir()
    (raw / 'x.inter').write_text('user_id:token\titem_id:token\n1\t2\n')
    (raw / 'x.kg').write_text('head_id:token\trelation_id:token\t'
                              'tail_id:token\ne1\tr\te2\n')
    (raw / 'x.link').write_text('item_id:token\tentity_id:token\n2\te1\n'
                                '2\n')
    with pytest.raises(AtomicFileError, match=r"x.link', line 3, field "
                       "'entity_id'"):
        AtomicKGDataset(str(tmp_path), 'x')
    assert processed_files(tmp_path) == []


# Raw click files #############################################################

DIGI_HEADER = 'session_id;user_id;item_id;timeframe;eventdate'
CLICK_VALUES = ['1', '2', '81766', '526309', 'NA', '', '-1', '1.5', 'x',
                '2016-05-09', '2016-13-01', '2014-04-07T10:51:09.277Z',
                '2014-04-07', 'S', '0', '"', ' ', '9' * 25, 'é']


@st.composite
def click_bytes(draw, sep, header):
    line = st.lists(st.sampled_from(CLICK_VALUES) | st.text(max_size=3),
                    max_size=6).map(sep.join)
    body = draw(st.lists(line, max_size=8))
    head = draw(st.sampled_from([header, None]) | line) if header else None
    text = '\n'.join(([head] if head is not None else []) + body)
    return text.encode('utf-8', 'surrogatepass')


@pytest.mark.parametrize('reader', ['diginetica', 'yoochoose'])
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_click_readers_random_input(scratch, reader, data):
    from pyg_recs.data import read_diginetica_clicks, read_yoochoose_clicks
    if reader == 'diginetica':
        raw = data.draw(click_bytes(';', DIGI_HEADER))
        fn = read_diginetica_clicks
    else:
        raw = data.draw(click_bytes(',', None))
        fn = read_yoochoose_clicks
    path = write(scratch, raw, f'clicks-{reader}.csv')
    # Bare carriage returns end lines too (universal newlines, as pandas).
    num_lines = len(re.split(rb'\r\n|\r|\n', raw))
    try:
        df = fn(path)
    except ValueError as e:
        assert str(e).startswith(f"'{path}'"), str(e)
        if ', line ' in str(e):
            line = int(str(e).split(', line ')[1].split(',')[0].split(':')[0])
            assert 1 <= line <= num_lines
        return
    assert len(df) > 0
