"""Board profile `esp32`: ESP32_GENERIC (e.g. ESP32-DevKitC / WROOM-32).

Sensors: the chip's internal temperature sensor and one ADC pin (GPIO34, input only,
0-3.3 V with 11 dB attenuation). LED on GPIO2 (the blue LED of most dev boards).
The original ESP32 has ``esp32.raw_temperature()`` (degrees Fahrenheit, uncalibrated);
S2/S3/C3 chips have ``esp32.mcu_temperature()`` (Celsius): both are handled.
"""

import esp32
import machine
from machine import ADC, Pin

NAME = "esp32"
SENSORS = (("mcu_temp", "C"), ("adc34", "mV"))
SPEEDUP = 1
WATCHDOG_MAX_MS = 3600000
FEEDER_TIMER_ID = 0  # ESP32 has hardware timers 0-3, no virtual timer

_led = Pin(2, Pin.OUT, value=0)
_adc = ADC(Pin(34), atten=ADC.ATTN_11DB)
# getattr: only S2/S3/C3 firmware has mcu_temperature; ESP32_GENERIC has raw_temperature
_mcu_temperature = getattr(esp32, "mcu_temperature", None)


def setup(cfg):
    """Nothing to configure: pins are set up at import."""


def read(name, elapsed_ms):
    """Read sensor ``name`` (``elapsed_ms`` is for simulated boards; unused here)."""
    if name == "mcu_temp":
        if _mcu_temperature is not None:
            return _mcu_temperature()
        return (esp32.raw_temperature() - 32) / 1.8
    if name == "adc34":
        return _adc.read_uv() // 1000
    return None


def led(on):
    """Switch the on-board LED."""
    _led.value(1 if on else 0)


def wlan_setup(wlan):
    """Wi-Fi tweaks before connecting: none needed on ESP32."""


def reset():
    """Hard reset the chip."""
    machine.reset()
