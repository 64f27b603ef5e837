r"""Raw click logs for session-based recommendation and the preprocessing of
`SR-GNN <https://arxiv.org/abs/1811.00855>`_.

Two readers turn the raw click files of the public benchmarks into
:class:`pandas.DataFrame` objects, one row per click in file order:

* :func:`read_diginetica_clicks` reads :obj:`train-item-views.csv` of the
  `CIKM Cup 2016 <https://competitions.codalab.org/competitions/11161>`_
  (Diginetica), a :obj:`;`-separated file with the header
  :obj:`session_id;user_id;item_id;timeframe;eventdate` (the original
  camel-case header :obj:`sessionId;userId;itemId;timeframe;eventdate` is
  accepted too),
* :func:`read_yoochoose_clicks` streams :obj:`yoochoose-clicks.dat` of the
  `RecSys Challenge 2015 <https://recsys.acm.org/recsys15/challenge/>`_
  (33 million lines of :obj:`session_id,timestamp,item_id,category`, no
  header) in chunks and keeps only the needed columns in compact dtypes.

:func:`srgnn_preprocess` then applies the preprocessing of the SR-GNN
reference code (:obj:`datasets/preprocess.py` of
`CRIPAC-DIG/SR-GNN <https://github.com/CRIPAC-DIG/SR-GNN>`_) with vectorised
:obj:`numpy`/:obj:`pandas` operations, and returns exactly the lists the
reference pickles hold. Malformed input raises a :class:`ValueError` that
names the file, the line (1-based, a header is line 1) and the field.
"""
import csv
import gzip
import os.path as osp
import re
import time
import warnings
from itertools import islice
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas

Examples = Tuple[List[List[int]], List[int]]
FlatExamples = Tuple[Tuple[np.ndarray, np.ndarray], np.ndarray]

DIGINETICA_COLUMNS = ('session_id', 'user_id', 'item_id', 'timeframe',
                      'eventdate')
YOOCHOOSE_COLUMNS = ('session_id', 'timestamp', 'item_id', 'category')

#: The test window of the SR-GNN protocol in days.
TEST_DAYS = {'diginetica': 7, 'yoochoose': 1}

_INT32_MAX = np.iinfo(np.int32).max


class SRGNNSplits(NamedTuple):
    r"""The output of :func:`srgnn_preprocess`, the content of the three
    SR-GNN pickles plus the item mapping.

    Attributes:
        train ((list, list)): Training examples :obj:`(prefixes, targets)`
            (with :obj:`as_arrays=True`, :obj:`((items, ptr), targets)`).
        test ((list, list)): Test examples, in the same form.
        all_train_seq (list): The whole training sessions the training
            examples come from (:obj:`all_train_seq.txt`; with
            :obj:`as_arrays=True`, :obj:`(items, ptr)`).
        item_ids (numpy.ndarray): The original id of every item:
            :obj:`item_ids[i - 1]` is the raw id of item :obj:`i`.
    """
    train: Union[Examples, FlatExamples]
    test: Union[Examples, FlatExamples]
    all_train_seq: Union[List[List[int]], Tuple[np.ndarray, np.ndarray]]
    item_ids: np.ndarray


# Readers #####################################################################


def read_diginetica_clicks(
    path: str,
    chunksize: int = 1_000_000,
) -> 'pandas.DataFrame':
    r"""Reads the Diginetica click file :obj:`train-item-views.csv` of the
    `CIKM Cup 2016 <https://competitions.codalab.org/competitions/11161>`_.

    The file is :obj:`;`-separated with the header
    :obj:`session_id;user_id;item_id;timeframe;eventdate` (or the original
    :obj:`sessionId;userId;itemId;timeframe;eventdate`); :obj:`user_id` is
    mostly :obj:`NA` and is dropped.

    Returns a :class:`pandas.DataFrame` with one row per click in file order
    and the columns :obj:`session_id`, :obj:`item_id`, :obj:`timeframe`
    (:obj:`int64`, the time of the click within its session) and
    :obj:`eventdate` (:obj:`datetime64[s]`, the day of the click).

    Args:
        path (str): The path of the file.
        chunksize (int, optional): The number of lines parsed at once.
            (default: :obj:`1_000_000`)

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is empty, has no header, another separator
            or number of fields, a non-integer id or time, or a date that
            is not :obj:`YYYY-MM-DD`; the message names the file, the line
            and the field.
    """
    first = _first_line(path)
    fields = [_normalise(name) for name in first.split(';')]
    wanted = [_normalise(name) for name in DIGINETICA_COLUMNS]
    missing = [c for c, n in zip(DIGINETICA_COLUMNS, wanted)
               if n not in fields]
    if missing:
        header = ';'.join(DIGINETICA_COLUMNS)
        if len(fields) == 1 and (',' in first or '\t' in first):
            sep = ',' if ',' in first else '\\t'
            raise ValueError(
                f"'{path}', line 1: expected a ';'-separated header "
                f"'{header}' but the line is '{sep}'-separated "
                f"(got {first!r})")
        if _is_int(first.split(';')[0]):
            raise ValueError(
                f"'{path}', line 1: the header line is missing (expected "
                f"'{header}', got the data line {first!r})")
        raise ValueError(
            f"'{path}', line 1: the header lacks the column(s) {missing} "
            f"(expected '{header}', got {first!r})")
    if len(set(fields)) != len(fields):
        raise ValueError(f"'{path}', line 1: duplicate column names in the "
                         f"header {first!r}")

    names = list(first.split(';'))
    rename = {names[fields.index(n)]: c
              for n, c in zip(wanted, DIGINETICA_COLUMNS)}
    keep = ['session_id', 'item_id', 'timeframe', 'eventdate']
    frames = []
    for chunk, line in _read_chunks(
            path, sep=';', names=names, num_header=1,
            int_columns=[n for n, c in rename.items() if c in keep[:3]],
            rename=rename, chunksize=chunksize):
        chunk = chunk[keep]
        chunk['eventdate'] = _parse_dates(path, chunk['eventdate'], line,
                                          'eventdate')
        frames.append(chunk)
    return _concat(path, frames, keep)


def read_yoochoose_clicks(
    path: str,
    chunksize: int = 2_000_000,
) -> 'pandas.DataFrame':
    r"""Reads the YOOCHOOSE click file :obj:`yoochoose-clicks.dat` of the
    `RecSys Challenge 2015 <https://recsys.acm.org/recsys15/challenge/>`_.

    The file has no header and four comma-separated fields
    :obj:`session_id,timestamp,item_id,category`, *e.g.*
    :obj:`1,2014-04-07T10:51:09.277Z,214536502,0` (the category is
    :obj:`S`, a number or a brand id and is dropped). A header line
    :obj:`session_id,timestamp,item_id,category`, as the SR-GNN reference
    code expects one, is accepted too. The 33 million lines are streamed
    :obj:`chunksize` lines at a time.

    Returns a :class:`pandas.DataFrame` with one row per click in file order
    and the columns :obj:`session_id`, :obj:`item_id` (:obj:`int32` when
    the ids fit, :obj:`int64` otherwise) and :obj:`timestamp`
    (:obj:`datetime64[ms]`, UTC).

    Args:
        path (str): The path of the file.
        chunksize (int, optional): The number of lines parsed at once.
            (default: :obj:`2_000_000`)

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is empty, has another separator or number
            of fields, a non-integer id or a timestamp that is not ISO 8601;
            the message names the file, the line and the field.
    """
    first = _first_line(path)
    fields = first.split(',')
    norm = [_normalise(name) for name in fields]
    wanted = [_normalise(name) for name in YOOCHOOSE_COLUMNS]
    num_header = 0
    names = list(YOOCHOOSE_COLUMNS)
    if all(n in norm for n in wanted) and len(set(norm)) == len(norm):
        num_header = 1  # A header line as the reference code needs it.
        names = [YOOCHOOSE_COLUMNS[wanted.index(n)] if n in wanted else n
                 for n in norm]
    elif len(fields) != len(YOOCHOOSE_COLUMNS):
        hint = ''
        if len(fields) == 1 and (';' in first or '\t' in first):
            hint = ' (wrong separator: the file must be comma-separated)'
        raise ValueError(
            f"'{path}', line 1: expected {len(YOOCHOOSE_COLUMNS)} "
            f"comma-separated fields {', '.join(YOOCHOOSE_COLUMNS)}, saw "
            f"{len(fields)}{hint} (got {first!r})")

    keep = ['session_id', 'item_id', 'timestamp']
    frames = []
    for chunk, line in _read_chunks(
            path, sep=',', names=names, num_header=num_header,
            int_columns=['session_id', 'item_id'], rename={},
            chunksize=chunksize):
        chunk = chunk[keep].copy()
        for col in ('session_id', 'item_id'):
            chunk[col] = _compact(chunk[col])
        chunk['timestamp'] = _parse_timestamps(path, chunk['timestamp'],
                                               line, 'timestamp')
        frames.append(chunk)
    return _concat(path, frames, keep)


def _is_gzip(path: str) -> bool:
    with open(path, 'rb') as f:
        return f.read(2) == b'\x1f\x8b'


def _open_text(path: str):
    r"""Opens a click log as UTF-8 text, gzip-compressed or not (detected
    from the content, as a downloaded file may keep any name)."""
    if _is_gzip(path):
        return gzip.open(path, 'rt', encoding='utf-8-sig', newline='')
    return open(path, 'r', encoding='utf-8-sig', newline='')


def _not_utf8(path: str, error: UnicodeDecodeError,
              line: Optional[int] = None) -> ValueError:
    where = f", line {line} or later" if line is not None else ''
    return ValueError(f"'{path}'{where}: the file is not valid UTF-8 "
                      f"({error}); convert it, e.g. with 'iconv -f latin1 "
                      f"-t utf-8'")


def _first_line(path: str) -> str:
    if not osp.isfile(path):
        raise FileNotFoundError(f"No such file: '{path}'")
    try:
        with _open_text(path) as f:
            first = f.readline()
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e, 1) from None
    except (OSError, EOFError) as e:  # A truncated gzip file.
        raise ValueError(f"Could not read '{path}': {e}") from None
    first = first.rstrip('\r\n')
    if first.strip() == '':
        if osp.getsize(path) == 0:
            raise ValueError(f"'{path}' is empty")
        raise ValueError(f"'{path}', line 1: the line is empty")
    return first


def _normalise(name: str) -> str:
    return name.strip().lower().replace('_', '')


def _is_int(value: object) -> bool:
    r"""Whether :obj:`pandas` reads :obj:`value` as an integer (it also
    takes integral floats such as :obj:`5.0`)."""
    value = str(value).strip()
    if re.fullmatch(r'[+-]?\d+', value):
        return abs(int(value)) < 2**63
    try:
        number = float(value)
    except ValueError:
        return False
    return '_' not in value and number.is_integer() and abs(number) < 2**63


def _read_chunks(path, sep, names, num_header, int_columns, rename,
                 chunksize):
    r"""Yields :obj:`(chunk, first_line)` pairs with the integer columns
    parsed, and turns every parsing failure into an error naming the file,
    the line and the field."""
    import pandas as pd

    if chunksize < 1:
        raise ValueError(f"Invalid 'chunksize' (got {chunksize}); expected "
                         f"a positive number of lines")
    dtype = {name: 'str' for name in names}
    dtype.update({name: 'int64' for name in int_columns})
    kwargs = dict(sep=sep, header=None, names=names, index_col=False,
                  quoting=csv.QUOTE_NONE, skip_blank_lines=False,
                  na_filter=False, engine='c', encoding='utf-8-sig',
                  compression='gzip' if _is_gzip(path) else None)
    try:
        reader = pd.read_csv(path, skiprows=num_header, dtype=dtype,
                             chunksize=chunksize, **kwargs)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    except (OSError, EOFError) as e:  # A truncated gzip file.
        raise ValueError(f"Could not read '{path}': {e}") from None
    line = num_header + 1  # The line of the next row.
    with reader:
        while True:
            try:
                with warnings.catch_warnings():  # Reported below instead.
                    warnings.filterwarnings('ignore', 'invalid value',
                                            RuntimeWarning)
                    chunk = next(reader)
            except StopIteration:
                break
            except pd.errors.ParserError as e:
                raise _parser_error(path, e, sep, names) from None
            except UnicodeDecodeError as e:
                raise _not_utf8(path, e, line) from None
            except (OSError, EOFError) as e:  # A truncated gzip file.
                raise ValueError(f"Could not read '{path}' after line "
                                 f"{line - 1}: {e}") from None
            except (ValueError, TypeError, OverflowError) as e:
                raise _locate_error(path, line, chunksize, sep, names,
                                    int_columns, kwargs, e) from None
            if rename:
                chunk = chunk.rename(columns=rename)
            yield chunk, line
            line += len(chunk)


def _parser_error(path, error, sep, names) -> ValueError:
    msg = str(error)
    match = re.search(r'Expected (\d+) fields in line (\d+), saw (\d+)', msg)
    if match is None:
        return ValueError(f"Could not parse '{path}': {msg}")
    _, line, saw = match.groups()
    return ValueError(
        f"'{path}', line {line}: expected {len(names)} '{sep}'-separated "
        f"fields ({', '.join(names)}), saw {saw}{_show(path, int(line))}")


def _show(path: str, line: int) -> str:
    with _open_text(path) as f:
        text = next(islice(f, line - 1, None), '')
    return f"; the line reads {text.rstrip(chr(13) + chr(10))!r}"


def _locate_error(path, line, chunksize, sep, names, int_columns, kwargs,
                  error) -> ValueError:
    r"""Re-reads the failing chunk as text to find the first bad field."""
    import pandas as pd

    chunk = pd.read_csv(path, skiprows=line - 1, nrows=chunksize,
                        dtype='str', **kwargs)
    for i, row in enumerate(chunk.itertuples(index=False, name=None)):
        if all(value == '' for value in row):
            return ValueError(f"'{path}', line {line + i}: the line is "
                              f"empty (expected the fields "
                              f"{', '.join(names)})")
        for col, value in zip(names, row):
            if col in int_columns and not _is_int(value):
                what = 'is empty or missing' if value == '' else (
                    f'is not an integer (got {value!r})')
                hint = ''
                other = [s for s in ',;\t' if s != sep and s in value]
                if other:
                    hint = (f"; the file must be '{sep}'-separated, not "
                            f"'{other[0]}'-separated")
                return ValueError(
                    f"'{path}', line {line + i}, field '{col}': the value "
                    f"{what}{hint}{_show(path, line + i)}")
    return ValueError(f"Could not parse '{path}' between lines {line} and "
                      f"{line + len(chunk) - 1}: {error}")


def _parse_dates(path, column, line, field):
    r"""Parses :obj:`YYYY-MM-DD` dates, once per distinct value."""
    import pandas as pd

    codes, uniques = pd.factorize(column)
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object),
                            format='%Y-%m-%d', errors='coerce')
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad[codes])[0])
        raise ValueError(f"'{path}', line {line + i}, field '{field}': "
                         f"expected a date YYYY-MM-DD (got "
                         f"{column.iloc[i]!r})")
    values = parsed.to_numpy().astype('datetime64[s]')[codes]
    return pd.Series(values, index=column.index)


def _parse_timestamps(path, column, line, field):
    r"""Parses ISO 8601 timestamps (UTC when no offset is given)."""
    import pandas as pd

    try:
        parsed = pd.to_datetime(column, format='ISO8601', utc=True,
                                errors='coerce')
    except (ValueError, TypeError, OverflowError):  # pragma: no cover
        parsed = pd.Series(
            [pd.to_datetime(v, format='ISO8601', utc=True, errors='coerce')
             for v in column], index=column.index)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"'{path}', line {line + i}, field '{field}': "
                         f"expected an ISO 8601 timestamp such as "
                         f"'2014-04-07T10:51:09.277Z' (got "
                         f"{column.iloc[i]!r})")
    return parsed.dt.tz_convert(None).astype('datetime64[ms]')


def _compact(column):
    values = column.to_numpy()
    if values.size and values.min() >= 0 and values.max() <= _INT32_MAX:
        return column.astype(np.int32)
    return column


def _concat(path, frames, columns):
    import pandas as pd

    if len(frames) == 0 or sum(len(f) for f in frames) == 0:
        raise ValueError(f"'{path}' holds no clicks")
    if len(frames) == 1:
        df = frames[0][columns].reset_index(drop=True)
    else:
        df = pd.concat(frames, ignore_index=True)[columns]
    _warn_negative_ids(path, df)
    return df


def _warn_negative_ids(path, df) -> None:
    r"""Negative session or item ids occur in no public click log: they
    are kept (ids are only tokens) but reported with counts, since they
    usually mean a wrong column or a corrupted export."""
    for col in ('session_id', 'item_id'):
        negative = int((df[col].to_numpy() < 0).sum())
        if negative > 0:
            first = int(np.flatnonzero(df[col].to_numpy() < 0)[0])
            warnings.warn(
                f"'{path}': {negative} clicks have a negative {col} (the "
                f"first is click {first + 1}, {col}={df[col].iloc[first]}); "
                f"they are kept as ids, but check that the columns are the "
                f"right ones", stacklevel=3)


# SR-GNN preprocessing ########################################################


def srgnn_preprocess(
    df: 'pandas.DataFrame',
    dataset: str = 'diginetica',
    fraction: Optional[str] = None,
    min_item_count: int = 5,
    test_days: Optional[int] = None,
    local_time: bool = False,
    as_arrays: bool = False,
) -> SRGNNSplits:
    r"""The preprocessing of the `SR-GNN <https://arxiv.org/abs/1811.00855>`_
    reference code (:obj:`datasets/preprocess.py` of
    `CRIPAC-DIG/SR-GNN <https://github.com/CRIPAC-DIG/SR-GNN>`_), used by
    SR-GNN, GCE-GNN and most later session-based recommenders.

    Step by step, as the reference does:

    1. The clicks of a session are ordered by :obj:`timeframe` (Diginetica,
       a stable sort: ties stay in file order) or kept in file order
       (YOOCHOOSE). The date of a session is the date of its last line in
       the file (:obj:`eventdate` for Diginetica, :obj:`timestamp` truncated
       to seconds for YOOCHOOSE).
    2. Sessions with one click are dropped; then items clicked fewer than
       :obj:`min_item_count` times (counted once, in the remaining
       sessions) are removed and sessions left with fewer than two clicks
       are dropped.
    3. With :math:`t_{\max}` the latest session date and
       :math:`t_s = t_{\max} - 86400 \cdot \textrm{test\_days}` seconds,
       sessions dated :math:`< t_s` are for training and sessions dated
       :math:`> t_s` for testing; sessions dated exactly :math:`t_s` are in
       neither (for Diginetica, whose dates are days, this drops the whole
       day seven days before the last one). Both sets are sorted by date;
       ties keep the order of first appearance in the file.
    4. Items are renumbered :obj:`1, 2, ...` in order of first appearance in
       the sorted training sessions. Test clicks on items that are not in
       the training sessions are removed and test sessions left with fewer
       than two clicks are dropped.
    5. A session :math:`[v_1, \ldots, v_n]` yields the examples
       :math:`([v_1, \ldots, v_{n-1}], v_n), ([v_1, \ldots, v_{n-2}],
       v_{n-1}), \ldots, ([v_1], v_2)`, longest prefix first.
    6. For a YOOCHOOSE :obj:`fraction` :obj:`'1/N'`, the last
       :obj:`int(num_examples / N)` training examples are kept (the most
       recent ones; the cut may fall inside a session) and
       :obj:`all_train_seq` starts at the session of the first kept
       example. As in the reference, if that number is zero, all examples
       are kept. The test set is the same for every fraction.

    Dates are compared as UTC seconds. The reference converts them with
    :func:`time.mktime`, *i.e.*, in the local time zone of the machine
    that runs it; this changes the split only when a daylight saving time
    change falls into the test window (not the case for the public data
    sets). Set :obj:`local_time=True` to reproduce that behaviour exactly.

    Args:
        df (pandas.DataFrame): The clicks in file order, as returned by
            :func:`read_diginetica_clicks` (columns :obj:`session_id`,
            :obj:`item_id`, :obj:`timeframe`, :obj:`eventdate`) or
            :func:`read_yoochoose_clicks` (:obj:`session_id`,
            :obj:`item_id`, :obj:`timestamp`).
        dataset (str, optional): :obj:`'diginetica'` or :obj:`'yoochoose'`
            (the reference treats its :obj:`sample` like
            :obj:`'diginetica'`). (default: :obj:`'diginetica'`)
        fraction (str, optional): :obj:`'1/4'`, :obj:`'1/64'` or any
            :obj:`'1/N'`: keep the most recent part of the training
            examples, as done for YOOCHOOSE 1/4 and 1/64. :obj:`None` keeps
            all. (default: :obj:`None`)
        min_item_count (int, optional): Items clicked fewer times are
            removed. (default: :obj:`5`)
        test_days (int, optional): The length of the test window in days.
            :obj:`None` means :obj:`7` for Diginetica and :obj:`1` for
            YOOCHOOSE. (default: :obj:`None`)
        local_time (bool, optional): Whether to convert dates to seconds in
            the local time zone, as :func:`time.mktime` in the reference
            does. (default: :obj:`False`)
        as_arrays (bool, optional): Whether to return the examples in flat
            :obj:`numpy` form, :obj:`((items, ptr), targets)` with the
            clicks of example :obj:`i` in :obj:`items[ptr[i]:ptr[i + 1]]`
            (and :obj:`all_train_seq` as :obj:`(items, ptr)`), instead of
            Python lists. The flat form takes a fraction of the memory and
            time for large logs and is what
            :func:`~pyg_recs.data.sessions_to_graphs` consumes directly.
            (default: :obj:`False`)

    Returns:
        :class:`SRGNNSplits`: :obj:`(train, test, all_train_seq, item_ids)`
        where :obj:`train` and :obj:`test` are :obj:`(prefixes, targets)`
        lists equal to the reference pickles (or their flat form with
        :obj:`as_arrays=True`).
    """
    if dataset not in TEST_DAYS:
        raise ValueError(f"Invalid 'dataset' (got '{dataset}'); expected "
                         f"one of {tuple(TEST_DAYS)}")
    divisor = _parse_fraction(fraction)
    if min_item_count < 1:
        raise ValueError(f"Invalid 'min_item_count' (got {min_item_count})"
                         f"; expected a positive count")
    if test_days is None:
        test_days = TEST_DAYS[dataset]
    if test_days < 0:
        raise ValueError(f"Invalid 'test_days' (got {test_days}); expected "
                         f"a non-negative number of days")
    date_col = 'eventdate' if dataset == 'diginetica' else 'timestamp'
    needed = ['session_id', 'item_id', date_col]
    if dataset == 'diginetica':
        needed.append('timeframe')
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"The clicks lack the column(s) {missing} needed "
                         f"for dataset '{dataset}' (got columns "
                         f"{list(df.columns)})")
    if len(df) == 0:
        raise ValueError("The clicks are empty")

    import pandas as pd

    date = df[date_col]
    if isinstance(date.dtype, pd.DatetimeTZDtype):
        date = date.dt.tz_convert(None)
    if not pd.api.types.is_datetime64_dtype(date.dtype):
        raise ValueError(f"The column '{date_col}' must hold date-times "
                         f"(got dtype '{date.dtype}')")

    # 1. Sessions in order of first appearance, clicks ordered in each:
    sess, _ = pd.factorize(df['session_id'].to_numpy(), sort=False)
    num_sessions = int(sess.max()) + 1
    if dataset == 'diginetica':
        order = np.argsort(df['timeframe'].to_numpy(), kind='stable')
        order = order[np.argsort(sess[order], kind='stable')]
    else:
        order = np.argsort(sess, kind='stable')
    sess_sorted = sess[order]
    item_codes, item_uniques = pd.factorize(df['item_id'].to_numpy(),
                                            sort=False)
    items_sorted = item_codes[order]
    del item_codes

    # The date of a session is the date of its last line in the file:
    last_row = pd.Series(np.arange(len(df))).groupby(sess).max().to_numpy()
    dates = _to_seconds(date.to_numpy()[last_row], local_time)
    del last_row

    # 2. Drop length-1 sessions, rare items, then too short sessions:
    length = np.bincount(sess_sorted, minlength=num_sessions)
    keep = length[sess_sorted] > 1
    count = np.bincount(items_sorted[keep], minlength=len(item_uniques))
    keep &= count[items_sorted] >= min_item_count
    length = np.bincount(sess_sorted[keep], minlength=num_sessions)
    valid = length >= 2
    keep &= valid[sess_sorted]
    if not valid.any():
        raise ValueError(f"No session is left after dropping sessions of "
                         f"length 1 and items clicked fewer than "
                         f"{min_item_count} times")

    # 3. Split on the session dates, sort both sets by date:
    split_date = dates[valid].max() - 86400 * test_days
    train_sess = _sort_by_date(valid & (dates < split_date), dates)
    test_sess = _sort_by_date(valid & (dates > split_date), dates)
    if train_sess.size == 0:
        raise ValueError("No training session is left before the test "
                         f"window of {test_days} day(s)")

    # 4. Renumber items by first appearance in the training sessions:
    train_items, train_ptr = _gather(train_sess, sess_sorted, items_sorted,
                                     keep, num_sessions)
    codes, uniques = pd.factorize(train_items, sort=False)
    train_ids = codes.astype(np.int64) + 1
    item_ids = np.asarray(item_uniques)[uniques]

    test_items, test_ptr = _gather(test_sess, sess_sorted, items_sorted,
                                   keep, num_sessions)
    lookup = np.zeros(len(item_uniques), dtype=np.int64)
    lookup[uniques] = np.arange(1, len(uniques) + 1)
    test_ids = lookup[test_items]
    test_ids, test_ptr = _drop_unknown(test_ids, test_ptr)

    # 5. and 6. Expand sessions into prefix examples:
    num_examples = np.diff(train_ptr) - 1
    start = 0
    if divisor is not None:
        total = int(num_examples.sum())
        size = int(total / divisor)
        start = total - size if size > 0 else 0  # [-0:] keeps everything.
    train, all_train_seq = _expand(train_ids, train_ptr, num_examples,
                                   start)
    test, _ = _expand(test_ids, test_ptr, np.diff(test_ptr) - 1, 0)
    if not as_arrays:
        train = (_to_lists(train[0]), train[1].tolist())
        test = (_to_lists(test[0]), test[1].tolist())
        all_train_seq = _to_lists(all_train_seq)
    return SRGNNSplits(train, test, all_train_seq, item_ids)


def _parse_fraction(fraction: Optional[str]) -> Optional[int]:
    if fraction is None:
        return None
    match = re.fullmatch(r'\s*1\s*/\s*(\d+)\s*', str(fraction))
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"Invalid 'fraction' (got {fraction!r}); expected "
                         f"None or a string '1/N' such as '1/4' or '1/64'")
    return int(match.group(1))


def _to_seconds(values: np.ndarray, local_time: bool) -> np.ndarray:
    r"""Naive date-times to seconds since the epoch, read as UTC or, with
    :obj:`local_time`, in the local time zone as :func:`time.mktime`."""
    seconds = values.astype('datetime64[s]').astype(np.int64)
    if local_time:  # One time.mktime() call per distinct hour.
        hours, inverse = np.unique(seconds // 3600, return_inverse=True)
        offset = np.array([
            time.mktime(time.gmtime(int(h) * 3600)[:8] + (-1, )) -
            int(h) * 3600 for h in hours
        ], dtype=np.int64)
        seconds = seconds + offset[inverse.reshape(-1)]
    return seconds


def _sort_by_date(mask: np.ndarray, dates: np.ndarray) -> np.ndarray:
    r"""The sessions in :obj:`mask` sorted by date, ties in order of first
    appearance (the order of the session codes)."""
    index = np.flatnonzero(mask)
    return index[np.argsort(dates[index], kind='stable')]


def _gather(sessions, sess_sorted, items_sorted, keep, num_sessions):
    r"""The kept clicks of :obj:`sessions`, in that order, and the offsets
    of each session."""
    rank = np.full(num_sessions, -1, dtype=np.int64)
    rank[sessions] = np.arange(sessions.size)
    rows = np.flatnonzero(keep & (rank[sess_sorted] >= 0))
    rows = rows[np.argsort(rank[sess_sorted[rows]], kind='stable')]
    length = np.bincount(rank[sess_sorted[rows]], minlength=sessions.size)
    ptr = np.zeros(sessions.size + 1, dtype=np.int64)
    np.cumsum(length, out=ptr[1:])
    return items_sorted[rows], ptr


def _drop_unknown(ids: np.ndarray, ptr: np.ndarray):
    r"""Removes the :obj:`0` ids (items unseen in training), then sessions
    left with fewer than two clicks."""
    sess = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    known = ids > 0
    length = np.bincount(sess[known], minlength=ptr.size - 1)
    mask = known & (length[sess] >= 2)
    length = length[length >= 2]
    out = np.zeros(length.size + 1, dtype=np.int64)
    np.cumsum(length, out=out[1:])
    return ids[mask], out


def _expand(ids: np.ndarray, ptr: np.ndarray, num_examples: np.ndarray,
            start: int) -> Tuple[FlatExamples, Tuple[np.ndarray, np.ndarray]]:
    r"""The prefix examples of the sessions :obj:`ids[ptr[k]:ptr[k + 1]]`
    from example :obj:`start` on, in flat form :obj:`((items, ptr),
    targets)`, and the sessions they come from as :obj:`(items, ptr)`.

    A session of :math:`n` clicks yields :math:`n - 1` examples whose
    prefixes have lengths :math:`n - 1, n - 2, \ldots, 1`; all of them are
    gathered with one fancy-indexing operation.
    """
    first = 0
    skip = 0
    if start > 0:
        cum = np.cumsum(num_examples)
        first = int(np.searchsorted(cum, start, side='right'))
        skip = start - (int(cum[first - 1]) if first > 0 else 0)
    lo = int(ptr[first])
    seq_items = ids[lo:]
    seq_ptr = ptr[first:] - lo
    counts = num_examples[first:]

    # Session and prefix length of every example, longest prefix first:
    ex_sess = np.repeat(np.arange(counts.size), counts)
    ex_rank = np.arange(ex_sess.size) - np.repeat(np.cumsum(counts) - counts,
                                                  counts)
    ex_len = np.diff(seq_ptr)[ex_sess] - 1 - ex_rank
    del ex_rank
    ex_sess, ex_len = ex_sess[skip:], ex_len[skip:]
    begin = seq_ptr[ex_sess]
    targets = seq_items[begin + ex_len]

    ex_ptr = np.zeros(ex_len.size + 1, dtype=np.int64)
    np.cumsum(ex_len, out=ex_ptr[1:])
    index = np.repeat(begin - ex_ptr[:-1], ex_len)
    index += np.arange(index.size)
    return ((seq_items[index], ex_ptr), targets), (seq_items, seq_ptr)


def _to_lists(flat: Tuple[np.ndarray, np.ndarray]) -> List[List[int]]:
    r"""Flat :obj:`(items, ptr)` sessions as a list of :obj:`int` lists."""
    items, ptr = flat
    values = items.tolist()
    bounds = ptr.tolist()
    return [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


__all__ = [
    'SRGNNSplits',
    'read_diginetica_clicks',
    'read_yoochoose_clicks',
    'srgnn_preprocess',
]
