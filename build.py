#!/usr/bin/env python3
"""Build civcas.db from the curated CSV files in raw/.

    python build.py [--raw DIR] [--db PATH] [--check]

Exit 0 on success; non-zero, with one line per problem, on any invalid input.
The logic lives in the civcas package (civcas/build.py).
"""
import sys

from civcas.build import main

if __name__ == "__main__":
    sys.exit(main())
