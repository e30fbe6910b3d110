"""microws_host: the CPython side of microws (bridge, dashboard, serial bridge, board tools)."""

__version__ = "0.1.0"
