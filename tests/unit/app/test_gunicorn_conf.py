"""The receiver's gunicorn hooks: a worker's start-up objects are kept out of the GC's scans."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def load_hooks():
    """gunicorn.conf.py as gunicorn reads it: a file in the working directory, not a package."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_post_worker_init_freezes_what_the_worker_has_built():
    gc.unfreeze()
    kept = [object() for _ in range(1000)]
    try:
        load_hooks().post_worker_init(worker=None)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()

