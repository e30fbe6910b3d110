"""Wi-Fi station connect with retries and backoff; nothing to do on the unix port.

``network`` only exists on boards with a network interface, so it is imported lazily:
the unix port (and CPython in tests) never touches it.
"""

import os

from node.clock import sleep_ms

_wlan = None


def available():
    """True on a port with Wi-Fi (``network.WLAN``)."""
    try:
        import network  # noqa: F401
    except ImportError:
        return False
    return hasattr(network, "WLAN")


def jitter(delay_ms):
    """``delay_ms`` spread by +-25 %, so many nodes do not retry in lockstep."""
    r = os.urandom(1)[0]  # 0..255
    return delay_ms * (384 + r) // 512  # x 0.75 .. 1.25


def next_backoff(delay_ms, high_ms):
    """The delay after ``delay_ms``: doubled, capped at ``high_ms``."""
    return min(delay_ms * 2, high_ms)


def connected():
    """True when no Wi-Fi is needed or the station is associated with an address."""
    return _wlan is None or _wlan.isconnected()


def rssi():
    """Signal strength of the access point in dBm, None when not on Wi-Fi."""
    if _wlan is None or not _wlan.isconnected():
        return None
    try:
        return _wlan.status("rssi")
    except Exception:  # some ports/firmware lack the query
        return None


async def connect(ssid, password, board, attempt_ms=15000, backoff_ms=1000, backoff_max_ms=60000):
    """Join ``ssid``; retries forever with exponential backoff + jitter.

    Returns the WLAN (None when this port has no Wi-Fi or no SSID is configured).
    """
    global _wlan
    if not ssid or not available():
        return None
    import network

    if _wlan is None:
        _wlan = network.WLAN(network.STA_IF)
        _wlan.active(True)
        board.wlan_setup(_wlan)
    wlan = _wlan
    delay = backoff_ms
    attempt = 0
    while not wlan.isconnected():
        attempt += 1
        print("microws-node: wifi connecting to %r (attempt %d)" % (ssid, attempt))
        try:
            wlan.connect(ssid, password)
        except OSError as e:  # e.g. "Wifi Internal Error" while a scan is running
            print("microws-node: wifi error %r" % (e,))
        waited = 0
        while not wlan.isconnected() and waited < attempt_ms:
            await sleep_ms(100)
            waited += 100
        if wlan.isconnected():
            break
        try:
            wlan.disconnect()
        except OSError:
            pass
        await sleep_ms(jitter(delay))
        delay = next_backoff(delay, backoff_max_ms)
    print("microws-node: wifi up ip=%s rssi=%s" % (wlan.ifconfig()[0], rssi()))
    return wlan


def sync_time():
    """Set the RTC from NTP (best effort: a node without time still sends readings)."""
    try:
        import ntptime

        ntptime.settime()
        return True
    except Exception as e:  # no ntptime module, no route, timeout
        print("microws-node: ntp failed %r" % (e,))
        return False
