"""The node's sensors: the board profile's list, optionally narrowed by config."""


class Sensors:
    """Reads the chosen sensors of ``board`` into a reusable list (no per-sample alloc)."""

    def __init__(self, board, names=None):
        """``names``: sensor names from config (None: every sensor of the board)."""
        available = [name for name, _ in board.SENSORS]
        if names is None:
            names = available
        for name in names:
            if name not in available:
                raise ValueError("board %s has no sensor %r (has %s)" % (board.NAME, name, ", ".join(available)))
        units = dict(board.SENSORS)
        self.board = board
        self.names = tuple(names)
        self.units = {name: units[name] for name in self.names}
        self.values = [None] * len(self.names)

    def read(self, elapsed_ms):
        """Sample every sensor; a failing sensor reads None. Returns ``self.values``."""
        values = self.values
        for i, name in enumerate(self.names):
            try:
                values[i] = self.board.read(name, elapsed_ms)
            except Exception as e:  # one broken sensor must not stop the others
                print("microws-node: sensor %s: %r" % (name, e))
                values[i] = None
        return values
