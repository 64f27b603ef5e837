r"""Verified downloads and safe archive extraction.

:func:`download_verified` wraps :func:`torch_geometric.data.download_url`:
the file is downloaded under a temporary name, its SHA-256 is compared
with the recorded one, and only then is it renamed to its final name, so
that an interrupted or tampered download never looks like a raw file.
:func:`safe_extract` unpacks :obj:`.zip` and :obj:`.tar` (plain,
:obj:`.gz`, :obj:`.bz2`, :obj:`.xz`) archives after checking every member:
absolute paths, :obj:`..` components, symbolic and hard links, device
files and FIFOs are refused before anything is written, and the members
are extracted into a temporary folder that is moved into place at the end.
"""
import functools
import hashlib
import os
import os.path as osp
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from typing import Iterable, List, Optional, Sequence, Union

#: Bytes read at once when hashing or copying.
CHUNK_SIZE = 2**20


class ChecksumError(ValueError):
    r"""Raised when a file does not have its recorded SHA-256."""


class UnsafeArchiveError(ValueError):
    r"""Raised for an archive member that would be written outside the
    target folder or is not a plain file or folder."""


class DownloadError(RuntimeError):
    r"""Raised when a download fails (no network, a dead URL); the message
    says where to put the file downloaded by hand."""


def sha256sum(path: str) -> str:
    r"""Returns the SHA-256 of the file :obj:`path` as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(
    url: str,
    folder: str,
    sha256: Optional[Union[str, Sequence[str]]] = None,
    filename: Optional[str] = None,
    log: bool = True,
) -> str:
    r"""Downloads :obj:`url` into :obj:`folder` and checks its SHA-256.

    The content is downloaded with
    :func:`torch_geometric.data.download_url` into a temporary folder next
    to the target, hashed, and renamed to :obj:`folder/filename` only if
    the hash is the expected one; on any failure nothing is left behind. A
    file already at the target is used as it is when its hash matches.

    Args:
        url (str): The URL.
        folder (str): The folder.
        sha256 (str or list of str, optional): The expected SHA-256 as 64
            hex digits, or several accepted ones (*e.g.* for the same text
            with Unix and Windows line endings); :obj:`None` skips the
            check (for sources that change). (default: :obj:`None`)
        filename (str, optional): The file name; by default the last part
            of the URL. (default: :obj:`None`)
        log (bool, optional): If set to :obj:`False`, prints nothing.
            (default: :obj:`True`)

    Returns:
        The path of the downloaded file.

    Raises:
        ChecksumError: If the downloaded (or existing) file has another
            SHA-256; the message names the URL, the expected and the
            actual hash.
        DownloadError: If the download fails; the message names the
            path to put a file downloaded by hand.
    """
    from torch_geometric.data import download_url

    expected = _check_hashes(sha256)
    if filename is None:
        filename = url.rpartition('/')[2]
        filename = filename if filename[:1] == '?' else filename.split('?')[0]
    if filename in ('', '.', '..') or '/' in filename or osp.sep in filename:
        raise ValueError(f"Invalid 'filename' (got {filename!r}) for the URL "
                         f"'{url}'")
    path = osp.join(folder, filename)

    if osp.exists(path):
        if expected is not None:
            actual = sha256sum(path)
            if actual not in expected:
                raise ChecksumError(
                    f"The existing file '{path}' has SHA-256 {actual}, but "
                    f"the file from '{url}' has SHA-256 "
                    f"{' or '.join(expected)}; delete it to download it "
                    f'again')
        return path

    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(dir=folder, prefix='.download-')
    try:
        try:
            tmp = download_url(url, tmp_dir, log=log, filename=filename)
        except OSError as e:  # URLError, timeouts, refused connections.
            reason = getattr(e, 'reason', None) or e
            raise DownloadError(
                f"Could not download '{url}' ({reason}). Without network "
                f"access, download it by hand and put it at '{path}'; it is "
                f"then used as it is") from None
        if expected is not None:
            actual = sha256sum(tmp)
            if actual not in expected:
                raise ChecksumError(
                    f"The download of '{url}' is corrupt or has changed: "
                    f"expected SHA-256 {' or '.join(expected)}, got {actual} "
                    f'({osp.getsize(tmp)} bytes); nothing was written to '
                    f"'{folder}'")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def _check_hashes(sha256) -> Optional[List[str]]:
    if sha256 is None:
        return None
    hashes = [sha256] if isinstance(sha256, str) else \
        list(sha256) if isinstance(sha256, (list, tuple)) else [None]
    if len(hashes) == 0 or not all(
            isinstance(h, str) and re.fullmatch('[0-9a-fA-F]{64}', h)
            for h in hashes):
        raise ValueError(f"Invalid 'sha256' (got {sha256!r}); expected 64 "
                         f'hex digits or a list of them')
    return [h.lower() for h in hashes]


def safe_extract(archive_path: str, folder: str,
                 names: Optional[Iterable[str]] = None) -> List[str]:
    r"""Extracts a :obj:`.zip` or :obj:`.tar` (plain, :obj:`.gz`,
    :obj:`.bz2` or :obj:`.xz`) archive into :obj:`folder`, refusing every
    member that is not a plain file or folder inside :obj:`folder`.

    All members are checked before anything is written: an absolute path,
    a :obj:`..` component, a symbolic or hard link, a device file or a FIFO
    raises an :class:`UnsafeArchiveError` naming the archive and the
    member. Members are extracted into a temporary folder inside
    :obj:`folder` and moved to their place only when all of them were
    extracted, so a corrupt archive leaves nothing behind either. Existing
    files of the same name are replaced.

    Args:
        archive_path (str): The archive.
        folder (str): The target folder.
        names (iterable of str, optional): Extract only the files of these
            names (the last component of the member's path, wherever it
            lies in the archive); every member is vetted all the same.
            (default: :obj:`None`, every member)

    Returns:
        The paths of the extracted files, in archive order.

    Raises:
        UnsafeArchiveError: If a member is unsafe.
        ValueError: If the file is not a zip or tar archive, or is corrupt.
    """
    archive_path = os.fspath(archive_path)
    if not osp.isfile(archive_path):
        raise FileNotFoundError(f"No such archive: '{archive_path}'")
    if zipfile.is_zipfile(archive_path):
        kind = 'zip'
    elif tarfile.is_tarfile(archive_path):
        kind = 'tar'
    else:
        raise ValueError(f"'{archive_path}' is neither a zip nor a tar "
                         f'archive')

    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(dir=folder, prefix='.extract-')
    try:
        try:
            wanted = None if names is None else set(names)
            if kind == 'zip':
                names = _extract_zip(archive_path, tmp_dir, wanted)
            else:
                names = _extract_tar(archive_path, tmp_dir, wanted)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError,
                zipfile.LargeZipFile) as e:
            raise ValueError(f"Could not extract '{archive_path}' (corrupt "
                             f'or truncated archive): {e}') from e
        except (FileExistsError, IsADirectoryError,
                NotADirectoryError) as e:
            raise ValueError(f"Could not extract '{archive_path}': its "
                             f'members clash (a file and a folder of the '
                             f'same name): {e}') from e
        out, done = [], set()
        for name, is_dir in names:
            if tuple(name) in done:  # A member repeated in the archive.
                continue
            done.add(tuple(name))
            src = osp.join(tmp_dir, *name)
            dst = osp.join(folder, *name)
            if is_dir:
                os.makedirs(dst, exist_ok=True)
                continue
            os.makedirs(osp.dirname(dst), exist_ok=True)
            if osp.isdir(dst) and not osp.islink(dst):
                raise ValueError(f"Cannot extract '{'/'.join(name)}' from "
                                 f"'{archive_path}': '{dst}' is a folder")
            os.replace(src, dst)
            out.append(dst)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out


def _member_parts(archive_path: str, name: str) -> List[str]:
    r"""Splits a member name into safe path components, or raises."""
    if '\x00' in name:
        raise UnsafeArchiveError(f"Refusing to extract '{archive_path}': "
                                 f'member {name!r} has a NUL character')
    normal = name.replace('\\', '/')
    if normal.startswith('/') or re.match('[A-Za-z]:', normal):
        raise UnsafeArchiveError(f"Refusing to extract '{archive_path}': "
                                 f"member '{name}' has an absolute path")
    parts = [p for p in normal.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise UnsafeArchiveError(f"Refusing to extract '{archive_path}': "
                                 f"member '{name}' points outside the target "
                                 f"folder ('..')")
    return parts


def _check_inside(archive_path: str, name: str, root: str,
                  parts: List[str]) -> str:
    target = osp.realpath(osp.join(root, *parts))
    if osp.commonpath([target, osp.realpath(root)]) != osp.realpath(root):
        raise UnsafeArchiveError(f"Refusing to extract '{archive_path}': "
                                 f"member '{name}' points outside the target "
                                 f'folder')
    return target


def _extract_zip(archive_path: str, root: str,
                 wanted: Optional[set] = None) -> List[tuple]:
    with zipfile.ZipFile(archive_path) as zf:
        members = []
        for info in zf.infolist():
            parts = _member_parts(archive_path, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(
                    f"Refusing to extract '{archive_path}': member "
                    f"'{info.filename}' is a symbolic link")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UnsafeArchiveError(
                    f"Refusing to extract '{archive_path}': member "
                    f"'{info.filename}' is not a plain file or folder")
            members.append((info.filename, parts, info.is_dir(),
                            functools.partial(zf.open, info)))
        return _write_members(archive_path, root, members, wanted)


def _extract_tar(archive_path: str, root: str,
                 wanted: Optional[set] = None) -> List[tuple]:
    with tarfile.open(archive_path, 'r:*') as tf:
        members = []
        for member in tf.getmembers():
            parts = _member_parts(archive_path, member.name)
            if member.issym() or member.islnk():
                kind = 'symbolic' if member.issym() else 'hard'
                raise UnsafeArchiveError(
                    f"Refusing to extract '{archive_path}': member "
                    f"'{member.name}' is a {kind} link to "
                    f"'{member.linkname}'")
            if member.ischr() or member.isblk() or member.isfifo():
                raise UnsafeArchiveError(
                    f"Refusing to extract '{archive_path}': member "
                    f"'{member.name}' is a device file or FIFO")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"Refusing to extract '{archive_path}': member "
                    f"'{member.name}' is not a plain file or folder")
            members.append((member.name, parts, member.isdir(),
                            functools.partial(tf.extractfile, member)))
        return _write_members(archive_path, root, members, wanted)


def _write_members(archive_path: str, root: str, members: List[tuple],
                   wanted: Optional[set] = None) -> List[tuple]:
    r"""Writes the vetted :obj:`(name, parts, is_dir, open_member)` members
    of an archive below :obj:`root`, after checking all their names; returns
    :obj:`(parts, is_dir)` of every member written."""
    kept = []
    for name, parts, is_dir, open_member in members:
        if len(parts) == 0:
            if is_dir:  # The archive's own root folder ('./').
                continue
            raise UnsafeArchiveError(
                f"Refusing to extract '{archive_path}': member {name!r} "
                f"has no file name")
        if wanted is not None and (is_dir or parts[-1] not in wanted):
            continue
        kept.append((name, parts, is_dir, open_member))

    out = []
    for name, parts, is_dir, open_member in kept:
        target = _check_inside(archive_path, name, root, parts)
        if is_dir:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(osp.dirname(target), exist_ok=True)
            with open_member() as src, open(target, 'wb') as dst:
                shutil.copyfileobj(src, dst, CHUNK_SIZE)
        out.append((parts, is_dir))
    return out


__all__ = [
    'ChecksumError',
    'UnsafeArchiveError',
    'sha256sum',
    'download_verified',
    'safe_extract',
]
