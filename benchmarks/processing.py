r"""Processing benchmark: raw Yoochoose-sized click logs to session graphs.

The real ``yoochoose-clicks.dat`` (33M clicks) cannot be downloaded on the
benchmark machines, so this script writes a synthetic file of the same
shape (sessions of geometric length, six months of timestamps, Zipf item
popularity, the same CSV layout) and times
:class:`pyg_recs.datasets.Yoochoose` processing it from scratch, one
fraction per fresh process, recording the wall time and the peak resident
memory of that process.

.. code-block:: bash

    python benchmarks/processing.py --clicks 33000000 --fractions 1/4 1
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))


def write_synthetic_clicks(path: str, num_clicks: int, seed: int = 0,
                           chunk: int = 2_000_000) -> int:
    r"""Writes a synthetic click log in the ``yoochoose-clicks.dat`` format
    (``session_id,timestamp,item_id,category``); returns the click count."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    lengths = rng.geometric(0.28, size=num_clicks // 2)
    lengths = lengths[:np.searchsorted(np.cumsum(lengths), num_clicks) + 1]
    num_sessions = lengths.size
    start = np.sort(rng.uniform(0, 182 * 86400, num_sessions))
    base = pd.Timestamp('2014-04-01').value // 10**6
    written, session0 = 0, 0
    with open(path, 'w') as f:
        while session0 < num_sessions:
            # Whole sessions per chunk:
            cum = np.cumsum(lengths[session0:])
            session1 = session0 + int(np.searchsorted(cum, chunk)) + 1
            session1 = min(session1, num_sessions)
            lens = lengths[session0:session1]
            n = int(lens.sum())
            sess = np.repeat(np.arange(session0 + 1, session1 + 1), lens)
            ptr = np.concatenate([[0], np.cumsum(lens)])
            gaps = np.cumsum(rng.exponential(60, n))
            within = gaps - np.repeat(gaps[ptr[:-1]], lens)
            ms = base + ((np.repeat(start[session0:session1], lens) +
                          within) * 1000).astype(np.int64)
            ts = pd.to_datetime(ms, unit='ms').strftime(
                '%Y-%m-%dT%H:%M:%S.%f').str[:-3] + 'Z'
            items = 214500000 + rng.zipf(1.3, n) % 60000
            df = pd.DataFrame({'s': sess, 't': ts, 'i': items, 'c': '0'})
            df.to_csv(f, header=False, index=False)
            written += n
            session0 = session1
    return written


def child(root: str, fraction: str) -> None:
    import resource

    from pyg_recs.datasets import Yoochoose
    start = time.perf_counter()
    train = Yoochoose(root, fraction=fraction, split='train')
    seconds = time.perf_counter() - start
    test = Yoochoose(root, fraction=fraction, split='test')
    print(json.dumps({
        'fraction': fraction,
        'seconds': seconds,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss /
        1024,
        'num_train': len(train),
        'num_test': len(test),
        'num_items': train.num_items,
        'num_nodes': int(train._data.x.numel()),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clicks', type=int, default=33_000_000)
    parser.add_argument('--fractions', nargs='+', default=['1/4', '1'])
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--out', default=None, help='result JSON (default: '
                        'benchmarks/results/<date>-processing.json)')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    work = args.work_dir or tempfile.mkdtemp(prefix='pyg_recs_proc_')
    raw = osp.join(work, 'raw')
    os.makedirs(raw, exist_ok=True)
    path = osp.join(raw, 'yoochoose-clicks.dat')
    start = time.perf_counter()
    clicks = write_synthetic_clicks(path, args.clicks)
    gen_seconds = time.perf_counter() - start
    print(f'wrote {clicks:,} synthetic clicks in {gen_seconds:.1f} s')

    runs = []
    for fraction in args.fractions:
        out = subprocess.run(
            [sys.executable, osp.abspath(__file__), '--child', work,
             fraction], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1])
    result = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'memory_limit_gb': 24},
        'clicks': clicks,
        'file_mb': osp.getsize(path) / 2**20,
        'generate_seconds': gen_seconds,
        'runs': runs,
    }
    out_path = args.out or osp.join(
        HERE, 'results', f"{result['date']}-processing.json")
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    with open(out_path, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results in {out_path}')


if __name__ == '__main__':
    main()
