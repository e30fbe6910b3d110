"""Heap budget: the node with its outbox under `micropython -X heapsize=96k`.

Ten minutes of simulated time (1 reading/s, clock sped up 30x): 3 min streaming, a
5 min bridge outage (the 256-reading outbox fills up and overflows), 2 min streaming
again. `gc.mem_alloc()` after a collection, printed by the node every 20 readings,
must show no growth trend, and the node must reconnect and drain after the outage
(the moment that needs the most contiguous heap). The node runs the .mpy tree deploy
builds (bytecode, as on a board), not .py sources compiled at import. The figures
are printed (pytest -s) for the README. The unix port is 64-bit: objects take about
twice the heap they take on a 32-bit ESP32 or RP2040, so 96k here is the harder test.
"""

from statistics import median

from node_helpers import fields, node_config, run, status
from standin_bridge import StandinBridge

from microws_host.simulator import SimBoard

HEAPSIZE = "96k"
READINGS = 600  # 10 simulated minutes at 1 s
LOG_EVERY = 20


def test_node_heap_has_no_growth_trend_over_ten_simulated_minutes():
    async def scenario():
        bridge = StandinBridge()
        port = await bridge.start()
        cfg = node_config(bridge.url, interval_ms=1000, speedup=30, outbox=256, heap_log=LOG_EVERY,
                          backoff_max_ms=500)
        board = SimBoard(cfg, heapsize=HEAPSIZE, compiled=True)
        heap = {}

        def heap_at(seq):
            return lambda line: line.startswith("microws-node: heap ") and fields(line)["seq"] >= seq

        try:
            await board.start()
            await board.wait_line(heap_at(180), 60, 0)
            await bridge.kill()
            await board.wait_line(heap_at(480), 60)
            restarted = board.line_count
            await bridge.start(port)
            await board.wait_line(heap_at(READINGS), 60)
            # Reconnecting after the outage needs the most contiguous heap; at 96k on the
            # 64-bit port an attempt can hit MemoryError (fragmentation) and is retried.
            await board.wait_line(status("link up"), 90, restarted)
            await board.wait_line(lambda line: heap_at(READINGS)(line) and fields(line)["outbox"] < 20, 30, restarted)
            assert bridge.hellos, board.tail()
            boot = bridge.hellos[0]["boot"]
        finally:
            await board.stop()
            await bridge.stop()
        for line in board.lines:
            if line.startswith("microws-node: heap "):
                heap[fields(line)["seq"]] = fields(line)
        return heap, bridge, boot, list(board.lines)

    heap, bridge, boot, lines = run(scenario(), timeout=260)
    seqs = sorted(heap)
    alloc = [heap[s]["alloc"] for s in seqs]
    print("\nheap (seq: alloc/free/outbox):", " ".join("%d:%d/%d/%d" % (s, heap[s]["alloc"], heap[s]["free"],
                                                                     heap[s]["outbox"]) for s in seqs))
    retries = [line for line in lines if "MemoryError" in line]
    print("reconnect attempts that hit MemoryError: %d" % len(retries))
    assert seqs[-1] >= READINGS
    assert max(heap[s]["outbox"] for s in seqs) == 256  # the outage really filled the outbox
    assert heap[seqs[-1]]["dropped"] > 0
    # Steady state before the outage vs. at the end (both streaming, outbox near empty):
    before = [heap[s]["alloc"] for s in seqs if 60 <= s <= 180]
    after = [heap[s]["alloc"] for s in seqs if s >= seqs[-1] - 60]
    # A trend moves the median; one sample can catch a reconnect's transient objects
    # (seen once in CI: a single +4 KB sample at the end, the rest 1.5 KB below "before").
    growth = median(after) - median(before)
    print("alloc min/max overall: %d/%d; median before outage %d, at end %d, growth %d bytes; free at end %d"
          % (min(alloc), max(alloc), median(before), median(after), growth, heap[seqs[-1]]["free"]))
    assert growth < 1024, growth
    # The outage itself (outbox filling to capacity) must not grow the heap either: it is preallocated.
    during = [heap[s]["alloc"] for s in seqs if 200 <= s <= 480]
    assert median(during) - median(before) < 1024, (median(during), median(before))
    assert heap[seqs[-1]]["outbox"] < 20  # reconnected after the outage and drained the backlog
    assert min(heap[s]["free"] for s in seqs) > 8 * 1024  # head-room left
    assert bridge.unique("n1", boot)  # it really streamed
