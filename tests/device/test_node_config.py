"""config.json: defaults, validation with one-line errors, unknown keys reported."""

import firmware_path  # noqa: F401  (puts firmware/ on sys.path)

# isort: split
from devtest import raises
from node import config


def test_empty_config_gives_every_default():
    cfg = config.validate({})
    assert cfg == config.defaults()
    assert cfg["interval_ms"] == 5000 and cfg["outbox"] == 256 and cfg["bridge"] == ""


def test_given_values_override_defaults():
    cfg = config.validate({"id": "n1", "bridge": "ws://h:1/device", "interval_ms": 100, "sensors": ["temp"]})
    assert cfg["id"] == "n1" and cfg["interval_ms"] == 100 and cfg["sensors"] == ["temp"]
    assert cfg["outbox"] == 256


def test_wrong_type_is_rejected_with_the_key_named():
    with raises(config.ConfigError) as e:
        config.validate({"interval_ms": "5000"})
    assert "interval_ms" in str(e.value)
    with raises(config.ConfigError):
        config.validate({"outbox": True})  # a bool is not a size


def test_out_of_range_is_rejected():
    with raises(config.ConfigError) as e:
        config.validate({"interval_ms": 1})
    assert ">=" in str(e.value)
    with raises(config.ConfigError):
        config.validate({"outbox": 10**6})
    with raises(config.ConfigError):
        config.validate({"wifi_ssid": "x" * 33})


def test_bridge_must_be_a_websocket_url():
    with raises(config.ConfigError):
        config.validate({"bridge": "http://host/device"})
    assert config.validate({"bridge": "wss://h/device"})["bridge"] == "wss://h/device"


def test_backoff_bounds_must_be_ordered():
    with raises(config.ConfigError):
        config.validate({"backoff_min_ms": 5000, "backoff_max_ms": 100})


def test_unknown_key_is_reported_not_fatal():
    seen = []
    cfg = config.validate({"intervall_ms": 10}, warn=seen.append)
    assert cfg["interval_ms"] == 5000
    assert len(seen) == 1 and "intervall_ms" in seen[0]


def test_non_object_config_is_rejected():
    with raises(config.ConfigError):
        config.validate([1, 2])


def test_load_reads_json_file_and_missing_file_means_defaults():
    seen = []
    assert config.load("/nonexistent/config.json", warn=seen.append) == config.defaults()
    assert seen
    path = "/tmp/microws-test-config-%d.json" % id(seen)
    with open(path, "w") as f:
        f.write('{"id": "from-file", "interval_ms": 250}')
    try:
        cfg = config.load(path)
        assert cfg["id"] == "from-file" and cfg["interval_ms"] == 250
        with open(path, "w") as f:
            f.write("{not json")
        with raises(config.ConfigError):
            config.load(path)
    finally:
        import os

        os.remove(path)
