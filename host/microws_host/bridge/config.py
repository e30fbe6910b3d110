"""Settings of one bridge process: limits, auth, timeouts (all with safe defaults)."""

import json
from dataclasses import dataclass, field

from microws_host.cli import UserError


@dataclass
class BridgeConfig:
    """Everything that shapes a bridge; the CLI fills it from its flags."""

    tokens: dict | None = None  # token -> device id; None: any device may connect
    origins: tuple = ()  # extra allowed browser Origins ("*" allows any)
    browser_token: str | None = None  # when set, browsers must present it
    keepalive: float = 30.0  # seconds of device silence before a ping; no pong in half that: offline
    max_message_bytes: int = 16 * 1024
    max_devices: int = 1000
    max_browsers: int = 500
    max_sensors: int = 32  # per device; more are ignored
    device_rate: float = 50.0  # messages/s a device may send, sustained ...
    device_burst: int = 100  # ... and in a burst
    browser_queue: int = 1000  # events waiting per browser before the oldest are dropped
    history: int = 1000  # readings kept per device and sensor
    poll_log: int = 10000  # events kept for /api/poll
    command_timeout: float = 10.0
    device_interval_ms: int | None = None  # pushed to devices as `cfg` after hello
    extra: dict = field(default_factory=dict)


def load_tokens(path):
    """Read a tokens file: a JSON object {"TOKEN": "DEVICE_ID", ...}.

    Raises UserError with one line that says what is wrong with the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"tokens file {path} does not exist") from None
    except OSError as e:
        raise UserError(f"cannot read tokens file {path}: {e.strerror}") from None
    except ValueError as e:
        raise UserError(f"tokens file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in data.items()
    ):
        raise UserError(f'tokens file {path} must be a JSON object {{"TOKEN": "DEVICE_ID", ...}}')
    return data
