"""Python's garbage collector set for a server whose pages make many short-lived objects.

A page of 50 incidents builds ~2,000 cells (a dict and a string or two each) and the strings of its template.
With Python's default thresholds (700, 10, 10) a young collection starts every 700 allocations, and every
~45 pages a full collection walks every object the process holds: Datasette, Jinja, pluggy and their caches,
~90,000 objects. At 1,000,000 incidents on the 2-core bench machine those full collections took 50-100 ms,
and they were what put the incidents pages' p95 over 100 ms (docs/performance.md, "Site").

So, once Datasette has started:

* `gc.freeze()`: what exists at start-up lives as long as the process, and no collection walks it again;
* a young generation of 5,000 objects instead of 700, so most of a page's objects are freed by reference
  counting before a collection looks at them. Cycles are still collected, only less often.
"""
from __future__ import annotations

import gc

from datasette import hookimpl

THRESHOLDS = (5000, 10, 10)


@hookimpl
def startup(datasette):
    gc.collect()  # what start-up left behind, before the rest is frozen
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
