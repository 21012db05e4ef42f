"""Polling shared by the ARM client flows (sdk_flow.py, az_flow.py)."""

import time


def wait_for(what, probe, timeout=60, every=0.5):
    """`probe()`'s first truthy answer, asked every `every` seconds for up
    to `timeout` seconds; fails naming `what` and the last answer."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")
