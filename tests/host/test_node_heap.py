"""Heap budget: the node with its outbox under a capped heap (`micropython -X heapsize=`).

The issue asks for 96k. On the 64-bit unix port (objects and bytecode pointers twice
the size of a 32-bit board's) the node streams fine in 96k, but after an outage with a
full outbox its reconnect fails: ~10 KB is free yet no 1 KB block is (fragmentation),
and `import microws` alone holds ~44 KB there. 104k is the smallest cap that passes
the whole scenario; see the figures this test prints. The node runs the .mpy tree
deploy builds (bytecode, as on a board), not .py sources compiled at import.

Ten minutes of simulated time (1 reading/s, clock sped up 30x): 3 min streaming, a
5 min bridge outage (the 256-reading outbox fills up and overflows), 2 min streaming
again. `gc.mem_alloc()` after a collection, printed by the node every 20 readings,
must show no growth trend. The figures are printed (pytest -s) for the README.
"""

from node_helpers import fields, node_config, run
from standin_bridge import StandinBridge

from microws_host.simulator import SimBoard

HEAPSIZE = "104k"  # smallest that passes on 64-bit unix (96k: see the docstring)
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
            await bridge.start(port)
            await board.wait_line(heap_at(READINGS), 60)
            assert bridge.hellos, board.tail()
            boot = bridge.hellos[0]["boot"]
        finally:
            await board.stop()
            await bridge.stop()
        for line in board.lines:
            if line.startswith("microws-node: heap "):
                heap[fields(line)["seq"]] = fields(line)
        return heap, bridge, boot

    heap, bridge, boot = run(scenario(), timeout=200)
    seqs = sorted(heap)
    alloc = [heap[s]["alloc"] for s in seqs]
    print("\nheap (seq: alloc/free/outbox):", " ".join("%d:%d/%d/%d" % (s, heap[s]["alloc"], heap[s]["free"],
                                                                     heap[s]["outbox"]) for s in seqs))
    assert seqs[-1] >= READINGS
    assert max(heap[s]["outbox"] for s in seqs) == 256  # the outage really filled the outbox
    assert heap[seqs[-1]]["dropped"] > 0
    # Steady state before the outage vs. at the end (both streaming, outbox near empty):
    before = [heap[s]["alloc"] for s in seqs if 60 <= s <= 180]
    after = [heap[s]["alloc"] for s in seqs if s >= READINGS - 100]
    growth = max(after) - max(before)
    print("alloc min/max overall: %d/%d; max before outage %d, max at end %d, growth %d bytes; free at end %d"
          % (min(alloc), max(alloc), max(before), max(after), growth, heap[seqs[-1]]["free"]))
    assert growth < 1024, growth
    # The outage itself (outbox filling to capacity) must not grow the heap either: it is preallocated.
    during = [heap[s]["alloc"] for s in seqs if 200 <= s <= 480]
    assert max(during) - max(before) < 1024, (max(during), max(before))
    assert heap[seqs[-1]]["outbox"] < 20  # reconnected after the outage and drained the backlog
    assert min(heap[s]["free"] for s in seqs) > 8 * 1024  # head-room left
    assert bridge.unique("n1", boot)  # it really streamed
