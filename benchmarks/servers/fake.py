"""The generated project's loopback fake provider in a process of its own, answering instantly.

`python -m benchmarks.servers.fake BACKEND_DIR` prints the base URL, then serves until killed.
No access log and no delay between deltas: the fake should cost as little as it can.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    from tests.fake_provider import FakeProvider

    fake = FakeProvider(delay_seconds=0.0, access_log=False)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
