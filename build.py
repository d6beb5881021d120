#!/usr/bin/env python3
"""Build civcas.db from the curated CSV files in raw/.

    python build.py [--raw DIR] [--db PATH] [--check]

Exit 0 on success; non-zero, with one line per problem, on any invalid input.
The logic lives in the civcas package (civcas/build.py).
"""
import sys

if __name__ == "__main__":
    # sqlite-utils imports pandas and numpy whenever they are installed (the test extra installs them) for a
    # DataFrame support the build never uses: ~60 MB of the build's peak memory. Marked absent, it skips them.
    for unused in ("pandas", "numpy"):
        sys.modules.setdefault(unused, None)

from civcas.build import main, stop_sqlite_memory_statistics  # noqa: E402

if __name__ == "__main__":
    stop_sqlite_memory_statistics()  # a fresh process: no connection is open yet
    sys.exit(main())
