"""Waiting for something a test caused to happen."""

import time


def wait_for(condition, what: str, timeout: float = 60, every: float = 0.5):
    """condition()'s first truthy value, or an AssertionError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)
