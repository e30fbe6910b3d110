"""The port a listening socket bound to port 0 got, on MicroPython's unix port (which
has no getsockname): read from /proc. Imported by the server only for port 0, and
dropped again after (see errors.forget): ~500 B of a board's heap otherwise.
"""

from .errors import error_text
from .frames import const  # MicroPython's, or a stand-in on CPython

# Error texts, by number into texts.T (see errors.error_text).
_E_NO_PORT = const(30)


def bound_port(sock):
    """The port a socket bound to port 0 got (unix port: via /proc, no getsockname there)."""
    import os

    ino = str(os.stat("/proc/self/fd/%d" % sock.fileno())[1])
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[9] == ino:
                        return int(fields[1].rsplit(":", 1)[1], 16)
        except OSError:
            pass
    raise OSError(error_text(_E_NO_PORT))
