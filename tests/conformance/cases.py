"""The conformance cases, numbered and grouped like the public Autobahn|Testsuite.

Each case is what the fuzzing peer (fuzzer.py) sends an echo agent and what it must
get back. ``expect`` lists the event lists that pass: the first is the strict answer,
any other is a NON-STRICT one the RFC also allows (for example: a server that failed
the connection before echoing the valid message that came just before the bad frame).
``close`` says how the case ends:

- ``"clean"``: the fuzzer closes with 1000 once the answers are in; the agent answers 1000;
- ``"fail"``: the agent must fail the connection with a close code in ``codes``;
- ``"answered"``: the case itself sent a close; the agent answers with a code in ``codes``.

UTF-8 validity in group 6 is decided by CPython's strict UTF-8 decoder (RFC 3629:
no overlong forms, no surrogates, nothing above U+10FFFF), not by microws.
"""

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
KOSME = "κόσμε".encode()  # 11 bytes: ce ba e1 bd b9 cf 83 ce bc ce b5
MiB = 1 << 20


class Case:
    def __init__(
        self, cid, title, steps, expect=((),), close="clean", codes=(1000,), done=None, limit=30, fresh=False
    ):
        self.id = cid
        self.title = title
        self.steps = steps
        self.expect = [list(e) for e in expect]
        self.close = close
        self.codes = codes
        self.done = done  # predicate over the events: all answers are in (default: as many as strict)
        self.limit = limit  # seconds for the whole case
        self.fresh = fresh  # played against an agent of its own, not one hundreds of cases have used

    def __repr__(self):
        return "%s %s" % (self.id, self.title)


# -- steps: coroutine functions of a fuzzer.Wire ----------------------------------------------


def send(*frames, chop=None):
    """Send frames given as (opcode, payload[, fin[, rsv]]) tuples."""

    async def step(w):
        await w.send(*(w.frame(*f) for f in frames), chop=chop)

    return step


def answers(n, timeout=10):
    """Wait until the agent has sent ``n`` answers (proves it answered before what follows)."""

    async def step(w):
        if not await w.events_at_least(n, timeout):
            w.violations.append("%d of %d answers before the case went on" % (len(w.events), n))

    return step


def failed_by_now(what, timeout=0.5):
    """Strict when the agent has already failed the connection; NON-STRICT otherwise.

    The RFC asks an endpoint to fail on invalid UTF-8 as soon as it sees it; one that
    fails only at the end of the frame or message is still conformant.
    """

    async def step(w):
        if not await w.until(w.ended, timeout):
            w.notes.append("NON-STRICT: not failed right after %s" % what)

    return step


def ev(kind, payload):
    return (kind, payload.encode() if isinstance(payload, str) else payload)


def text(payload):
    return ev("text", payload)


def binary(payload):
    return ev("binary", payload)


def pong(payload):
    return ev("pong", payload)


# -- the table ------------------------------------------------------------------------------


class Table(list):
    """The cases in order, added by how they end."""

    def echoes(self, cid, title, steps, *expect, **kw):
        """Ends clean; ``expect``: the passing answer lists (none: no answer at all)."""
        self.append(Case(cid, title, steps, expect or ((),), **kw))

    def fails(self, cid, title, steps, code=1002, expect=((),), **kw):
        self.append(Case(cid, title, steps, expect, close="fail", codes=(code,), **kw))

    def answered(self, cid, title, steps, codes=(1000,), expect=((),)):
        self.append(Case(cid, title, steps, expect, close="answered", codes=codes))


HELLO = "Hello, world!"


def _framing(t):
    for group, op, fill, make in ((1, TEXT, b"*", text), (2, BINARY, b"\xfe", binary)):
        for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536), 1):
            p = fill * n
            t.echoes("1.%d.%d" % (group, i), "%s of %d bytes" % (make.__name__, n), [send((op, p))], [make(p)])
        p = fill * 65536
        title = "%s of 65536 bytes in 997-byte writes" % make.__name__
        t.echoes("1.%d.8" % group, title, [send((op, p), chop=997)], [make(p)])


def _pings(t):
    payloads = (b"", HELLO.encode(), bytes((0, 255, 254, 253, 252, 251, 0, 255)), b"\xfe" * 125)
    for i, p in enumerate(payloads, 1):
        t.echoes("2.%d" % i, "ping with %d bytes is answered by a pong" % len(p), [send((PING, p))], [pong(p)])
    t.fails("2.5", "ping with 126 bytes fails 1002", [send((PING, b"\xfe" * 126))])
    t.echoes(
        "2.6", "ping with 125 bytes, a byte at a time", [send((PING, b"\xfe" * 125), chop=1)], [pong(b"\xfe" * 125)]
    )
    t.echoes("2.7", "unsolicited empty pong is ignored", [send((PONG, b""))])
    t.echoes("2.8", "unsolicited pong with payload is ignored", [send((PONG, b"unsolicited pong payload"))])
    t.echoes(
        "2.9",
        "unsolicited pong, then a ping: one pong",
        [send((PONG, b"unsolicited pong payload"), (PING, b"ping payload"))],
        [pong(b"ping payload")],
    )
    pings = [(PING, "payload-%d" % i) for i in range(10)]
    every = [pong("payload-%d" % i) for i in range(10)]

    def last_answered(events):
        return bool(events) and events[-1] == pong("payload-9")

    # RFC 6455 5.5.3: an endpoint MAY answer only the latest of several pings.
    for cid, chop, how in (("2.10", None, "at once"), ("2.11", 1, "a byte at a time")):
        t.echoes(
            cid,
            "10 pings %s: 10 pongs" % how,
            [send(*pings, chop=chop)],
            every,
            [pong("payload-9")],
            done=last_answered,
        )


def _reserved_bits(t):
    # A valid message just before the bad frame may or may not be echoed (NON-STRICT).
    either = ([text(HELLO)], [])
    t.fails("3.1", "text with RSV=1 fails 1002", [send((TEXT, HELLO, True, 1))])
    t.fails(
        "3.2",
        "text, text with RSV=2, ping",
        [send((TEXT, HELLO), (TEXT, HELLO, True, 2), (PING, HELLO))],
        expect=either,
    )
    t.fails(
        "3.3",
        "text answered, then text with RSV=3 and a ping",
        [send((TEXT, HELLO)), answers(1), send((TEXT, HELLO, True, 3), (PING, HELLO), chop="frame")],
        expect=([text(HELLO)],),
    )
    t.fails(
        "3.4",
        "text, text with RSV=4, ping, a byte at a time",
        [send((TEXT, HELLO), (TEXT, HELLO, True, 4), (PING, HELLO), chop=1)],
        expect=either,
    )
    t.fails("3.5", "binary with RSV=5 fails 1002", [send((BINARY, bytes((0, 255, 254, 253)), True, 5))])
    t.fails("3.6", "ping with RSV=6 fails 1002", [send((PING, HELLO, True, 6))])
    t.fails("3.7", "close with RSV=7 fails 1002", [send((CLOSE, b"\x03\xe8", True, 7))])


def _opcodes(t):
    either = ([text(HELLO)], [])
    for group, (a, b, c, d, e) in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        payload = "reserved opcode payload"
        for i, (title, frames, chop, expect) in enumerate(
            (
                ("reserved opcode %d" % a, [(a, b"")], None, ((),)),
                ("reserved opcode %d with payload" % b, [(b, payload)], None, ((),)),
                ("text, reserved opcode %d, ping" % c, [(TEXT, HELLO), (c, b""), (PING, HELLO)], None, either),
                (
                    "text, reserved opcode %d with payload, ping" % d,
                    [(TEXT, HELLO), (d, payload), (PING, HELLO)],
                    None,
                    either,
                ),
                (
                    "the same with opcode %d, a byte at a time" % e,
                    [(TEXT, HELLO), (e, payload), (PING, HELLO)],
                    1,
                    either,
                ),
            ),
            1,
        ):
            t.fails("4.%d.%d" % (group, i), title + " fails 1002", [send(*frames, chop=chop)], expect=expect)


def _fragmentation(t):
    two = ((TEXT, "fragment1", False), (CONT, "fragment2", True))
    whole = text("fragment1fragment2")
    for cid, op in (("5.1", PING), ("5.2", PONG)):
        t.fails(
            cid, "opcode %d in two fragments fails 1002" % op, [send((op, "fragment1", False), (CONT, "fragment2"))]
        )
    for cid, chop, how in (("5.3", None, "at once"), ("5.4", 1, "a byte at a time"), ("5.5", "frame", "by frame")):
        t.echoes(cid, "text in two fragments, %s" % how, [send(*two, chop=chop)], [whole])
    with_ping = (two[0], (PING, "ping payload"), two[1])
    answered = [pong("ping payload"), whole]
    t.echoes("5.6", "text in two fragments with a ping between", [send(*with_ping)], answered)
    t.echoes("5.7", "the same, a byte at a time", [send(*with_ping, chop=1)], answered)
    t.echoes(
        "5.8",
        "the same; the pong comes before the message ends",
        [send(two[0], (PING, "ping payload"), chop="frame"), answers(1), send(two[1])],
        answered,
    )
    for base, fin in ((9, True), (12, False)):
        frames = ((CONT, "non-continuation payload", fin), (TEXT, HELLO))
        for k, (chop, how) in enumerate(((None, "at once"), ("frame", "by frame"), (1, "a byte at a time"))):
            t.fails(
                "5.%d" % (base + k),
                "continuation (FIN=%d) with nothing to continue, %s" % (fin, how),
                [send(*frames, chop=chop)],
            )
    t.fails(
        "5.15",
        "a message, then continuation and text fragments out of order",
        [send(*two, (CONT, "fragment3", False), (TEXT, "fragment4", True))],
        expect=([whole], []),
    )
    for cid, fin in (("5.16", False), ("5.17", True)):
        bad = ((CONT, "fragment1", fin), (TEXT, "fragment2", False), (CONT, "fragment3", True))
        t.fails(cid, "continuation (FIN=%d) first, twice" % fin, [send(*(bad + bad))])
    t.fails("5.18", "text fragment followed by a new text frame", [send((TEXT, "fragment1", False), (TEXT, "x"))])
    five = text("fragment1fragment2fragment3fragment4fragment5")
    for cid, chop in (("5.19", None), ("5.20", "frame")):
        t.echoes(
            cid,
            "text in five fragments, pings between answered mid-message (%s)" % (chop or "at once"),
            [
                send((TEXT, "fragment1", False), (CONT, "fragment2", False), (PING, "pongme 1!"), chop=chop),
                answers(1),
                send((CONT, "fragment3", False), (CONT, "fragment4", False), (PING, "pongme 2!"), chop=chop),
                answers(2),
                send((CONT, "fragment5", True)),
            ],
            [pong("pongme 1!"), pong("pongme 2!"), five],
        )


TRUNCATED = "c0 e080 f08080 f8808080 fc80808080 df efbf f7bfbf fbbfbfbf fdbfbfbfbf"
SURROGATES = ["eda080", "edadbf", "edae80", "edafbf"]
# Sequences as space-separated hex, one message each.
UTF8_GROUPS = [
    ("6.7", "first sequence of each length", "00 c280 e0a080 f0908080"),
    ("6.8", "5- and 6-byte forms", "f888808080 fc8480808080"),
    ("6.9", "last sequence of each length", "7f dfbf efbfbf f48fbfbf"),
    ("6.10", "beyond U+10FFFF", "f7bfbfbf fbbfbfbfbf fdbfbfbfbfbf"),
    ("6.11", "other boundaries", "ed9fbf ee8080 efbfbd f48fbfbf f4908080"),
    (
        "6.12",
        "unexpected continuation bytes",
        " ".join(bytes(range(0x80, 0x80 + i)).hex() for i in range(1, 8)) + " bf " + bytes(range(0x80, 0xC0)).hex(),
    ),
    (
        "6.13",
        "lone start bytes, each followed by a space",
        " ".join(
            bytes(b for c in range(lo, hi) for b in (c, 0x20)).hex()
            for lo, hi in ((0xC0, 0xE0), (0xE0, 0xF0), (0xF0, 0xF8), (0xF8, 0xFC), (0xFC, 0xFE))
        ),
    ),
    ("6.14", "last continuation byte missing", TRUNCATED),
    ("6.15", "incomplete sequences concatenated", TRUNCATED.replace(" ", "")),
    ("6.16", "impossible bytes", "fe ff fefeffff"),
    ("6.17", "overlong '/'", "c0af e080af f08080af f8808080af fc80808080af"),
    ("6.18", "largest overlong forms", "c1bf e09fbf f08fbfbf f887bfbfbf fc83bfbfbfbf"),
    ("6.19", "overlong NUL", "c080 e08080 f0808080 f880808080 fc8080808080"),
    ("6.20", "lone UTF-16 surrogates", " ".join(SURROGATES) + " edb080 edbe80 edbfbf"),
    ("6.21", "UTF-16 surrogate pairs", " ".join(h + low for h in SURROGATES for low in ("edb080", "edbfbf"))),
    (
        "6.22",
        "noncharacters (valid)",
        " ".join(chr(plane * 0x10000 + low).encode().hex() for plane in range(17) for low in (0xFFFE, 0xFFFF))
        + " "
        + "".join(map(chr, range(0xFDD0, 0xFDF0))).encode().hex(),
    ),
    ("6.23", "specials (valid)", " ".join(c.encode().hex() for c in ("\ufffd", "\ufeff", "\u2028\u2029", "\ud7ff"))),
]
VALID_SAMPLES = [KOSME, "Hello-µ@ßöäüàá-UTF-8!!".encode(), "€𝄞日本語".encode(), b"\x00\x7f"]


def utf8_valid(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _bytewise(data):
    """One text message, one fragment per byte."""
    return [(TEXT if i == 0 else CONT, data[i : i + 1], i == len(data) - 1) for i in range(len(data))]


def _utf8(t):
    t.echoes("6.1.1", "empty text", [send((TEXT, b""))], [text(b"")])
    t.echoes(
        "6.1.2",
        "empty text in three empty fragments",
        [send((TEXT, b"", False), (CONT, b"", False), (CONT, b""))],
        [text(b"")],
    )
    t.echoes(
        "6.1.3",
        "text in three fragments, only the middle one has payload",
        [send((TEXT, b"", False), (CONT, "middle frame payload", False), (CONT, b""))],
        [text("middle frame payload")],
    )
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    cut = len("Hello-µ@ßöä".encode())
    t.echoes("6.2.1", "valid UTF-8 in one frame", [send((TEXT, hello))], [text(hello)])
    t.echoes(
        "6.2.2",
        "valid UTF-8 in two fragments split between characters",
        [send((TEXT, hello[:cut], False), (CONT, hello[cut:]))],
        [text(hello)],
    )
    for cid, data in (("6.2.3", hello), ("6.2.4", KOSME)):
        t.echoes(cid, "valid UTF-8, one fragment per byte", [send(*_bytewise(data))], [text(data)])
    bad = KOSME + b"\xed\xa0\x80edited"
    t.fails("6.3.1", "a surrogate in one frame fails 1007", [send((TEXT, bad))], 1007)
    t.fails("6.3.2", "the same, one fragment per byte", [send(*_bytewise(bad))], 1007)
    # Fail fast: the close must come as soon as the invalid fragment (or byte) is in.
    for cid, first, second in (("6.4.1", KOSME, b"\xf4\x90\x80\x80"), ("6.4.2", KOSME + b"\xf4", b"\x90\x80\x80")):
        t.fails(
            cid,
            "invalid UTF-8 in the second of three fragments fails 1007 before the third",
            [
                send((TEXT, first, False)),
                send((CONT, second, False)),
                failed_by_now("the second fragment"),
                send((CONT, "edited")),
            ],
            1007,
        )
    frames = ((TEXT, KOSME, False), (CONT, b"\xf4\x90\x80\x80", False), (CONT, "edited"))
    t.fails("6.4.3", "invalid byte inside the second fragment, frame written in pieces", [send_cut_tail(frames)], 1007)
    t.fails("6.4.4", "the same, every byte written alone", [send_cut_tail(frames, bytewise=True)], 1007)
    groups = [("6.5", "valid samples", VALID_SAMPLES), ("6.6", "prefixes of κόσμε", [KOSME[:i] for i in range(1, 12)])]
    groups += [(g, title, [bytes.fromhex(h) for h in hexes.split()]) for g, title, hexes in UTF8_GROUPS]
    for group, title, vectors in groups:
        for i, data in enumerate(vectors, 1):
            cid = "%s.%d" % (group, i)
            if utf8_valid(data):
                t.echoes(cid, "%s: %s is valid" % (title, data[:12].hex(" ")), [send((TEXT, data))], [text(data)])
            else:
                t.fails(cid, "%s: %s fails 1007" % (title, data[:12].hex(" ")), [send((TEXT, data))], 1007)


def send_cut_tail(frames, bytewise=False):
    """6.4.3/6.4.4: the second frame's payload is f4 90 80 80; write up to f4, then 90
    (the first byte that cannot be UTF-8) and check the connection failed, then the rest."""

    async def step(w):
        f1, f2, f3 = (w.frame(*f) for f in frames)
        head2 = len(f2) - 4  # where f2's payload starts
        pieces = [f1, f2[: head2 + 1], f2[head2 + 1 : head2 + 2]]
        if bytewise:
            pieces = [bytes((b,)) for b in f1 + f2[: head2 + 1]] + [pieces[-1]]
        for piece in pieces:
            await w.send(piece)
        await failed_by_now("byte 0x90 after 0xf4")(w)
        if not w.ended():
            await w.send(f2[head2 + 2 :] + f3)

    return step


def _close(t):
    normal = (CLOSE, b"\x03\xe8")
    t.echoes("7.1.1", "text answered, then a normal close", [send((TEXT, "Hello World!"))], [text("Hello World!")])
    t.answered("7.1.2", "close sent twice: answered once", [send(normal, normal)])
    t.answered("7.1.3", "ping after close: no pong", [send(normal, (PING, "Hello World!"))])
    t.answered("7.1.4", "text after close: no echo", [send(normal, (TEXT, "Hello World!"))])
    t.answered(
        "7.1.5",
        "close in the middle of a fragmented message: the message is dropped",
        [send((TEXT, "fragment1", False), normal, (CONT, "fragment2"))],
    )
    big = ("BAsd7&jh23" * 26215)[: 256 * 1024]
    t.answered(
        "7.1.6",
        "256 KiB text, close, ping: no pong",
        [send((TEXT, big), normal, (PING, "Hello World!"))],
        expect=([text(big)], []),
    )
    t.answered("7.3.1", "close with an empty payload is answered", [send((CLOSE, b""))], codes=(None, 1000))
    t.fails("7.3.2", "close with a 1-byte payload fails 1002", [send((CLOSE, b"*"))])
    t.answered("7.3.3", "close 1000 without reason", [send(normal)])
    t.answered("7.3.4", "close 1000 with a reason", [send((CLOSE, b"\x03\xe8Hello World!"))])
    t.answered("7.3.5", "close 1000 with a 123-byte reason", [send((CLOSE, b"\x03\xe8" + b"*" * 123))])
    t.fails(
        "7.3.6",
        "close with a 124-byte reason (126-byte control frame) fails 1002",
        [send((CLOSE, b"\x03\xe8" + b"*" * 124))],
    )
    t.fails(
        "7.5.1",
        "close reason that is not UTF-8 fails 1007",
        [send((CLOSE, b"\x03\xe8" + KOSME + b"\xed\xa0\x80edited"))],
        1007,
    )
    valid = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999)
    for i, code in enumerate(valid, 1):
        t.answered(
            "7.7.%d" % i,
            "close code %d is answered" % code,
            [send((CLOSE, code.to_bytes(2, "big")))],
            codes=(code, 1000),
        )
    for sub, codes in ((9, (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999)), (13, (5000, 65535))):
        for i, code in enumerate(codes, 1):
            t.fails("7.%d.%d" % (sub, i), "close code %d fails 1002" % code, [send((CLOSE, code.to_bytes(2, "big")))])


def _sizes(t, largest, held_once):
    """Group 9 (limits), scaled to ``largest``: the biggest message the agent's runtime
    holds reliably whichever way it comes (a fragmented one grows a buffer that doubles,
    in place only when the heap allows). ``held_once``: an unfragmented text
    message that size must echo although the heap cannot hold it twice (its str is
    made from its bytes without a copy)."""

    def kib(n):
        return "%d KiB" % (n >> 10) if n < MiB else "%d MiB" % (n >> 20)

    for group, op, make in ((1, TEXT, text), (2, BINARY, binary)):
        fill = b"BAsd7&jh23" if op == TEXT else b"\xfe"
        for i, n in enumerate((64 << 10, 256 << 10, MiB, 4 * MiB, 8 * MiB, 16 * MiB), 1):
            if n <= largest:
                p = (fill * (n // len(fill) + 1))[:n]
                t.echoes(
                    "9.%d.%d" % (group, i), "%s of %s" % (make.__name__, kib(n)), [send((op, p))], [make(p)], limit=120
                )
    total = min(4 * MiB, largest)
    for group, op, make in ((3, TEXT, text), (4, BINARY, binary)):
        p = (b"*" if op == TEXT else b"\xfe") * total
        for i, size in enumerate((64, 256, 1024, 4096, 16384, 65536, 256 << 10, MiB, 4 * MiB), 1):
            if size <= total:
                frames = [(op if k == 0 else CONT, p[k : k + size], k + size >= total) for k in range(0, total, size)]
                title = "%s of %s in %d-byte fragments" % (make.__name__, kib(total), size)
                t.echoes("9.%d.%d" % (group, i), title, [send(*frames)], [make(p)], limit=120)
    for group, op, make in ((5, TEXT, text), (6, BINARY, binary)):
        p = (b"*" if op == TEXT else b"\xfe") * min(MiB, largest)
        for i, chop in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            title = "%s of %s written in %d-byte pieces" % (make.__name__, kib(len(p)), chop)
            t.echoes("9.%d.%d" % (group, i), title, [send((op, p), chop=chop)], [make(p)], limit=120)
    for group, op, make in ((7, TEXT, text), (8, BINARY, binary)):
        for i, size in enumerate((0, 16, 64, 256, 1024, 4096), 1):
            p = b"*" * size
            steps = []
            for k in range(1000):
                steps += [send((op, p)), answers(k + 1)]
            title = "1000 %s messages of %d bytes, one at a time" % (make.__name__, size)
            t.echoes("9.%d.%d" % (group, i), title, steps, [make(p)] * 1000, limit=120)
    if held_once:  # about the heap, not the protocol: a fresh agent's heap, as a board's
        t.echoes(
            "9.9.1",
            "text of %s, held once (the heap cannot hold it twice)" % kib(held_once),
            [send((TEXT, b"*" * held_once))],
            [text(b"*" * held_once)],
            limit=60,
            fresh=True,
        )


def _auto_fragmented(t):
    p = b"*" * 65536
    frames = [(TEXT if k == 0 else CONT, p[k : k + 1300], k + 1300 >= len(p)) for k in range(0, len(p), 1300)]
    t.echoes("10.1.1", "text of 65536 bytes in 1300-byte fragments", [send(*frames)], [text(p)])


def all_cases(largest, held_once=0):
    """Every case, in order; group 9 scaled as ``_sizes`` says."""
    t = Table()
    for add in (_framing, _pings, _reserved_bits, _opcodes, _fragmentation, _utf8, _close, _auto_fragmented):
        add(t)
    _sizes(t, largest, held_once)
    t.sort(key=lambda c: [int(x) for x in c.id.split(".")])
    return t
