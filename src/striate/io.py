"""Crash-safe file writes: a file is either its old contents or its complete new contents, never half.

The protocol (the one databases and package managers use): write a temporary file in the same
directory, flush and ``fsync`` it, ``os.replace`` it over the target (atomic on POSIX and Windows
within one file system), then ``fsync`` the directory so the rename itself survives a power cut.
On any exception, KeyboardInterrupt included, the temporary file is removed and the exception
re-raised; the previous file at ``path`` is never touched.
"""
import contextlib
import os
import secrets

__all__ = ["atomic_open", "atomic_write", "atomic_write_text"]

# Windows needs O_BINARY so that b"\n" is not written as b"\r\n"; elsewhere it does not exist.
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@contextlib.contextmanager
def atomic_open(path):
    """Open a binary file object whose contents replace ``path`` atomically when the block exits cleanly.

    Writes go to a fresh temporary file beside ``path``; leaving the ``with`` block normally
    flushes, fsyncs and renames it over ``path``; leaving it by an exception (KeyboardInterrupt
    included) removes the temporary file and leaves ``path`` as it was. The new file gets the
    usual permissions for the process's umask (``0o666 & ~umask``), as ``open(path, "wb")`` would.

    Example:
        >>> with atomic_open("weights.safetensors") as f:   # doctest: +SKIP
        ...     f.write(header); f.write(payload)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):   # say so in terms of the target, not of the temporary file
        raise FileNotFoundError(f"cannot write {path}: no directory {directory}")
    temp_path, fd = _create_temp_beside(path, directory)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        _remove_quietly(temp_path)
        raise
    _fsync_directory(directory)


def atomic_write(path, data):
    """Replace the file at ``path`` by the bytes ``data``, atomically (see :func:`atomic_open`).

    Args:
        path: the target file (str or path-like). Its directory must exist.
        data: a bytes-like object (bytes, bytearray, memoryview, a contiguous NumPy array).
    """
    if isinstance(data, str):
        raise TypeError("atomic_write: expected bytes-like data, got str (use atomic_write_text for text)")
    with atomic_open(path) as file:
        file.write(data)


def atomic_write_text(path, text, encoding="utf-8"):
    """Replace the file at ``path`` by ``text`` encoded with ``encoding``, atomically (for JSON and the like)."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text: expected str text, got {type(text).__name__}")
    atomic_write(path, text.encode(encoding))


def _create_temp_beside(path, directory):
    """Create and open a new, uniquely named hidden file in ``directory``; return ``(name, fd)``.

    ``O_EXCL`` with a random suffix means two writers (threads, processes) can never share a
    temporary file, and the 0o666 mode lets the umask decide permissions as for a plain open.
    """
    base = os.path.basename(path) or "file"
    while True:
        temp_path = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
        try:
            return temp_path, os.open(temp_path, _CREATE_FLAGS, 0o666)
        except FileExistsError:
            continue


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_directory(directory):
    """Make the rename durable; skipped where directories cannot be opened or synced (Windows, some FUSE)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
