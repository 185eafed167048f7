"""Writing a file atomically: a reader never sees half a file, and a crash leaves the previous one intact.

Shared by the bench results (``bench_results.write_json``), the pretrained-weights cache
(``transfer.cache``) and the servable model files (``serving.servable``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` (its folder made if needed) through a temporary file in the same folder and
    ``os.replace`` (atomic within one file system); the file is readable by all (mode 644). Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=p.parent, prefix=f".{p.stem}-", suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
    try:
        os.chmod(tmp.name, 0o644)  # NamedTemporaryFile makes it private
        os.replace(tmp.name, p)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
    return p
