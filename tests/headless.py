"""Headless Chromium for the browser tests (Debian's `chromium`, driven by Playwright)."""

import shutil

# As root and on a closed network: no sandbox, no GPU, no background traffic that the
# machine's network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path():
    """The Chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")
