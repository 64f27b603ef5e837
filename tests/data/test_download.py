import hashlib
import io
import os
import os.path as osp
import stat
import tarfile
import zipfile

import pytest

from pyg_recs.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_verified,
    safe_extract,
    sha256sum,
)
from tests.conftest import shared_path

CONTENT = b'user_id:token\titem_id:token\n1\t2\n'
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


def listing(folder):
    r"""Every path under :obj:`folder`, relative, hidden ones included."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            out.append(osp.relpath(osp.join(root, name), folder))
    return sorted(out)


@pytest.fixture
def source(tmp_path):
    src = tmp_path / 'server'
    src.mkdir()
    (src / 'data.inter').write_bytes(CONTENT)
    return src


# Downloads ###################################################################

def test_download_verified(source, tmp_path):
    url = (source / 'data.inter').as_uri()
    folder = tmp_path / 'raw'
    path = download_verified(url, str(folder), sha256=CONTENT_SHA.upper())
    assert path == str(folder / 'data.inter')
    assert open(path, 'rb').read() == CONTENT
    assert listing(folder) == ['data.inter']  # No temporary file is left.

    # A second call uses the existing file (it would fail to download):
    assert download_verified(url + '.missing', str(folder), CONTENT_SHA,
                             filename='data.inter') == path

    # Any of several hashes, a file name of our own, no hash at all:
    path = download_verified(url, str(folder), ['0' * 64, CONTENT_SHA],
                             filename='copy.inter')
    assert open(path, 'rb').read() == CONTENT
    path = download_verified(url, str(folder), filename='unchecked.inter')
    assert open(path, 'rb').read() == CONTENT
    assert listing(folder) == ['copy.inter', 'data.inter', 'unchecked.inter']


def test_download_wrong_hash_leaves_nothing(source, tmp_path):
    url = (source / 'data.inter').as_uri()
    folder = tmp_path / 'raw'
    expected = 'ab' * 32
    with pytest.raises(ChecksumError) as info:
        download_verified(url, str(folder), sha256=expected)
    msg = str(info.value)
    assert url in msg and expected in msg and CONTENT_SHA in msg
    assert f'({len(CONTENT)} bytes)' in msg
    assert isinstance(info.value, ValueError)
    assert listing(folder) == []


def test_download_existing_file_with_wrong_hash(source, tmp_path):
    folder = tmp_path / 'raw'
    folder.mkdir()
    (folder / 'data.inter').write_bytes(CONTENT + b'3\t4\n')
    with pytest.raises(ChecksumError, match="existing file .*data.inter"):
        download_verified((source / 'data.inter').as_uri(), str(folder),
                          sha256=CONTENT_SHA)


def test_download_failure_leaves_nothing(tmp_path):
    folder = tmp_path / 'raw'
    url = (tmp_path / 'nowhere.txt').as_uri()
    with pytest.raises(DownloadError, match="by hand and put it at "
                       ".*raw.*nowhere.txt"):
        download_verified(url, str(folder), sha256=CONTENT_SHA)
    assert listing(folder) == []


def test_download_interrupted_leaves_nothing(tmp_path, monkeypatch):
    import torch_geometric.data

    def broken(url, folder, log=True, filename=None):
        with open(osp.join(folder, filename), 'wb') as f:
            f.write(CONTENT[:5])  # Half a file, then the connection drops.
        raise ConnectionResetError('connection reset by peer')

    monkeypatch.setattr(torch_geometric.data, 'download_url', broken)
    folder = tmp_path / 'raw'
    with pytest.raises(DownloadError, match='connection reset'):
        download_verified('https://example.org/data.inter', str(folder),
                          sha256=CONTENT_SHA)
    assert listing(folder) == []


@pytest.mark.parametrize('sha256', ['abc', 'g' * 64, 123, [], [None]])
def test_download_invalid_hash(tmp_path, sha256):
    with pytest.raises(ValueError, match="Invalid 'sha256'"):
        download_verified('file:///x/data.inter', str(tmp_path), sha256)


def test_download_invalid_filename(tmp_path):
    with pytest.raises(ValueError, match="Invalid 'filename'"):
        download_verified('file:///x/', str(tmp_path))
    with pytest.raises(ValueError, match="Invalid 'filename'"):
        download_verified('file:///x/a', str(tmp_path), filename='../a')


def test_movielens_download_is_verified(tmp_path, monkeypatch):
    from pyg_recs.datasets import MovieLens100KKG

    src = shared_path('ml-100k-kg')
    for name in MovieLens100KKG.sha256:
        assert sha256sum(osp.join(src, name)) in MovieLens100KKG.sha256[name]

    # A mirror with the real files (file:// instead of https://):
    monkeypatch.setattr(MovieLens100KKG, 'url', 'file://' + src)
    ds = MovieLens100KKG(str(tmp_path / 'ml'))
    assert (ds.num_users, ds.num_items) == (943, 1682)
    assert sorted(os.listdir(tmp_path / 'ml' / 'raw')) == [
        'ml-100k.inter', 'ml-100k.kg', 'ml-100k.link'
    ]

    # A mirror where one file was tampered with:
    bad = tmp_path / 'mirror'
    bad.mkdir()
    for name in MovieLens100KKG.sha256:
        data = open(osp.join(src, name), 'rb').read()
        if name.endswith('.link'):
            data = data.replace(b'm.08gjyx', b'm.08gjyz')
        (bad / name).write_bytes(data)
    monkeypatch.setattr(MovieLens100KKG, 'url', bad.as_uri())
    with pytest.raises(ChecksumError, match='ml-100k.link.*corrupt'):
        MovieLens100KKG(str(tmp_path / 'ml2'))
    assert 'ml-100k.link' not in os.listdir(tmp_path / 'ml2' / 'raw')
    assert not osp.exists(tmp_path / 'ml2' / 'processed')


def test_movielens_crlf_files_are_accepted(tmp_path):
    # RecBole's wheel ships the same files with Windows line endings; both
    # variants are recorded, and the reader treats them alike.
    from pyg_recs.datasets import MovieLens100KKG

    src = shared_path('ml-100k-kg')
    for name, hashes in MovieLens100KKG.sha256.items():
        data = open(osp.join(src, name), 'rb').read()
        crlf = data.replace(b'\n', b'\r\n')
        assert hashlib.sha256(crlf).hexdigest() in hashes


# Archives ####################################################################

def make_zip(path, members):
    r"""Writes a zip of :obj:`(name, data, mode)` members."""
    with zipfile.ZipFile(path, 'w') as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return str(path)


def make_tar(path, members, mode='w:gz'):
    r"""Writes a tar of :obj:`(name, type, data_or_linkname)` members."""
    with tarfile.open(path, mode) as tf:
        for name, type_, payload in members:
            info = tarfile.TarInfo(name)
            info.type = type_
            if type_ in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = payload
                tf.addfile(info)
            elif type_ == tarfile.REGTYPE:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                tf.addfile(info)
    return str(path)


def test_safe_extract_zip(tmp_path):
    archive = make_zip(tmp_path / 'ok.zip', [
        ('data/', b'', None),
        ('data/train.txt', b'train', 0o100644),
        ('data/sub/test.txt', b'test', None),
        ('./top.txt', b'top', 0o600),
    ])
    target = tmp_path / 'out'
    (target / 'data').mkdir(parents=True)
    (target / 'data' / 'train.txt').write_bytes(b'old')  # Replaced.
    paths = safe_extract(archive, str(target))
    assert paths == [str(target / 'data' / 'train.txt'),
                     str(target / 'data' / 'sub' / 'test.txt'),
                     str(target / 'top.txt')]
    assert (target / 'data' / 'train.txt').read_bytes() == b'train'
    assert (target / 'data' / 'sub' / 'test.txt').read_bytes() == b'test'
    assert listing(target) == ['data', 'data/sub', 'data/sub/test.txt',
                               'data/train.txt', 'top.txt']


@pytest.mark.parametrize('mode', ['w', 'w:gz', 'w:bz2', 'w:xz'])
def test_safe_extract_tar(tmp_path, mode):
    archive = make_tar(tmp_path / 'ok.tar', [
        ('yoochoose', tarfile.DIRTYPE, None),
        ('yoochoose/clicks.dat', tarfile.REGTYPE, b'1,2,3\n'),
        ('yoochoose/buys.dat', tarfile.REGTYPE, b''),
    ], mode)
    target = tmp_path / 'out'
    paths = safe_extract(archive, str(target))
    assert [osp.relpath(p, target) for p in paths] == [
        'yoochoose/clicks.dat', 'yoochoose/buys.dat'
    ]
    assert (target / 'yoochoose' / 'clicks.dat').read_bytes() == b'1,2,3\n'
    assert listing(target) == ['yoochoose', 'yoochoose/buys.dat',
                               'yoochoose/clicks.dat']


UNSAFE_ZIPS = {
    'traversal': ('../evil.txt', None, 'points outside the target folder'),
    'deep traversal': ('data/../../evil.txt', None, 'outside'),
    'absolute': ('/tmp/evil.txt', None, 'absolute path'),
    'windows traversal': ('..\\evil.txt', None, 'outside'),
    'windows absolute': ('C:\\evil.txt', None, 'absolute path'),
    'symlink': ('link', stat.S_IFLNK | 0o777, 'symbolic link'),
    'fifo': ('pipe', stat.S_IFIFO | 0o644, 'not a plain file'),
}


@pytest.mark.parametrize('case', sorted(UNSAFE_ZIPS))
def test_safe_extract_refuses_unsafe_zip(tmp_path, case):
    name, mode, error = UNSAFE_ZIPS[case]
    archive = make_zip(tmp_path / 'evil.zip', [
        ('good.txt', b'good', None),  # Checked first, never written.
        (name, b'/etc/passwd' if mode else b'evil', mode),
    ])
    target = tmp_path / 'a' / 'out'
    with pytest.raises(UnsafeArchiveError, match=error) as info:
        safe_extract(archive, str(target))
    assert 'evil.zip' in str(info.value)
    assert listing(target) == []
    assert listing(tmp_path / 'a') == ['out']  # Nothing next to it either.


UNSAFE_TARS = {
    'traversal': ('../evil.txt', tarfile.REGTYPE, b'x', 'outside'),
    'absolute': ('/tmp/evil.txt', tarfile.REGTYPE, b'x', 'absolute path'),
    'symlink': ('link', tarfile.SYMTYPE, '/etc/passwd',
                "symbolic link to '/etc/passwd'"),
    'relative symlink': ('link', tarfile.SYMTYPE, '../../x', 'symbolic'),
    'hardlink': ('link', tarfile.LNKTYPE, 'good.txt', 'hard link'),
    'char device': ('dev', tarfile.CHRTYPE, None, 'device file'),
    'block device': ('dev', tarfile.BLKTYPE, None, 'device file'),
    'fifo': ('pipe', tarfile.FIFOTYPE, None, 'FIFO'),
}


@pytest.mark.parametrize('case', sorted(UNSAFE_TARS))
def test_safe_extract_refuses_unsafe_tar(tmp_path, case):
    name, type_, payload, error = UNSAFE_TARS[case]
    archive = make_tar(tmp_path / 'evil.tar.gz', [
        ('good.txt', tarfile.REGTYPE, b'good'),
        (name, type_, payload),
    ])
    target = tmp_path / 'a' / 'out'
    with pytest.raises(UnsafeArchiveError, match=error) as info:
        safe_extract(archive, str(target))
    assert 'evil.tar.gz' in str(info.value)
    assert isinstance(info.value, ValueError)
    assert listing(target) == []
    assert listing(tmp_path / 'a') == ['out']


def test_safe_extract_corrupt_archives(tmp_path):
    target = tmp_path / 'out'
    text = tmp_path / 'notes.txt'
    text.write_text('not an archive')
    with pytest.raises(ValueError, match='neither a zip nor a tar'):
        safe_extract(str(text), str(target))
    with pytest.raises(FileNotFoundError, match='No such archive'):
        safe_extract(str(tmp_path / 'missing.zip'), str(target))

    # A zip whose data is damaged after the member list was read:
    archive = make_zip(tmp_path / 'bad.zip', [('a.txt', b'a' * 1000, None),
                                              ('b.txt', b'b' * 1000, None)])
    data = bytearray(open(archive, 'rb').read())
    pos = data.index(b'b' * 100)
    data[pos:pos + 100] = b'c' * 100
    open(archive, 'wb').write(bytes(data))
    with pytest.raises(ValueError, match='corrupt or truncated'):
        safe_extract(archive, str(target))
    assert listing(target) == []  # Not even 'a.txt'.

    # A truncated tar.gz:
    archive = make_tar(tmp_path / 'cut.tar.gz', [
        ('a.txt', tarfile.REGTYPE, os.urandom(50000)),
    ])
    data = open(archive, 'rb').read()
    open(archive, 'wb').write(data[:len(data) // 2])
    with pytest.raises(ValueError, match='corrupt or truncated'):
        safe_extract(archive, str(target))
    assert listing(target) == []


def test_safe_extract_clashing_members(tmp_path):
    archive = make_zip(tmp_path / 'clash.zip', [('a', b'file', None),
                                                ('a/b', b'under', None)])
    with pytest.raises(ValueError, match='clash'):
        safe_extract(archive, str(tmp_path / 'out'))
    assert listing(tmp_path / 'out') == []
