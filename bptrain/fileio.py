"""Writing files safely: atomic replacement (temp file, fsync, rename) and write failures of the machine as StorageError."""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from bptrain import interrupts
from bptrain.errors import BptrainError, ConfigError, StorageError


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None = None) -> None:
    """Write through `write(f)` into a temp file beside `path`, fsync it, then rename it over `path`.

    The file gets the mode a plain open() would give it (0666 minus the umask). With
    `keep_previous`, the file being replaced is first renamed to that name. A symlink is written
    through: its target is replaced atomically, the link stays. An existing FIFO, device or other
    file that is neither regular nor a folder cannot be replaced by renaming and is written into
    directly. A full disk, a file-size limit or a missing permission raises StorageError naming `path`.
    """
    path = Path(path)
    with writing(path):
        if _special(path):
            with open(path, "wb") as f:
                write(f)
                f.flush()
            return
        _replace(_link_target(path), write, keep_previous)


def _special(path: Path) -> bool:
    """Whether `path` (its links followed) exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _link_target(path: Path) -> Path:
    """The file a symlink `path` points to, through every link (it need not exist yet); `path` itself otherwise."""
    if not os.path.islink(path):
        return path
    return Path(os.path.realpath(path))


def _replace(path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None) -> None:
    """atomic_write's temp file beside `path`, renamed over it."""
    tmp = None
    try:
        while tmp is None:
            # named before it is created, so a signal arriving during the creation still finds it
            tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"  # os.urandom, as secrets.token_hex, without its imports
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 minus the umask, not mkstemp's 0600
            except FileExistsError:  # another writer's temp file: never ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        interrupts.raise_pending()  # a signal dropped meanwhile: the target keeps its old content
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:  # a signal too: the temp file never outlives the write
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


# Why a write failed when the machine, not bptrain or the user's input, is at fault: what to say and do.
_ENVIRONMENT = {
    errno.ENOSPC: ("no space left on the device", "free some space"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota"),
    errno.EFBIG: ("the file-size limit was reached", "raise the limit (ulimit -f)"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another one"),
    errno.EPERM: ("operation not permitted", "make the folder writable or choose another one"),
    errno.EROFS: ("read-only file system", "choose a folder on a writable file system"),
    errno.EIO: ("input/output error", "check the disk"),
    errno.EISDIR: ("a folder of that name is in the way", "move the folder away or write somewhere else"),
}


def storage_error(path: Path, error: OSError, doing: str = "write") -> StorageError | None:
    """StorageError "PATH: cannot DOING (why); what to do" for an environment OSError, else None."""
    if error.errno not in _ENVIRONMENT:
        return None
    why, advice = _ENVIRONMENT[error.errno]
    return StorageError(f"{path}: cannot {doing} ({why}); {advice}")


@contextmanager
def writing(path: Path, doing: str = "write") -> Iterator[None]:
    """Turn an environment OSError raised while writing `path` into StorageError; others pass through."""
    try:
        yield
    except OSError as e:
        translated = storage_error(path, e, doing)
        if translated is None:
            raise
        raise translated from None


def no_place_for(label: str, path: Path) -> BptrainError:
    """The error for the output file `path` (shown as `label`) that could not be created because of
    its folder (FileNotFoundError, NotADirectoryError): missing, a file, or one that takes no new files."""
    folder = path.parent
    if folder.is_dir():
        return StorageError(f"{label}: the folder {folder} does not take new files; choose another folder")
    if folder.exists():
        return ConfigError(f"{label}: {folder} is a file, not a folder")
    return ConfigError(f"{label}: the folder {folder} does not exist")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))



def _fsync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
