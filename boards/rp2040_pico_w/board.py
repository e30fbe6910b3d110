"""Board profile `rp2040_pico_w`: Raspberry Pi Pico W (RP2040 + CYW43439 Wi-Fi).

Sensors: the RP2040's internal temperature sensor on ADC(4) (datasheet formula
27 - (V - 0.706) / 0.001721). LED: ``Pin("LED")``, which sits on the CYW43 chip, not
on an RP2040 GPIO.

CYW43 power save: by default the Wi-Fi chip sleeps between beacons, which adds tens
to hundreds of ms of latency to every incoming frame (acks, pings, commands). The node
is mains/USB powered in the usual set-up, so ``wlan_setup`` turns power save off
(``pm=0xa11140``, the value documented for the Pico W); on a battery, drop that line
and accept the slower replies.
"""

import machine
from machine import ADC, Pin

NAME = "rp2040_pico_w"
SENSORS = (("mcu_temp", "C"),)
SPEEDUP = 1
WATCHDOG_MAX_MS = 8388  # the RP2040 watchdog cannot count longer
FEEDER_TIMER_ID = -1  # rp2 has only virtual timers

_led = Pin("LED", Pin.OUT, value=0)
_temp_adc = ADC(4)
_VOLTS_PER_COUNT = 3.3 / 65535


def setup(cfg):
    """Nothing to configure: pins are set up at import."""


def read(name, elapsed_ms):
    """Read sensor ``name`` (``elapsed_ms`` is for simulated boards; unused here)."""
    if name == "mcu_temp":
        volts = _temp_adc.read_u16() * _VOLTS_PER_COUNT
        return 27 - (volts - 0.706) / 0.001721
    return None


def led(on):
    """Switch the on-board LED (driven through the CYW43 chip)."""
    _led.value(1 if on else 0)


def wlan_setup(wlan):
    """Turn CYW43 power save off for prompt replies (see the module docstring)."""
    wlan.config(pm=0xA11140)


def reset():
    """Hard reset the chip."""
    machine.reset()
