"""The garbage collector's settings for a serving process (the core and each gateway worker).

Everything imported and built before serving (FastAPI, pydantic, SQLAlchemy, Babel, numpy, Apprise:
hundreds of thousands of objects) lives as long as the process. Moving it out of the collector's reach
keeps each full collection from walking all of it again while devices stream in. Young collections every
700 allocations (the default) collapsed ingest under load with 10,000 connected watches (about 100
frames/s against 4,100 with this threshold, bench/tcp_load.py, same run).
"""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000


def freeze_long_lived() -> None:
    """Call once serving: what exists now is frozen; young collections every 50,000 allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
