"""The one rule for tests that need a tool: skip locally when it is missing, fail in CI."""

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok, message):
    """Go on if ``ok``; else skip the test -- or fail it under CI=true, where nothing may skip."""
    if ok:
        return
    if IN_CI:
        pytest.fail(message + " (CI must install it: make test / .ci/run)")
    pytest.skip(message)
