"""Wi-Fi station connect with retries and backoff.

Imported only when config.json names a Wi-Fi network, so the unix port (and CPython
in tests) never loads it; ``network`` itself is imported only when connecting.
"""

from node.clock import jitter, next_backoff, sleep_ms

_wlan = None


def available():
    """True on a port with Wi-Fi (``network.WLAN``)."""
    try:
        import network  # noqa: F401
    except ImportError:
        return False
    return hasattr(network, "WLAN")


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
