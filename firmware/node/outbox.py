"""Bounded ring of readings the bridge has not acknowledged yet.

Readings of one boot get consecutive sequence numbers starting at 1, and the bridge
acks cumulatively, so the unacked readings are always one contiguous range of seqs
``first .. last``: the ring needs no per-entry seq, only where ``first`` sits.

All storage is allocated once (``array``s sized ``capacity``), so a full outbox costs
no more heap than an empty one. When the ring is full the oldest reading is dropped
and counted in ``dropped``; the node reports that count to the bridge, so a loss is
never silent.

Timestamps are epoch milliseconds (beyond 32 bits), stored as seconds (32 bits, good
until 2106) and milliseconds (16 bits) so no entry needs a boxed integer.
"""

from array import array

NAN = float("nan")


class Outbox:
    """Unacked readings of this boot, oldest first; seqs start at 1."""

    def __init__(self, capacity, width):
        """``capacity`` readings of ``width`` values each (one value per sensor)."""
        self.capacity = capacity
        self.width = width
        # array(code, range(n)) allocates exactly n items, no temporary copy
        self._secs = array("I", range(capacity))
        self._millis = array("H", range(capacity))
        self._values = array("f", range(capacity * width))
        self._head = 0  # ring slot of seq ``first``
        self.first = 1  # oldest unacked seq
        self.next_seq = 1  # seq the next reading gets
        self.sent = 0  # highest seq sent on the current connection
        self.dropped = 0  # readings lost to overflow since boot

    def __len__(self):
        return self.next_seq - self.first

    def unsent(self):
        """How many readings wait to be sent on the current connection."""
        return self.next_seq - 1 - self.sent

    def add(self, ts_ms, values):
        """Store one reading (``values``: ``width`` numbers, None for a failed sensor).

        Returns its seq. A full ring drops its oldest reading first.
        """
        if len(self) == self.capacity:
            self._drop_oldest()
        slot = (self._head + len(self)) % self.capacity
        self._secs[slot] = ts_ms // 1000
        self._millis[slot] = ts_ms % 1000
        base = slot * self.width
        store = self._values
        for i in range(self.width):
            v = values[i]
            store[base + i] = NAN if v is None else v
        seq = self.next_seq
        self.next_seq = seq + 1
        return seq

    def _drop_oldest(self):
        self._head = (self._head + 1) % self.capacity
        self.first += 1
        self.dropped += 1
        if self.sent < self.first - 1:
            self.sent = self.first - 1

    def ack(self, seq):
        """The bridge stored every reading up to ``seq``: release them. Returns how many."""
        if seq >= self.next_seq:
            seq = self.next_seq - 1  # never release what was not produced
        released = seq - self.first + 1
        if released <= 0:
            return 0
        self._head = (self._head + released) % self.capacity
        self.first = seq + 1
        if self.sent < seq:
            self.sent = seq
        return released

    def rewind(self):
        """A new connection: everything unacked has to be sent again."""
        self.sent = self.first - 1

    def mark_sent(self, seq):
        """Readings up to ``seq`` went out on the current connection."""
        if seq > self.sent:
            self.sent = seq

    def ts(self, seq):
        """Epoch ms of the stored reading ``seq``."""
        slot = self._slot(seq)
        return self._secs[slot] * 1000 + self._millis[slot]

    def value(self, seq, index):
        """Value ``index`` of reading ``seq``; None when the sensor had failed."""
        v = self._values[self._slot(seq) * self.width + index]
        return None if v != v else v  # NaN != NaN

    def _slot(self, seq):
        if not self.first <= seq < self.next_seq:
            raise IndexError("seq not in outbox")
        return (self._head + seq - self.first) % self.capacity
