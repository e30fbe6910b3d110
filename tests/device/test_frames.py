"""Sans-I/O framing primitives: headers, masking, UTF-8, close payloads, handshake keys."""

import gc

from devtest import IS_MICROPYTHON, raises

from microws.errors import ProtocolError
from microws.frames import (
    Utf8Stream,
    apply_mask,
    build_close,
    decode_text,
    encode_header,
    parse_close,
)
from microws.handshake import accept_key

INVALID_UTF8 = [
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\x80",  # overlong 3-byte
    b"\xe0\x9f\xbf",
    b"\xf0\x8f\xbf\xbf",  # overlong 4-byte
    b"\xed\xa0\x80",  # surrogate U+D800
    b"\xed\xbf\xbf",  # surrogate U+DFFF
    b"\xf4\x90\x80\x80",  # > U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"\x80",  # stray continuation
    b"\xce\xba\xe1\xbd",  # truncated at the end
    b"a\xe2\x82",
    b"\xe2\x28\xa1",
]
VALID_UTF8 = [
    b"",
    b"hello",
    "κόσμε".encode(),
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF
    b"\xed\x9f\xbf",  # U+D7FF
    b"\xee\x80\x80",  # U+E000
    b"\xf0\x90\x80\x80",  # U+10000
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),
]


def test_header_lengths_use_7_16_64_bit_forms():
    assert encode_header(1, 0) == b"\x81\x00"
    assert encode_header(2, 125) == b"\x82\x7d"
    assert encode_header(2, 126) == b"\x82\x7e\x00\x7e"
    assert encode_header(2, 65535) == b"\x82\x7e\xff\xff"
    assert encode_header(2, 65536) == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
    assert encode_header(0, 3, fin=False) == b"\x00\x03"
    assert encode_header(1, 5, mask_key=b"abcd") == b"\x81\x85abcd"


def test_mask_matches_byte_by_byte_xor_at_every_alignment_and_length():
    # The second key has its top bit set: a negative word on a 32-bit port.
    for key in (b"\x37\xfa\x21\x3d", b"\x37\xfa\x21\xbd"):
        for offset in range(4):
            # 16385 and 40001: the CPython fallback masks in 16 KiB pieces.
            for n in list(range(0, 40)) + [63, 64, 65, 95, 96, 97, 1000, 4097, 16385, 40001]:
                base = bytearray((i * 7 + 3) & 0xFF for i in range(n + offset + 5))
                before = bytes(base)
                expected = bytes(base[offset + i] ^ key[i & 3] for i in range(n))
                view = memoryview(base)[offset:]
                apply_mask(view, n, key)
                assert bytes(view[:n]) == expected, (offset, n)
                # Nothing outside those n bytes is touched.
                assert base[:offset] == before[:offset] and base[offset + n :] == before[offset + n :]


def test_mask_twice_restores_payload():
    data = bytearray(b"The quick brown fox jumps over the lazy dog" * 100)
    orig = bytes(data)
    apply_mask(data, len(data), b"\x01\x02\x03\x04")
    assert bytes(data) != orig
    apply_mask(data, len(data), b"\x01\x02\x03\x04")
    assert bytes(data) == orig


def test_strict_utf8_rejects_overlong_surrogates_and_out_of_range():
    for bad in INVALID_UTF8:
        with raises(ProtocolError) as e:
            decode_text(bad)
        assert e.value.code == 1007, bad
    for good in VALID_UTF8:
        assert decode_text(good) == good.decode()


def test_strict_utf8_in_ascii_runs_at_every_alignment():
    # ASCII is checked a word at a time from aligned addresses: a bad or good sequence
    # must be judged the same wherever it falls against the words and the run's end.
    pad = b"0123456789abcdefghijklmnopqrstuv"
    for shift in range(4):
        for before in range(0, 24):
            for bad in INVALID_UTF8:
                buf = memoryview(b"~" * shift + pad[:before] + bad + pad[: before % 7])[shift:]
                with raises(ProtocolError) as e:
                    decode_text(buf)
                assert e.value.code == 1007, (shift, before, bad)
            for good in VALID_UTF8:
                raw = pad[:before] + good + pad[: before % 5]
                assert decode_text(memoryview(b"~" * shift + raw)[shift:]) == raw.decode(), (shift, before, good)


def test_strict_utf8_after_long_ascii_runs_at_every_alignment():
    # An ASCII run is checked 32 bytes a turn, then word by word (speedups.utf8_scan on
    # MicroPython): a bad byte, or a valid character, must be found wherever it falls.
    run = b"a" * 300
    for shift in range(4):
        for at in range(40, 300):
            for seq in (b"\xff", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x90\x80\x80"):
                raw = run[:at] + seq + run[: at % 71]
                buf = memoryview(b"~" * shift + raw)[shift:]
                if seq in (b"\xff", b"\xed\xa0\x80"):
                    with raises(ProtocolError) as e:
                        decode_text(buf)
                    assert e.value.code == 1007, (shift, at, seq)
                else:
                    assert decode_text(buf) == raw.decode(), (shift, at, seq)


def test_utf8_stream_keeps_state_across_ascii_runs():
    text = ("x" * 37 + "κ€𐍈" + "y" * 19).encode()
    for cut in range(len(text) + 1):
        s = Utf8Stream()
        assert s.feed(text[:cut]) and s.feed(text[cut:], True), cut
    s = Utf8Stream()
    assert s.feed(b"z" * 40 + b"\xe2\x82")
    assert not s.feed(b"q" * 40)  # the character's last byte is missing


def _spare_byte(raw):
    buf = bytearray(len(raw) + 1)
    buf[len(raw) :] = b""  # one spare byte, as the protocol makes for a big text frame
    buf[:] = raw
    return buf


def test_decode_text_of_a_bytearray_with_a_spare_byte_shares_its_memory():
    raw = ("hé" * 3000 + "€").encode()
    assert decode_text(_spare_byte(raw)) == raw.decode()  # (loads microws.bigtext once)
    buf = _spare_byte(raw)
    if IS_MICROPYTHON:  # one str object (32 B on x64), not a 9 KB copy
        gc.collect()
        before = gc.mem_alloc()  # pyright: ignore[reportAttributeAccessIssue]
        text = decode_text(buf)
        used = gc.mem_alloc() - before  # pyright: ignore[reportAttributeAccessIssue]
        assert used < 256, used
    else:
        text = decode_text(buf)
    want = raw.decode()
    # A str made by hand: its hash, equality, dict lookup and methods must all hold.
    assert text == want and hash(text) == hash(want) and {want: 1}[text] == 1
    assert len(text) == 6001 and text[-1] == "€" and text[:3] == "hé" + "h"
    assert text.encode() == raw and text + "!" == want + "!"
    small = bytearray(b"abc")  # small: copied
    assert decode_text(small) == "abc"
    small[0] = 0x7A
    assert decode_text(bytearray(b"abc")) == "abc"


def test_a_big_text_is_decoded_while_the_str_bigtext_would_take_over_is_interned():
    # Short literals are interned (here "\x7f", by this very line): str() of those bytes
    # is then an immediate object, not a heap str, and bigtext read and wrote memory at
    # its "address" (the interpreter crashed after a library change added that literal).
    # It must take another str over (or copy).
    assert "\x7f" == str(b"\x7f", "utf-8")
    raw = b"interned " * 300
    assert decode_text(_spare_byte(raw)) == raw.decode()  # (loads microws.bigtext once)
    buf = _spare_byte(raw)
    if IS_MICROPYTHON:
        gc.collect()
        before = gc.mem_alloc()  # pyright: ignore[reportAttributeAccessIssue]
        text = decode_text(buf)
        assert gc.mem_alloc() - before < 256  # shared still, not a copy  # pyright: ignore[reportAttributeAccessIssue]
    else:
        text = decode_text(buf)
    assert text == raw.decode()


def test_utf8_stream_accepts_valid_text_split_at_every_byte():
    text = "κόσμε €𐍈 ascii".encode()
    for cut in range(len(text) + 1):
        s = Utf8Stream()
        assert s.feed(text[:cut]), cut
        assert s.feed(text[cut:], True), cut


def test_utf8_stream_fails_fast_on_the_first_bad_fragment():
    s = Utf8Stream()
    assert s.feed(b"\xce\xba\xe1")
    assert not s.feed(b"\x80A")  # E1 80 needs one more continuation byte, not "A"
    s = Utf8Stream()
    assert s.feed(b"ok \xf4")
    assert not s.feed(b"\x90")  # > U+10FFFF known at the second byte, before the end


def test_utf8_stream_rejects_message_ending_mid_character():
    s = Utf8Stream()
    assert s.feed(b"\xe2\x82")
    assert not s.feed(b"", True)


def test_close_payload_rules():
    assert parse_close(b"") == (1005, "")
    assert parse_close(b"\x03\xe8") == (1000, "")
    assert parse_close(b"\x03\xe8bye") == (1000, "bye")
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999):
        assert parse_close(build_close(code, "x")) == (code, "x")
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        with raises(ProtocolError) as e:
            parse_close(bytes((code >> 8, code & 0xFF)))
        assert e.value.code == 1002, code
    with raises(ProtocolError) as e:
        parse_close(b"\x03")
    assert e.value.code == 1002
    with raises(ProtocolError) as e:
        parse_close(b"\x03\xe8\xc0\x80")
    assert e.value.code == 1007


def test_close_reason_is_cut_to_123_bytes_on_a_character_boundary():
    payload = build_close(1000, "é" * 100)
    assert len(payload) <= 125
    assert parse_close(payload)[1] == "é" * 61


def test_accept_key_matches_rfc_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_plain_python_utf8_fallback_agrees_with_the_rules():
    # Ports without viper use this; CPython uses its codec; the unix port uses viper.
    from microws.fallbacks import utf8_scan

    for bad in INVALID_UTF8:
        state = utf8_scan(bad, len(bad), 0)
        assert state != 0, bad
    for good in VALID_UTF8:
        assert utf8_scan(good, len(good), 0) == 0, good
    text = "κόσμε €𐍈".encode()
    for cut in range(len(text) + 1):
        state = utf8_scan(text[:cut], cut, 0)
        assert state >= 0
        assert utf8_scan(text[cut:], len(text) - cut, state) == 0, cut


def _lib_dir():
    """lib/microws, the sources of the library under test."""
    import microws.frames

    return microws.frames.__file__.rsplit("/", 1)[0]


def private_consts():
    """{module file: {NAME: value}} of every ``_NAME = const(value)`` line in lib/microws."""
    import os

    lib = _lib_dir()
    found = {}
    for name in sorted(os.listdir(lib)):
        if not name.endswith(".py"):
            continue
        with open(lib + "/" + name) as f:
            for line in f:
                if line.startswith("_") and " = const(" in line:
                    const_name, rest = line.split(" = const(", 1)
                    found.setdefault(name, {})[const_name[1:]] = int(rest.split(")", 1)[0])
    return found


def test_each_modules_private_rfc_constants_have_their_rfc_values():
    # Each module declares the RFC numbers it uses as private const()s (inlined by
    # MicroPython, no name kept: heap); none may drift from the RFC or from another copy.
    from wirepeer import ONE_BUFFER, RFC_NUMBERS

    expected = dict(RFC_NUMBERS, ONE_BUFFER=ONE_BUFFER)
    found = private_consts()
    assert found["frames.py"] and found["protocol.py"] and found["connection.py"]
    seen = {}
    for module, names in found.items():
        for name, value in names.items():
            if name in expected:
                assert value == expected[name], (module, name, value)
            assert seen.setdefault(name, value) == value, (module, name, value, seen[name])
    assert {"OP_TEXT", "OP_BINARY", "OPEN", "CLOSED"} <= set(found["connection.py"])


def test_each_error_number_is_the_index_of_its_tagged_text():
    # The library raises by number (`_E_NAME = const(n)`) into texts.T, whose lines are
    # tagged `# E_NAME`: a number out of step would raise another error's text.
    with open(_lib_dir() + "/texts.py") as f:
        tags = [line.rsplit("# ", 1)[1].strip() for line in f if '",  # E_' in line]
    from microws.texts import T

    assert len(tags) == len(T) and len(set(tags)) == len(tags)
    used = set()
    for module, names in private_consts().items():
        for name, value in names.items():
            if name.startswith("E_"):
                assert tags[value] == name, (module, name, value, tags[value])
                used.add(name)
    assert used == set(tags), set(tags) - used  # no text left that nothing raises


def test_an_error_made_by_number_has_its_text_and_leaves_the_texts_unloaded():
    import sys

    import microws
    from microws.errors import InvalidHandshake, PayloadTooBig, ProtocolError, error_text

    sys.modules.pop("microws.texts", None)
    e = ProtocolError(4, 1002, 11)  # E_CONTROL_OPCODE
    assert str(e) == "reserved control opcode 11" and e.code == 1002
    assert str(PayloadTooBig(13, 16384)) == "message larger than max_size=16384"
    e = InvalidHandshake(28, 403, "http://evil")  # E_ORIGIN
    assert str(e) == "origin 'http://evil' not allowed" and e.status == 403
    assert str(ProtocolError("as given", 1007)) == "as given"
    assert "microws.texts" not in sys.modules and microws.texts is None
    # Texts that cannot be loaded (heap full, library copied in part): the number still says which.
    sys.modules["microws.texts"] = None  # pyright: ignore[reportArgumentType]
    assert error_text(4, 11) == "microws error 4 (11)"
    assert "microws.texts" not in sys.modules
