"""The outbox: bounded, cumulative acks, rewind after reconnect, counted drops."""

import firmware_path  # noqa: F401  (puts firmware/ on sys.path)

# isort: split
from devtest import raises
from node.outbox import Outbox

T0 = 1790000000000  # epoch ms, beyond 32 bits on purpose


def fill(ob, n, start_ts=T0):
    return [ob.add(start_ts + 1000 * i, (20.0 + i, None)) for i in range(n)]


def test_seqs_start_at_one_and_count_up():
    ob = Outbox(8, 2)
    assert fill(ob, 3) == [1, 2, 3]
    assert len(ob) == 3 and ob.first == 1 and ob.next_seq == 4


def test_stored_reading_reads_back_with_timestamp_and_failed_sensor_as_none():
    ob = Outbox(4, 2)
    ob.add(T0 + 5, (21.5, None))
    assert ob.ts(1) == T0 + 5
    assert ob.value(1, 0) == 21.5
    assert ob.value(1, 1) is None
    with raises(IndexError):
        ob.value(2, 0)


def test_cumulative_ack_releases_everything_up_to_seq():
    ob = Outbox(8, 2)
    fill(ob, 5)
    assert ob.ack(3) == 3
    assert len(ob) == 2 and ob.first == 4
    assert ob.ack(2) == 0  # an old ack changes nothing
    assert ob.ack(99) == 2  # never past what exists
    assert len(ob) == 0 and ob.first == 6
    assert fill(ob, 1) == [6]


def test_full_ring_drops_oldest_and_counts_it():
    ob = Outbox(4, 2)
    fill(ob, 6)
    assert len(ob) == 4
    assert ob.dropped == 2
    assert ob.first == 3
    assert ob.value(3, 0) == 22.0
    assert ob.value(6, 0) == 25.0


def test_send_cursor_rewinds_to_oldest_unacked_on_reconnect():
    ob = Outbox(8, 2)
    fill(ob, 5)
    assert ob.unsent() == 5
    ob.mark_sent(5)
    assert ob.unsent() == 0
    ob.ack(2)
    ob.rewind()
    assert ob.sent == 2 and ob.unsent() == 3


def test_drop_moves_send_cursor_past_dropped_readings():
    ob = Outbox(3, 1)
    fill(ob, 3)
    ob.add(T0, (1.0,))
    assert ob.first == 2 and ob.sent == 1 and ob.unsent() == 3


def test_wraparound_keeps_order_over_many_cycles():
    ob = Outbox(5, 1)
    for i in range(1, 1001):
        ob.add(T0 + i, (float(i % 100),))
        if i % 3 == 0:
            ob.ack(i - 1)
    assert ob.next_seq == 1001
    for seq in range(ob.first, ob.next_seq):
        assert ob.ts(seq) == T0 + seq
        assert ob.value(seq, 0) == float(seq % 100)


def test_timestamps_spanning_months_keep_millisecond_precision():
    ob = Outbox(4, 1)
    day = 86400000
    ob.add(T0, (1.0,))
    ob.add(T0 + 30 * day, (2.0,))  # beyond 32 bits of ms
    ob.add(T0 + 60 * day, (3.0,))
    assert ob.ts(1) == T0 and ob.ts(2) == T0 + 30 * day and ob.ts(3) == T0 + 60 * day


def test_adding_to_a_full_outbox_allocates_nothing_that_stays():
    import gc

    if not hasattr(gc, "mem_alloc"):  # CPython has no heap counter; logic is covered above
        return
    ob = Outbox(64, 3)
    values = [21.0, 50.0, 300.0]
    for i in range(200):
        ob.add(T0 + i, values)
    gc.collect()
    before = gc.mem_alloc()
    for i in range(2000):
        ob.add(T0 + i, values)
    gc.collect()
    assert gc.mem_alloc() - before < 256, gc.mem_alloc() - before
