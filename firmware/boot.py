"""Runs first on every boot and soft reset (also the raw-REPL ones host tools do).

Keeps an already running hardware watchdog fed while no node runs (file copies,
REPL); main.py's node takes over feeding. Kept tiny: everything here costs RAM.
"""

import gc

try:
    import board
    from node import config, watchdog

    watchdog.keep_fed(board, config.load(warn=lambda msg: None)["watchdog_s"])
except Exception as e:  # a broken config must still leave a usable REPL
    print("boot.py:", repr(e))  # main.py reports config errors
gc.collect()
