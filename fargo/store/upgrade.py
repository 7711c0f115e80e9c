"""`python -m fargo.store.upgrade`: bring the store at the URL given on stdin to the newest schema revision.

`fargo up` runs this as a child process (`Store.migrate_apart`), so that alembic never lives in it.
"""
from __future__ import annotations

import sys

from fargo.store.database import Store


def main() -> int:
    url = sys.stdin.read().strip()
    store = Store(url)
    try:
        store.migrate()
    except Exception as e:  # noqa: BLE001 - the parent shows this one line, not a traceback
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
