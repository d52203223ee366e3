"""Write-then-rename helpers so a failed run never leaves partial output behind.

Staging files and folders are siblings of the target named ``.<name>.pcgen-<pid>-*.tmp`` so a
later run can tell its own leftovers from a user's files and remove those of a process that
died (SIGKILL, power loss) without touching anything else.

A finished folder records what pcgen wrote in ``.pcgen-manifest.json``. Writing into an existing
folder replaces only files listed there: a user's own files are never removed or replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from pcgen.errors import OutputError

MANIFEST = ".pcgen-manifest.json"
_STAGE = re.compile(r"(\d+)-[^/]*\.tmp[^/]*")
# A lock file younger than this with no PID in it yet is being created, not abandoned.
_LOCK_GRACE_S = 10.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _target(path: str | os.PathLike) -> Path:
    """Absolute, normalized path (``..`` and ``.`` resolved) with a usable name."""
    path = Path(os.path.abspath(path))
    if not path.name:
        raise OutputError("cannot write to the file-system root", path)
    return path


def _check_parent(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror})", parent) from None
    if not os.access(parent, os.W_OK):
        raise OutputError("output folder is not writable", parent)


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove staging leftovers of ``path`` whose process is gone; returns what was removed.

    Only names this module creates (``.<name>.pcgen-<pid>-*.tmp`` for folders,
    ``.<stem>.pcgen-<pid>-*.tmp<suffix>`` for files) with a PID that no longer runs are touched.
    """
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    prefixes = (f".{path.name}.pcgen-", f".{path.stem}.pcgen-")
    for item in path.parent.iterdir():
        prefix = next((p for p in prefixes if item.name.startswith(p)), None)
        m = _STAGE.fullmatch(item.name[len(prefix):]) if prefix else None
        if not m or _alive(int(m.group(1))):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix (``.tmp-XXXX.laz``) so writers that pick a
    format by extension still work.
    """
    path = _target(path)
    if path.is_dir():
        raise OutputError("output path is a folder, expected a file name", path)
    if path.is_file() and not path.stat().st_mode & 0o222:
        # a rename needs only the folder's permission: it would replace a protected file
        raise OutputError("output file is read-only; it is not replaced", path)
    _check_parent(path)
    remove_stale(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.pcgen-{os.getpid()}-", suffix=f".tmp{path.suffix}",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the finished file the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold ``.<name>.pcgen-lock`` beside ``path`` so two runs never write one output at once.

    The lock is an exclusively created file holding the owner's PID; one whose process is gone
    is taken over.
    """
    path = _target(path)
    lock = path.with_name(f".{path.name}.pcgen-lock")
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                text = lock.read_text().strip()
                age = time.time() - lock.stat().st_mtime
            except OSError:
                continue
            pid = int(text) if text.isdigit() else None
            if pid is None and age < _LOCK_GRACE_S:
                raise OutputError("another pcgen run is writing this output", path) from None
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise OutputError(f"another pcgen run (pid {pid}) is writing this output", path) from None
            if pid == os.getpid():
                raise OutputError("this run already writes this output", path) from None
            lock.unlink(missing_ok=True)  # its process is gone
        except OSError as exc:
            raise OutputError(f"cannot create a lock beside the output ({exc.strerror})", path) from None
    else:
        raise OutputError("cannot take the output lock", path)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def is_non_empty_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() and any(path.iterdir())


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh staging folder beside ``path``; move its files into ``path`` only on success.

    A missing ``path`` appears in one rename. An existing folder is refused unless ``overwrite``;
    with it, the new files replace only files an earlier pcgen run recorded in its manifest, and
    a new file whose name is taken by a file pcgen did not write stops the run (nothing moved).

    Raises:
        OutputError: ``path`` is a file, is being written by another run, is not empty without
            ``overwrite``, or holds a file of the user's that the output would replace.
    """
    path = _target(path)
    if path.exists() and not path.is_dir():
        raise OutputError("output path exists and is not a folder", path)
    _check_parent(path)
    with output_lock(path):
        remove_stale(path)
        if not overwrite and is_non_empty_dir(path):
            raise OutputError("output folder exists and is not empty", path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.pcgen-{os.getpid()}-", suffix=".tmp",
                                    dir=path.parent))
        try:
            yield tmp
            _commit(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def _manifest(path: Path) -> set[str]:
    """Relative file names an earlier pcgen run wrote into ``path`` (only safe, inside names)."""
    try:
        names = json.loads((path / MANIFEST).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    root = os.path.realpath(path)
    safe = set()
    for n in names:
        if not isinstance(n, str) or os.path.isabs(n) or ".." in Path(n).parts or n == MANIFEST:
            continue
        if (os.path.realpath(os.path.join(root, os.path.dirname(n))) + os.sep).startswith(root + os.sep):
            safe.add(os.path.normpath(n))
    return safe


def _commit(tmp: Path, path: Path) -> None:
    own = [f for f in _files(tmp) if f != MANIFEST]
    (tmp / MANIFEST).write_text(json.dumps({"files": own}, indent=1) + "\n")
    os.chmod(tmp, 0o777 & ~_umask())
    if not path.exists():
        try:
            os.rename(tmp, path)
            return
        except OSError:  # created meanwhile: merge below
            pass
    old = _manifest(path)
    for rel in own:
        dst = path / rel
        if (dst.exists() or dst.is_symlink()) and (rel not in old or dst.is_dir()):
            raise OutputError("would replace a file pcgen did not write; move it away or pick "
                              "another output folder", dst)
        parent = Path(rel).parent
        while parent != Path("."):
            if (path / parent).exists() and not (path / parent).is_dir():
                raise OutputError("a file is in the way of an output folder", path / parent)
            parent = parent.parent
    # Mark the folder as in transition first: a crash mid-merge still lets the next run
    # recognise every file of both runs as pcgen's.
    _write_manifest(path, sorted(old | set(own)))
    for rel in sorted(old - set(own)):
        stale = path / rel
        if stale.is_file() or stale.is_symlink():
            stale.unlink(missing_ok=True)
            _prune(stale.parent, path)
    for rel in own:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, path / rel)
    _write_manifest(path, own)


def _write_manifest(path: Path, files: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.pcgen-{os.getpid()}-", suffix=".tmp", dir=path)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({"files": files}, indent=1) + "\n")
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path / MANIFEST)


def _prune(folder: Path, root: Path) -> None:
    """Remove folders that became empty when pcgen's old files left, up to ``root``."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
