"""Sans-I/O protocol state machine, organised like the Autobahn categories.

Each test feeds bytes from ``wirepeer`` (an independent frame builder) and checks
events and the bytes microws would send.
"""

from devtest import IS_MICROPYTHON
from wirepeer import (
    CLOSED,
    CLOSING,
    ONE_BUFFER,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    close_payload,
    frame,
)

from microws.protocol import WRITE_CHUNK, Protocol


def server(max_size=65536):
    return Protocol(client=False, max_size=max_size)


def client(max_size=65536):
    return Protocol(client=True, max_size=max_size)


def sent(p):
    """All output the protocol queued, as one bytes object (chunked frames joined)."""
    parts = []
    for item in p.out:
        if isinstance(item, (bytes, bytearray)):
            parts.append(bytes(item))
        else:
            parts.extend(bytes(c) for c in item)
    p.out = ()
    return b"".join(parts)


def parse_out(data, masked):
    """Frames in bytes microws produced: list of (fin, op, payload)."""
    out = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        assert bool(b1 & 0x80) == masked
        n = b1 & 0x7F
        i += 2
        if n == 126:
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        elif n == 127:
            n = int.from_bytes(data[i : i + 8], "big")
            i += 8
        key = None
        if masked:
            key = data[i : i + 4]
            i += 4
        pl = data[i : i + n]
        if key:
            pl = bytes(pl[j] ^ key[j & 3] for j in range(n))
        i += n
        out.append((b0 & 0x80, b0 & 0x0F, pl))
    return out


def close_code_sent(p):
    frames = parse_out(sent(p), p.client)
    closes = [f for f in frames if f[1] == OP_CLOSE]
    assert closes, frames
    pl = closes[-1][2]
    return int.from_bytes(pl[:2], "big") if pl else None


# ---- 1 framing ---------------------------------------------------------------


def test_server_receives_text_and_binary_of_every_length_form():
    for n in (0, 1, 125, 126, 127, 65535, 65536):
        p = server(max_size=1 << 20)
        p.receive_data(frame(OP_BINARY, bytes(range(256)) * (n // 256) + bytes(range(n % 256))))
        p.receive_data(frame(OP_TEXT, "x" * n))
        assert [(op, len(d)) for op, d in p.events] == [(OP_BINARY, n), (OP_TEXT, n)]
        assert p.state == OPEN


def test_frames_arriving_one_byte_at_a_time_parse_identically():
    wire = frame(OP_TEXT, "hello") + frame(OP_BINARY, b"\x00" * 300) + frame(OP_PING, b"p")
    wire += frame(OP_BINARY, b"z" * 70000)
    p = server(max_size=1 << 20)
    for i in range(len(wire)):
        p.receive_data(wire[i : i + 1])
    assert [op for op, _ in p.events] == [OP_TEXT, OP_BINARY, OP_BINARY]  # the ping: answered
    assert p.events[0][1] == "hello" and bytes(p.events[2][1]) == b"z" * 70000
    assert parse_out(sent(p), False) == [(0x80, OP_PONG, b"p")]


def test_server_fails_unmasked_client_frame_with_1002():
    p = server()
    p.receive_data(frame(OP_TEXT, "hi", mask=False))
    assert p.events == [(OP_CLOSE, (1002, p.close_sent[1]))]
    assert close_code_sent(p) == 1002
    assert p.state == CLOSED and p.failed


def test_client_fails_masked_server_frame_with_1002():
    p = client()
    p.receive_data(frame(OP_TEXT, "hi", mask=True))
    assert close_code_sent(p) == 1002


def test_client_masks_every_frame_with_a_fresh_key():
    p = client()
    p.send_frame(OP_TEXT, b"same")
    p.send_frame(OP_TEXT, b"same")
    data = sent(p)
    assert data[1] & 0x80 and data[11] & 0x80
    assert data[2:6] != data[12:16]  # different keys
    assert parse_out(data, True) == [(0x80, OP_TEXT, b"same")] * 2


def test_server_frames_are_never_masked():
    p = server()
    p.send_frame(OP_BINARY, b"abc")
    assert sent(p) == b"\x82\x03abc"


def test_large_frames_are_written_in_chunks_with_correct_bytes():
    payload = bytes(range(256)) * ((ONE_BUFFER + 3 * WRITE_CHUNK) // 256 + 3)
    for p in (client(), server()):
        p.send_frame(OP_BINARY, payload)
        assert not isinstance(p.out[0], (bytes, bytearray))  # a generator of chunks
        assert parse_out(sent(p), p.client) == [(0x80, OP_BINARY, payload)]


def test_big_client_frames_queued_together_share_the_mask_buffer_correctly():
    # Sizes around the chunking edges: 16-bit and 64-bit lengths, odd mask phases.
    sizes = (ONE_BUFFER + 1, WRITE_CHUNK * 2 - 3, 70001, WRITE_CHUNK + 7)
    p = client()
    payloads = [bytes((i * 7 + k) & 0xFF for i in range(n)) for k, n in enumerate(sizes)]
    for payload in payloads:
        p.send_frame(OP_BINARY, payload)
    assert parse_out(sent(p), True) == [(0x80, OP_BINARY, pl) for pl in payloads]


def test_64_bit_length_with_top_bit_set_is_rejected():
    p = server()
    p.receive_data(b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"abcd")
    assert close_code_sent(p) == 1002


# ---- 2 ping/pong -------------------------------------------------------------


def test_ping_is_answered_with_pong_carrying_the_same_payload():
    for payload in (b"", b"hello", bytes(range(125))):
        p = server()
        p.receive_data(frame(OP_PING, payload))
        assert parse_out(sent(p), False) == [(0x80, OP_PONG, payload)]
        assert not p.events  # answered here: nothing for the application


def test_client_answers_ping_with_masked_pong():
    p = client()
    p.receive_data(frame(OP_PING, b"abc", mask=False))
    assert parse_out(sent(p), True) == [(0x80, OP_PONG, b"abc")]


def test_ten_pings_in_one_read_get_ten_pongs_in_order():
    # Autobahn 2.10 sends 10 pings at once and wants every pong (beyond the RFC's MAY).
    for p, masked in ((server(), False), (client(), True)):
        p.receive_data(b"".join(frame(OP_PING, b"p%d" % i, mask=masked is False) for i in range(10)))
        assert parse_out(sent(p), masked) == [(0x80, OP_PONG, b"p%d" % i) for i in range(10)]


def test_a_ping_flood_in_one_read_queues_a_bounded_number_of_pongs_the_last_for_the_latest():
    # What a read of pings leaves queued must not grow with the read (a board's heap):
    # past a few dozen, the latest ping's pong replaces the last unsent one.
    for p, masked in ((server(), False), (client(), True)):
        p.send_frame(OP_TEXT, b"before")
        p.receive_data(b"".join(frame(OP_PING, b"%d" % i, mask=masked is False) for i in range(1000)))
        frames = parse_out(sent(p), masked)
        assert frames[0] == (0x80, OP_TEXT, b"before")  # never replaced: not a pong
        pongs = frames[1:]
        assert 10 <= len(pongs) <= 64, len(pongs)
        assert all(f[1] == OP_PONG for f in pongs) and pongs[-1][2] == b"999"
        payloads = [int(f[2]) for f in pongs]
        assert payloads == sorted(payloads)  # still in the order the pings came
        assert not p.events and p.state == OPEN


def test_unsolicited_pong_is_only_an_event():
    p = server()
    p.receive_data(frame(OP_PONG, b"x"))
    assert p.events == [(OP_PONG, b"x")] and sent(p) == b""


def test_control_frame_over_125_bytes_fails_1002():
    p = server()
    p.receive_data(frame(OP_PING, b"x" * 126))
    assert close_code_sent(p) == 1002


def test_fragmented_control_frame_fails_1002():
    p = server()
    p.receive_data(frame(OP_PING, b"x", fin=False))
    assert close_code_sent(p) == 1002


# ---- 3 reserved bits / 4 opcodes --------------------------------------------


def test_reserved_bits_fail_1002():
    for rsv in (1, 2, 3, 4, 5, 6, 7):
        p = server()
        p.receive_data(frame(OP_TEXT, "x", rsv=rsv))
        assert close_code_sent(p) == 1002, rsv
        assert not [e for e in p.events if e[0] == OP_TEXT]


def test_reserved_opcodes_fail_1002():
    for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        p = server()
        p.receive_data(frame(op, b""))
        assert close_code_sent(p) == 1002, op


def test_nothing_after_a_protocol_error_is_processed():
    p = server()
    p.receive_data(frame(OP_TEXT, "a") + frame(OP_TEXT, "b", rsv=4) + frame(OP_TEXT, "c"))
    assert [e for e in p.events if e[0] == OP_TEXT] == [(OP_TEXT, "a")]
    p.receive_data(frame(OP_TEXT, "d"))
    assert [e for e in p.events if e[0] == OP_TEXT] == [(OP_TEXT, "a")]


def test_a_bad_frame_after_messages_not_taken_fails_only_once_they_are():
    # Frames are acted on in order: the message before the bad frame is delivered and
    # may be answered, then the connection fails (Autobahn 3.2 strict).
    p = server()
    p.receive_data(frame(OP_TEXT, "a") + frame(OP_PING, "p") + frame(OP_TEXT, "b", rsv=4) + frame(OP_TEXT, "c"))
    assert p.events == [(OP_TEXT, "a")]
    assert p.error[0] == 1002 and p.failed and p.close_sent is None and p.state == OPEN
    assert [f[1] for f in parse_out(sent(p), False)] == [OP_PONG]  # the ping before it: answered
    p.events = ()
    p.send_frame(OP_TEXT, b"a")  # the answer still goes out
    p.receive_data(frame(OP_TEXT, "d"))  # nothing after the bad frame counts
    assert p.events == ()
    p.fail(*p.error)
    assert p.error is None and p.state == CLOSED
    assert [(f[1], f[2][:2]) for f in parse_out(sent(p), False)] == [(OP_TEXT, b"a"), (OP_CLOSE, b"\x03\xea")]


def test_failing_with_no_heap_left_for_the_close_frame_still_ends_the_connection():
    # A full heap can refuse even the close frame: the failure must not escape as a
    # MemoryError from receive_data (the I/O layer then drops TCP: the peer sees 1006).
    p = server()

    def no_memory(*args):
        raise MemoryError

    p.send_frame = no_memory
    p.receive_data(frame(OP_TEXT, "x", rsv=4))
    assert p.failed and p.state == CLOSED and p.out == ()


def test_a_bad_frame_after_only_control_frames_fails_at_once():
    p = client()
    p.receive_data(frame(OP_PING, "p", mask=False) + frame(OP_BINARY, "b", mask=True))
    assert p.error is None and p.state == CLOSED
    assert close_code_sent(p) == 1002


# ---- 5 fragmentation ----------------------------------------------------------


def test_fragmented_text_with_interleaved_pings_is_reassembled():
    p = server()
    p.receive_data(frame(OP_TEXT, "frag", fin=False))
    p.receive_data(frame(OP_PING, b"1"))
    p.receive_data(frame(0, "men", fin=False))
    p.receive_data(frame(OP_PING, b"2"))
    p.receive_data(frame(0, "ted", fin=True))
    assert [e for e in p.events if e[0] == OP_TEXT] == [(OP_TEXT, "fragmented")]
    pongs = parse_out(sent(p), False)
    assert pongs == [(0x80, OP_PONG, b"1"), (0x80, OP_PONG, b"2")]


def test_fragmented_binary_with_empty_fragments():
    p = server()
    p.receive_data(frame(OP_BINARY, b"", fin=False) + frame(0, b"ab", fin=False) + frame(0, b"", fin=True))
    assert [(op, bytes(d)) for op, d in p.events] == [(OP_BINARY, b"ab")]


def test_continuation_without_a_message_fails_1002():
    p = server()
    p.receive_data(frame(0, "x", fin=True))
    assert close_code_sent(p) == 1002


def test_new_message_inside_a_fragmented_one_fails_1002():
    p = server()
    p.receive_data(frame(OP_TEXT, "a", fin=False) + frame(OP_TEXT, "b"))
    assert close_code_sent(p) == 1002


# ---- 6 UTF-8 handling ----------------------------------------------------------


def test_invalid_utf8_in_a_text_frame_fails_1007():
    for bad in (b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xce\xba\xe1\xbd"):
        p = server()
        p.receive_data(frame(OP_TEXT, bad))
        assert close_code_sent(p) == 1007, bad


def test_valid_utf8_split_across_fragments_at_every_byte():
    text = "κόσμε€𐍈".encode()
    for cut in range(1, len(text)):
        p = server()
        p.receive_data(frame(OP_TEXT, text[:cut], fin=False) + frame(0, text[cut:]))
        assert p.events == [(OP_TEXT, "κόσμε€𐍈")], cut


def test_invalid_utf8_fails_on_the_fragment_that_breaks_it():
    p = server()
    p.receive_data(frame(OP_TEXT, b"\xce\xba\xf4", fin=False))
    assert p.state == OPEN
    p.receive_data(frame(0, b"\x90", fin=False))  # U+11xxxx: known bad before the end
    assert close_code_sent(p) == 1007


def test_text_ending_mid_character_across_fragments_fails_1007():
    p = server()
    p.receive_data(frame(OP_TEXT, b"ok\xe2", fin=False) + frame(0, b"\x82"))
    assert close_code_sent(p) == 1007


def test_invalid_utf8_fails_as_soon_as_its_piece_of_a_frame_arrives():
    # A text frame read in pieces is unmasked and checked piece by piece: 1007 comes
    # with the piece that breaks it, not when the frame is complete (Autobahn 6.4.3).
    for make in (server, client):
        for first in (1000, 1001, 1002, 1003):  # every phase of the mask key
            p = make()
            wire = frame(OP_TEXT, b"a" * first + b"\xf4\x90\x80\x80" + b"b" * 2000, mask=not p.client)
            head = len(wire) - (first + 2004)
            p.receive_data(wire[: head + first - 7])
            p.receive_data(wire[head + first - 7 : head + first])
            assert p.state == OPEN and p.partial is not None
            p.receive_data(wire[head + first : head + first + 2])  # 0xf4 0x90: no such code point
            assert p.state == CLOSED and close_code_sent(p) == 1007, (p.client, first)


def test_text_read_in_pieces_across_mask_phases_decodes_exactly():
    text = "é€𐍈a" * 700
    for make in (server, client):
        for cut in (1, 2, 3, 5, 333):
            p = make()
            wire = frame(OP_TEXT, text, mask=not p.client)
            for i in range(0, len(wire), cut * 97 + 1):
                p.receive_data(wire[i : i + cut * 97 + 1])
            assert p.events == [(OP_TEXT, text)], (p.client, cut)


def test_binary_is_not_utf8_checked():
    p = server()
    p.receive_data(frame(OP_BINARY, b"\xff\xfe"))
    assert [(op, bytes(d)) for op, d in p.events] == [(OP_BINARY, b"\xff\xfe")]


# ---- 7 close handling ----------------------------------------------------------


def test_close_is_echoed_with_the_same_code():
    p = server()
    p.receive_data(frame(OP_CLOSE, close_payload(1000, "bye")))
    assert p.events == [(OP_CLOSE, (1000, "bye"))]
    assert close_code_sent(p) == 1000 and p.state == CLOSED


def test_empty_close_is_echoed_empty():
    p = server()
    p.receive_data(frame(OP_CLOSE, b""))
    assert p.events == [(OP_CLOSE, (1005, ""))]
    assert parse_out(sent(p), False) == [(0x80, OP_CLOSE, b"")]


def test_bad_close_payloads_fail_with_the_right_code():
    cases = [
        (b"\x03", 1002),
        (close_payload(999), 1002),
        (close_payload(1004), 1002),
        (close_payload(1005), 1002),
        (close_payload(1006), 1002),
        (close_payload(1015), 1002),
        (close_payload(1016), 1002),
        (close_payload(2999), 1002),
        (close_payload(5000), 1002),
        (close_payload(1000, b"\xc0\x80"), 1007),
    ]
    for payload, code in cases:
        p = server()
        p.receive_data(frame(OP_CLOSE, payload))
        assert close_code_sent(p) == code, (payload, code)


def test_valid_application_close_codes_are_accepted():
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        p = server()
        p.receive_data(frame(OP_CLOSE, close_payload(code)))
        assert close_code_sent(p) == code


def test_we_close_then_peer_answers():
    p = client()
    p.send_close(1001, "going")
    assert p.state == CLOSING
    assert parse_out(sent(p), True) == [(0x80, OP_CLOSE, close_payload(1001, "going"))]
    p.receive_data(frame(OP_CLOSE, close_payload(1001), mask=False))
    assert p.state == CLOSED and sent(p) == b""  # no second close


def test_data_after_close_is_ignored_and_no_pong_after_close_sent():
    p = server()
    p.send_close(1000)
    sent(p)
    p.receive_data(frame(OP_PING, b"late"))
    assert sent(p) == b""


# ---- 9 limits ------------------------------------------------------------------


def test_oversize_frame_fails_1009_from_the_header_alone():
    p = server(max_size=16384)
    p.receive_data(b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"abcd")  # header only: 1 MiB announced
    assert close_code_sent(p) == 1009
    assert p.payload_view() is None  # nothing was allocated for it


def _without_big_buffers(limit):
    """Make the protocol's ``bytearray(n)`` fail for n > limit, as on a full heap."""
    import microws.protocol as protocol

    def small_bytearray(*args):
        if args and isinstance(args[0], int) and args[0] > limit:
            raise MemoryError("test: no block of %d bytes" % args[0])
        return bytearray(*args)

    protocol.bytearray = small_bytearray
    return protocol


def test_payload_buffer_that_cannot_be_made_is_asked_of_the_io_layer_then_filled():
    data = bytes(range(256)) * 80  # 20 KiB: read in pieces, so a buffer is allocated
    wire = frame(OP_BINARY, data)
    protocol = _without_big_buffers(1024)
    try:
        p = server()
        p.receive_data(wire[:100])
        assert p.want == len(data) and not p.events and p.state == OPEN
        assert p.payload_view() is None  # no buffer yet: the I/O layer must not read into one
        p.payload_room(bytearray(p.want))  # the I/O layer made it elsewhere
        assert p.want == 0
        view = p.payload_view()
        assert view is not None and len(view) == len(data) - (100 - 8)  # 8 = header with mask key
        p.receive_data(wire[100:])
        assert p.events == [(OP_BINARY, bytearray(data))]
    finally:
        del protocol.bytearray


def test_payload_buffer_that_cannot_be_made_anywhere_fails_1009():
    protocol = _without_big_buffers(1024)
    try:
        p = server()
        p.receive_data(frame(OP_BINARY, b"z" * 5000)[:50])
        assert p.want == 5000
        p.payload_room(None)
        assert p.want == 0 and p.state == CLOSED
        assert close_code_sent(p) == 1009
    finally:
        del protocol.bytearray


def test_fragmented_message_whose_buffer_cannot_grow_asks_the_io_layer_then_goes_on():
    # On MicroPython a continuation is read straight into its message's buffer; when
    # that cannot grow (a full heap, or a dead big message still pinned by a stale
    # pointer on this task's stack) the grown buffer is asked of the I/O layer, made
    # from a shallow stack, and the frame is parsed again. (CPython gives a fragment
    # its own buffer first: the same ask, for that one.)
    data = bytes(range(256)) * 20  # 5 KiB: its message buffer cannot be made here
    whole = frame(OP_BINARY, b"first", fin=False) + frame(OP_CONT, data)
    # Arriving in pieces (the continuation's payload is then read into place); and,
    # on MicroPython, in one read (the frame is copied into place from the read).
    for cut in (200, len(whole)) if IS_MICROPYTHON else (200,):
        protocol = _without_big_buffers(1024)
        try:
            p = server()
            p.receive_data(whole[:cut])
            assert p.want >= len(data) and not p.events and p.state == OPEN, cut
            assert p.payload_view() is None
            p.payload_room(bytearray(p.want))
            assert p.want == 0
        finally:
            del protocol.bytearray
        p.receive_data(whole[cut:])
        assert p.events == [(OP_BINARY, bytearray(b"first" + data))], cut
        assert p.state == OPEN


def test_fragmented_message_buffer_takes_max_size_at_once_from_a_32nd_of_the_heap():
    # From a 32nd of the heap the buffer tries max_size in one block (if at most 3/4 of
    # the heap) instead of doubling on; a message that ends below half of it is copied
    # out to its size, one above half keeps it; when max_size cannot be had, doubling
    # goes on.
    import microws.protocol as protocol

    saved = protocol._HEAP_SIZE
    protocol._HEAP_SIZE = 32000  # from 1000 B, up to 24000 B
    piece = b"0123456789" * 60  # 600 B
    try:
        for op in (OP_BINARY, OP_TEXT):
            # (max_size, bytearray limit, buffer after the third piece, copied out at the end)
            for max_size, limit, grown, copied in ((16000, None, 16001, True), (4000, None, 4001, False),
                                                   (16000, 4096, 2400, False), (24000, None, 2400, False)):
                if limit:
                    _without_big_buffers(limit)
                try:
                    p = server(max_size=max_size)
                    p.receive_data(frame(op, piece, fin=False))
                    p.receive_data(frame(OP_CONT, piece, fin=False))
                    assert len(p._msg[1]) == 1200  # doubled: it held 600 B, under 1000
                    p.receive_data(frame(OP_CONT, piece, fin=False))
                    big = p._msg[1]
                    assert len(big) == grown, (op, max_size, limit)
                    p.receive_data(frame(OP_CONT, piece))
                    (got_op, msg), = p.events
                    want = piece * 4 if op == OP_BINARY else (piece * 4).decode()
                    assert got_op == op and msg == want and len(msg) == 2400, (op, max_size, limit)
                    if op == OP_BINARY:
                        assert (msg is not big) == copied, (max_size, limit)
                finally:
                    if limit:
                        del protocol.bytearray
    finally:
        protocol._HEAP_SIZE = saved


def test_message_within_max_size_but_not_within_memory_fails_1009():
    # A text message needs its bytes and its str; when the str cannot be made (a full
    # heap), the connection fails with 1009 instead of the error escaping to the handler.
    import microws.protocol as protocol

    def no_memory(payload, checked=False):
        raise MemoryError("test: no room for the str")

    decode_text = protocol.decode_text
    for chunked in (False, True):
        protocol.decode_text = no_memory
        try:
            p = server(max_size=1 << 20)
            wire = frame(OP_TEXT, "x" * 3000) + frame(OP_PING, b"after")
            if chunked:  # the payload arrives in pieces, completed by payload_received
                p.receive_data(wire[:100])
                p.receive_data(wire[100:])
            else:
                p.receive_data(wire)
            assert p.state == CLOSED and p.failed, chunked
            assert p.events == [(OP_CLOSE, (1009, "message too big for free memory"))], p.events
            assert close_code_sent(p) == 1009  # and no pong: nothing after the failure counts
        finally:
            protocol.decode_text = decode_text


def test_fragments_are_reassembled_into_one_buffer_of_the_exact_size():
    for op, parts in ((OP_BINARY, [b"a" * 70, b"", b"b" * 3000, b"c"]), (OP_TEXT, ["é" * 40, "ü", "x" * 500])):
        p = server(max_size=1 << 20)
        wire = b"".join(frame(op if i == 0 else 0, d, fin=i == len(parts) - 1) for i, d in enumerate(parts))
        p.receive_data(wire)
        joined = "".join(parts) if op == OP_TEXT else b"".join(parts)
        assert p.events == [(op, joined)], p.events


def test_oversize_fragmented_message_fails_1009():
    p = server(max_size=1000)
    p.receive_data(frame(OP_BINARY, b"x" * 600, fin=False))
    assert p.state == OPEN
    p.receive_data(frame(0, b"x" * 600, fin=True))
    assert close_code_sent(p) == 1009


def test_message_of_exactly_max_size_is_accepted():
    p = server(max_size=1000)
    p.receive_data(frame(OP_BINARY, b"x" * 500, fin=False) + frame(0, b"y" * 500))
    assert [(op, len(d)) for op, d in p.events] == [(OP_BINARY, 1000)]


def test_large_payload_can_be_read_straight_into_the_message_buffer():
    p = server(max_size=1 << 20)
    wire = frame(OP_BINARY, b"q" * 100000)
    p.receive_data(wire[:1000])
    view = p.payload_view()
    assert view is not None and len(view) == 100000 - (1000 - 14)
    rest = wire[1000:]
    view[: len(rest)] = rest
    p.payload_received(len(rest))
    assert [(op, bytes(d)) for op, d in p.events] == [(OP_BINARY, b"q" * 100000)]


# ---- fuzz ------------------------------------------------------------------------


def _lcg(seed):
    # A tiny deterministic generator: the same bytes under MicroPython and CPython.
    state = seed
    while True:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        yield state >> 16


def _random_frame(rnd, client_side):
    # Mostly well-formed frames with random fields, so the parser gets deep: fragments,
    # control frames, close payloads, UTF-8 split anywhere; now and then a broken one.
    r = next(rnd)
    op = (0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 11)[r % 11]
    n = next(rnd) % (130 if op >= 8 else 300)
    if next(rnd) % 2:
        payload = ("é€𐍈a" * 80).encode()[next(rnd) % 40 :][:n]
    else:
        payload = bytes(next(rnd) & 0xFF for _ in range(n))
    if op == 8 and n >= 2 and next(rnd) % 2:
        payload = close_payload((1000, 1001, 1005, 1015, 3000, 4999, 999)[next(rnd) % 7]) + payload[2:]
    rsv = 0 if next(rnd) % 10 else 1 + next(rnd) % 7
    masked = not client_side if next(rnd) % 20 else client_side
    return frame(op, payload, fin=bool(next(rnd) % 3), mask=masked, rsv=rsv)


def test_random_frames_never_escape_the_protocol_and_fail_with_a_valid_code():
    rnd = _lcg(2026)
    for case in range(400):
        for p in (server(max_size=4096), client(max_size=4096)):
            wire = b"".join(_random_frame(rnd, p.client) for _ in range(1 + next(rnd) % 8))
            if next(rnd) % 4 == 0:  # and sometimes plain garbage in the middle
                cut = next(rnd) % (len(wire) + 1)
                wire = wire[:cut] + bytes(next(rnd) & 0xFF for _ in range(next(rnd) % 20)) + wire[cut:]
            i = 0
            while i < len(wire):
                k = 1 + next(rnd) % 37
                p.receive_data(wire[i : i + k])  # must never raise
                i += k
            if p.error is not None:  # a bad frame held behind messages not taken yet
                assert any(e[0] in (OP_TEXT, OP_BINARY) for e in p.events), (case, p.error)
                assert p.close_sent is None and p.state != CLOSED, case
                p.fail(*p.error)  # what the I/O layer does once they are taken
            if p.failed:
                assert p.close_sent[0] in (1002, 1007, 1009), (case, p.close_sent)
                assert p.state == CLOSED
            for event in p.events:
                assert event[0] in (OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE)
                if event[0] == OP_TEXT:
                    assert isinstance(event[1], str)


def test_random_fragmentation_and_chunking_reassemble_every_message():
    # Messages of up to ~20 KB, text and binary, cut into random fragments (empty ones,
    # pings between them) and fed in random chunks: every fragment lands in the one
    # message buffer (read into it in pieces, or copied whole), which grows as it goes.
    rnd = _lcg(6455)
    for case in range(120):
        p = client() if next(rnd) & 1 else server()
        size = next(rnd) % 20000
        text = next(rnd) & 1
        if text:
            data = ("ab\u20ac\U0001f600" * (size // 9 + 1))[: size // 3].encode()
        else:
            data = bytes(next(rnd) & 0xFF for _ in range(size))
        wire = b""
        k = 0
        while True:
            piece = data[k : k + next(rnd) % 3000]
            k += len(piece)
            fin = k >= len(data) and next(rnd) % 3 != 0
            key = bytes(next(rnd) & 0xFF for _ in range(4))
            op = (OP_TEXT if text else OP_BINARY) if not wire else 0
            wire += frame(op, piece, fin=fin, mask=not p.client, key=key)
            if next(rnd) % 5 == 0:
                wire += frame(OP_PING, b"pi", mask=not p.client, key=key)
            if fin:
                break
        i = 0
        while i < len(wire):
            n = 1 + next(rnd) % 4000
            p.receive_data(wire[i : i + n])
            i += n
        got = [d for op, d in p.events if op in (OP_TEXT, OP_BINARY)]
        assert not p.failed and len(got) == 1, (case, p.close_sent)
        assert (got[0].encode() if text else bytes(got[0])) == data, case
