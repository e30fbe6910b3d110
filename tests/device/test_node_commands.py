"""Commands from the bridge, run against a real Node on the unix board profile."""

import firmware_path  # noqa: F401  (puts firmware/ on sys.path)

# isort: split
import board
from node import commands, config
from node.app import Node


def make_node(**overrides):
    cfg = config.validate(overrides)
    return Node(cfg, board)


def test_led_switches_the_board_led_and_rejects_non_bool():
    node = make_node()
    assert commands.run(node, "led", {"on": True}) == (True, {"on": True})
    assert node.led_on is True
    ok, err = commands.run(node, "led", {"on": "yes"})
    assert not ok and "led" in err
    assert node.led_on is True


def test_interval_changes_sampling_and_validates_range():
    node = make_node(interval_ms=1000)
    assert commands.run(node, "interval", {"ms": 250}) == (True, {"ms": 250})
    assert node.interval_ms == 250
    for bad in ({"ms": 0}, {"ms": "250"}, {}, {"ms": True}):
        ok, _ = commands.run(node, "interval", bad)
        assert not ok
    assert node.interval_ms == 250


def test_ping_answers_pong():
    assert commands.run(make_node(), "ping", {}) == (True, "pong")


def test_info_reports_heap_uptime_rssi_and_outbox_depth():
    node = make_node(outbox=16)
    for _ in range(3):
        node.sample()
    ok, info = commands.run(node, "info", None)
    assert ok
    assert info["outbox"] == 3 and info["outbox_capacity"] == 16 and info["seq"] == 3
    assert info["rssi"] is None  # the unix port has no Wi-Fi
    assert info["uptime_s"] >= 0
    assert info["board"] == "unix" and info["boot"] == node.boot
    import sys

    if sys.implementation.name == "micropython":
        assert info["heap_free"] > 0 and info["heap_alloc"] > 0
    else:
        assert info["heap_free"] is None


def test_unknown_command_and_bad_args_give_error_results():
    node = make_node()
    ok, err = commands.run(node, "selfdestruct", {})
    assert not ok and "unknown command" in err
    ok, err = commands.run(node, "led", [1])
    assert not ok and "object" in err
    ok, err = commands.run(node, None, {})
    assert not ok


def test_sample_fills_outbox_with_simulated_readings():
    node = make_node(outbox=4)
    for _ in range(6):
        node.sample()
    assert len(node.outbox) == 4 and node.outbox.dropped == 2
    temp = node.outbox.value(6, 0)
    assert 10.0 < temp < 32.0
