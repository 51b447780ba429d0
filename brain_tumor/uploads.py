"""Upload hygiene for a web server: read an uploaded file into memory, then delete it from disk.

Scans are personal data, so an upload must not outlive the request that reads it. Two facts
about web frameworks shape this (Gradio does both):
- an upload is stored under a folder named by a hash of its content, so two requests that upload
  the same file share one path, and the first to run deletes it while the second may still wait
  in the queue. The bytes of a deleted upload therefore stay in this process's memory (never on
  disk) for a few minutes under that path: same path, same content, by construction;
- a request names the file by its path, and a script can send any path. Only files inside the
  upload folder are read; anything else is refused without saying whether it exists.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable

from .imaging import ACCEPTED, ScanError


class UploadReader:
    def __init__(self, upload_dir, max_bytes: int, protected: Callable[[], Iterable[str]] = tuple,
                 stash_seconds: float = 600, stash_bytes: int = 256 * 2**20):
        """`protected()` lists files in the upload folder that must stay (e.g. a gallery's examples)."""
        self.upload_dir = Path(upload_dir).resolve()
        self.max_bytes, self.protected = max_bytes, protected
        self.stash_seconds, self.stash_bytes = stash_seconds, stash_bytes
        self._stash: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # path -> (bytes, time read)
        self._lock, self._swept = threading.Lock(), 0.0

    def read(self, path) -> bytes:
        """The file's bytes; the file itself is gone from disk when this returns (unless protected)."""
        if not path:
            raise ScanError(f"No file was uploaded. Upload one {ACCEPTED} file.")
        path = Path(path).resolve()
        if self.upload_dir not in path.parents:
            raise ScanError("That is not a file uploaded to this server: upload the file first, then send the "
                            "path the upload returned.")
        self._expire()
        try:
            size = path.stat().st_size
            data = path.read_bytes() if size <= self.max_bytes else None
        except FileNotFoundError:  # deleted by a request that uploaded the same file
            with self._lock:
                data = self._stash.get(str(path), (None,))[0]
            if data is None:
                raise ScanError("The uploaded file is no longer on the server; please upload it again.") from None
            return data
        if str(path) not in {str(Path(p).resolve()) for p in self.protected()}:
            if data is not None:
                with self._lock:
                    self._stash[str(path)] = (data, time.monotonic())
                    self._stash.move_to_end(str(path))
            path.unlink(missing_ok=True)
        if data is None:
            raise ScanError(f"The file is {size / 2**20:.0f} MB; the limit is {self.max_bytes // 2**20} MB.")
        return data

    def _expire(self) -> None:
        """Forget stashed uploads past their time or over the memory bound; sweep empty folders."""
        now = time.monotonic()
        with self._lock:
            total = sum(len(data) for data, _ in self._stash.values())
            while self._stash:
                data, added = next(iter(self._stash.values()))  # oldest first
                if total <= self.stash_bytes and added > now - self.stash_seconds:
                    break
                self._stash.popitem(last=False)
                total -= len(data)
            sweep = now - self._swept > 60  # at most once a minute
            if sweep:
                self._swept = now
        if sweep:
            self.remove_empty_folders()

    def remove_empty_folders(self, min_age_s: float = 60) -> None:
        """Empty <hash> folders would still tell which content was uploaded. Only folders older than
        a minute go: a younger one may be about to receive an upload of the same content."""
        for folder in self.upload_dir.iterdir() if self.upload_dir.is_dir() else ():
            try:
                if folder.is_dir() and time.time() - folder.stat().st_mtime > min_age_s and not any(folder.iterdir()):
                    folder.rmdir()
            except OSError:
                pass  # raced with an upload or another sweep: try again next time
