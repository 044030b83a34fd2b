"""Fetch a file from a list of mirrors, verify its MD5, and write it atomically."""
import hashlib
import os

from striate.io import atomic_open

_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """The bytes fetched do not have the expected MD5."""


def download_file(urls, path, md5, *, max_bytes=1 << 30, timeout=60.0):
    """Download ``path`` from the first of ``urls`` that serves the bytes whose MD5 is ``md5``.

    Each attempt streams into a temporary file beside ``path`` while hashing; only a complete,
    verified file is renamed to ``path``, so an interrupted or corrupt download leaves nothing
    behind and never replaces a file already there.

    Args:
        urls: the mirrors' full addresses, tried in order (any scheme ``urllib`` opens, ``file://`` too).
        path: where the verified file goes; its directory must exist.
        md5: the expected MD5 as a hex string.
        max_bytes: give up on a mirror that sends more than this.
        timeout: seconds to wait on a connection.

    Raises:
        RuntimeError: no mirror served the expected bytes; the message lists each failure.
    """
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, path, md5.lower(), max_bytes, timeout)
            return os.fspath(path)
        except (OSError, ChecksumError, ValueError) as error:  # URLError and HTTPError are OSErrors
            failures.append(f"{url}: {error}")
    raise RuntimeError(f"download: could not fetch {os.path.basename(os.fspath(path))} from any mirror:\n  "
                       + "\n  ".join(failures))


def _fetch_verified(url, path, md5, max_bytes, timeout):
    import urllib.request  # here, not at the top: it pulls in http and ssl (~20 ms) for every `import striate.data`

    digest = hashlib.md5()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(path) as file:
        while chunk := response.read(_CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise ChecksumError(f"more than {max_bytes} bytes; refusing to continue")
            digest.update(chunk)
            file.write(chunk)
        # Raising here, inside atomic_open, removes the temporary file and leaves `path` alone.
        if digest.hexdigest() != md5:
            raise ChecksumError(f"MD5 mismatch: expected {md5}, got {digest.hexdigest()} ({received} bytes)")


__all__ = ["download_file", "ChecksumError"]
