r"""Readers for tab-separated data files, above all the *atomic files* of
`RecBole <https://recbole.io/docs/user_guide/data/atomic_files.html>`_.

An atomic file (:obj:`.inter`, :obj:`.kg`, :obj:`.link`, :obj:`.item`,
:obj:`.user`, ...) is a tab-separated table whose first line is a typed
header of :obj:`name:type` fields, *e.g.*

.. code-block:: none

    user_id:token	item_id:token	rating:float	timestamp:float
    196	242	3	881250949

with the types :obj:`token` (a string id), :obj:`token_seq` (space-separated
tokens), :obj:`float` and :obj:`float_seq`.

Files are parsed by :mod:`pandas`' C parser; the checks around it are
vectorised over the raw bytes, so that a malformed file fails with an
:class:`AtomicFileError` naming the file, the line (1-based, the header is
line 1) and the field at fault instead of a silently shifted table.
"""
import codecs
import csv
import io
import os
import warnings
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

#: The column types of RecBole's atomic files.
ATOMIC_TYPES = ('token', 'token_seq', 'float', 'float_seq')


class AtomicFileError(ValueError):
    r"""A malformed data file: names the file, the 1-based line (the header
    is line 1) and the field at fault.

    Args:
        path (str): The file.
        line (int): The 1-based line number.
        field (str, optional): The field (column) at fault.
        message (str): What is wrong.
    """
    def __init__(self, path: str, line: int, field: Optional[str],
                 message: str) -> None:
        self.path = str(path)
        self.line = int(line)
        self.field = field
        where = f"'{self.path}', line {self.line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f'{where}: {message}')


def read_atomic(
    path: Union[str, os.PathLike],
    required: Optional[Union[Sequence[str], Mapping[str, str]]] = None,
    strict: bool = True,
):
    r"""Reads a RecBole atomic file into a :class:`pandas.DataFrame`.

    Columns are named without their type suffix; :obj:`token` columns are
    :obj:`str`, :obj:`float` columns :obj:`float64` (a value that is not a
    finite number, *e.g.* :obj:`nan` or an empty field, is an error), and
    :obj:`token_seq` / :obj:`float_seq` columns are kept as the raw
    space-separated :obj:`str`. The types of the header are in
    :obj:`df.attrs['types']`. The index of the frame holds the 1-based line
    number of every row in the file, so that later checks can name it too.
    Blank lines are skipped.

    Args:
        path (str): The atomic file.
        required (list of str or dict, optional): Column names that must be
            present, or a dictionary mapping each of them to its required
            type (*e.g.* :obj:`{'rating': 'float'}`). (default: :obj:`None`)
        strict (bool, optional): If set to :obj:`False`, surplus fields at
            the end of a line (more fields than the header has) are dropped
            with a warning, as RecBole's own reader does silently. Lines
            with too few fields are always an error. (default: :obj:`True`)

    Raises:
        AtomicFileError: If the file is empty, has no valid typed header, a
            line has the wrong number of fields, a :obj:`float` field is not
            a finite number or a required column is missing.
    """
    path = os.fspath(path)
    buf = _read_bytes(path)
    starts, ends = _line_bounds(buf)
    if len(starts) == 0 or ends[0] == starts[0]:
        raise AtomicFileError(
            path, 1, None, 'the file is empty or its first line is blank; '
            "expected a typed header of 'name:type' fields separated by tabs "
            f'(types: {", ".join(ATOMIC_TYPES)})')
    try:
        header = buf[starts[0]:ends[0]].decode('utf-8')
    except UnicodeDecodeError as e:
        raise AtomicFileError(path, 1, None,
                              f'the header is not valid UTF-8 ({e})') from e
    names, types = _parse_header(path, header)

    if required is not None:
        if isinstance(required, Mapping):
            required_types = dict(required)
        else:
            required_types = {name: None for name in required}
        for name, type_ in required_types.items():
            if name not in names:
                given = ', '.join(f'{n}:{t}' for n, t in zip(names, types))
                raise AtomicFileError(
                    path, 1, name, f"the required column '{name}' is "
                    f'missing from the header (got {given})')
            i = names.index(name)
            if type_ is not None and types[i] != type_:
                raise AtomicFileError(
                    path, 1, name, f"the column '{name}' must be of type "
                    f"'{type_}' (got '{types[i]}')")

    return _parse_body(path, buf, starts, ends, names, types, first=1,
                       strict=strict)


def read_tsv(
    path: Union[str, os.PathLike],
    names: Sequence[str],
    types: Sequence[str],
    strict: bool = True,
):
    r"""Reads a tab-separated file *without* header into a
    :class:`pandas.DataFrame`, with the checks of :func:`read_atomic`.

    Besides the atomic types, :obj:`'int'` parses a column as
    :obj:`int64` (a value that is not an integer is an error). The index of
    the frame holds the 1-based line number of every row.

    Args:
        path (str): The file.
        names (list of str): The column names.
        types (list of str): The column types, out of :obj:`'token'`,
            :obj:`'token_seq'`, :obj:`'float'`, :obj:`'float_seq'` and
            :obj:`'int'`.
        strict (bool, optional): If set to :obj:`False`, lines with a wrong
            number of fields are skipped with a warning instead of raising
            an error. (default: :obj:`True`)
    """
    path = os.fspath(path)
    if len(names) != len(types) or len(names) == 0:
        raise ValueError(f"'names' and 'types' must be non-empty and of the "
                         f'same length (got {len(names)} and {len(types)})')
    unknown = [t for t in types if t not in ATOMIC_TYPES + ('int', )]
    if len(unknown) > 0:
        raise ValueError(f"Invalid 'types' (got {unknown})")
    buf = _read_bytes(path)
    starts, ends = _line_bounds(buf)
    return _parse_body(path, buf, starts, ends, list(names), list(types),
                       first=0, strict=strict, skip_bad=not strict)


def _read_bytes(path: str) -> bytes:
    with open(path, 'rb') as f:
        buf = f.read()
    if buf.startswith(codecs.BOM_UTF8):
        buf = buf[len(codecs.BOM_UTF8):]
    if b'\r' in buf:  # Windows line endings.
        buf = buf.replace(b'\r\n', b'\n')
    return buf


def _line_bounds(buf: bytes) -> Tuple[np.ndarray, np.ndarray]:
    r"""Returns the start and end byte offsets of every line."""
    raw = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), newlines + 1])
    ends = np.concatenate([newlines, np.array([raw.size], dtype=np.int64)])
    if starts[-1] == raw.size:  # Nothing after the final newline.
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _parse_header(path: str, header: str) -> Tuple[list, list]:
    names, types = [], []
    for i, field in enumerate(header.split('\t')):
        parts = field.split(':')
        name, type_ = (parts[0], parts[1]) if len(parts) == 2 else ('', '')
        if name == '' or type_ not in ATOMIC_TYPES:
            raise AtomicFileError(
                path, 1, field, f'header field {i + 1} is not a typed '
                f"'name:type' field with a type out of "
                f'{", ".join(ATOMIC_TYPES)} (got {field!r}); is the header '
                'missing or the file not tab-separated?')
        if name in names:
            raise AtomicFileError(path, 1, field,
                                  f"the column '{name}' appears twice")
        names.append(name)
        types.append(type_)
    return names, types


def _parse_body(path: str, buf: bytes, starts: np.ndarray, ends: np.ndarray,
                names: list, types: list, first: int, strict: bool,
                skip_bad: bool = False):
    import pandas as pd

    num_cols = len(names)
    raw = np.frombuffer(buf, dtype=np.uint8)
    tabs = np.flatnonzero(raw == 9)
    starts, ends = starts[first:], ends[first:]
    line = np.arange(first + 1, first + 1 + starts.size)
    num_fields = (np.searchsorted(tabs, ends) -
                  np.searchsorted(tabs, starts) + 1)
    blank = ends == starts
    bad = ~blank & (num_fields != num_cols)
    keep = ~blank
    if bad.any():
        if skip_bad:
            warnings.warn(
                f"'{path}': skipped {int(bad.sum())} line(s) with a number "
                f'of fields other than {num_cols}, the first on line '
                f'{int(line[bad][0])}', stacklevel=3)
            keep &= ~bad
        else:
            surplus = num_fields > num_cols
            if not strict and not (bad & ~surplus).any():
                warnings.warn(
                    f"'{path}': dropped the surplus fields of "
                    f'{int(bad.sum())} line(s) with more than {num_cols} '
                    f'fields, the first on line {int(line[bad][0])}',
                    stacklevel=3)
            else:
                i = int(np.flatnonzero(bad & ~surplus if not strict else bad)
                        [0])
                got = int(num_fields[i])
                if got > num_cols:
                    field = f'field {num_cols + 1}'
                    what = (f"surplus field(s) after '{names[-1]}' "
                            '(strict=False relaxes this check)')
                else:
                    field = names[got]
                    what = (f"'{names[got]}' and later fields are missing; "
                            'is the file tab-separated?')
                raise AtomicFileError(
                    path, int(line[i]), field,
                    f'expected {num_cols} tab-separated fields '
                    f'({", ".join(names)}) but got {got}: {what}')

    if keep.all() or not keep.any():
        body = buf[starts[0]:] if starts.size > 0 else b''
    else:  # Only with 'skip_bad': rebuild the body from the good lines.
        body = b'\n'.join(buf[s:e] for s, e in zip(starts[keep], ends[keep]))
    rows = line[keep]

    if rows.size == 0:
        df = pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    else:
        try:
            df = pd.read_csv(
                io.BytesIO(body), sep='\t', header=None, names=names,
                usecols=list(range(num_cols)), dtype=str,
                quoting=csv.QUOTE_NONE, keep_default_na=False,
                na_filter=False, skip_blank_lines=True, lineterminator='\n',
                encoding='utf-8', engine='c')
        except UnicodeDecodeError as e:
            raise AtomicFileError(path, int(rows[0]), None,
                                  f'the file is not valid UTF-8 ({e})') from e
        if len(df) != rows.size:  # pragma: no cover (parser disagreement)
            raise RuntimeError(f"'{path}': parsed {len(df)} rows but found "
                               f'{rows.size} non-blank lines')
    df.index = pd.Index(rows, name='line')

    for name, type_ in zip(names, types):
        if type_ in ('float', 'int'):
            values = pd.to_numeric(df[name], errors='coerce').to_numpy(
                dtype=np.float64)
            invalid = ~np.isfinite(values)
            if type_ == 'int':
                invalid |= values != np.round(values)
                invalid |= np.abs(values) >= 2.0**63
            if invalid.any():
                i = int(np.flatnonzero(invalid)[0])
                kind = 'an integer' if type_ == 'int' else 'a finite number'
                raise AtomicFileError(
                    path, int(rows[i]), name,
                    f'expected {kind} (got {df[name].iloc[i]!r})')
            if type_ == 'int':
                df[name] = pd.to_numeric(df[name]).astype(np.int64)
            else:
                df[name] = values
    df.attrs['types'] = dict(zip(names, types))
    df.attrs['path'] = path
    return df


def check_nonempty(df, columns: Sequence[str]) -> None:
    r"""Raises an :class:`AtomicFileError` naming the first empty value in
    the :obj:`str` columns :obj:`columns` of a frame read by
    :func:`read_atomic` or :func:`read_tsv`."""
    for name in columns:
        empty = (df[name] == '').to_numpy()
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise AtomicFileError(df.attrs.get('path', '?'),
                                  int(df.index[i]), name,
                                  'the id is empty')


def atomic_types(df) -> Dict[str, str]:
    r"""Returns the :obj:`{column: type}` header of a frame read by
    :func:`read_atomic`."""
    return dict(df.attrs.get('types', {}))


__all__ = [
    'ATOMIC_TYPES',
    'AtomicFileError',
    'read_atomic',
    'read_tsv',
    'check_nonempty',
    'atomic_types',
]
