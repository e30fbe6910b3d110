# Two commands for a newcomer:  `make demo` (the main job) and `make test` (everything).
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-done
NODE_WS := tests/node/node_modules/ws/package.json
ESP32_STUBS  := $(shell grep -E '^micropython-esp32-stubs==' requirements.txt)
RP2_STUBS    := $(shell grep -E '^micropython-rp2-stubs==' requirements.txt)
STDLIB_STUBS := micropython-stdlib-stubs==1.29.0.post2

.PHONY: setup system-deps test check demo bench clean

# The Python side (.venv): all that `make demo` needs.
setup: $(STAMP)

$(STAMP): requirements.txt host/pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e host
	# Board API stubs, one tree per board, so `make check` types device code against each.
	$(BIN)/pip install -q --no-deps --target $(VENV)/stubs/esp32 $(ESP32_STUBS) $(STDLIB_STUBS)
	$(BIN)/pip install -q --no-deps --target $(VENV)/stubs/rp2 $(RP2_STUBS) $(STDLIB_STUBS)
	touch $(STAMP)

$(NODE_WS): tests/node/package.json tests/node/package-lock.json | system-deps
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/node && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/ws/package.json; \
	else echo "note: npm not found: the Node ws interop tests will skip (and fail under CI=true)" >&2; fi

# System packages the tests use (chromium, redis-server, node/npm), via apt when possible.
system-deps:
	bash scripts/system-deps.sh

test: setup system-deps $(NODE_WS)
	$(BIN)/pytest $(PYTEST_ARGS)

check: setup
	$(BIN)/ruff check .
	$(BIN)/pyright -p pyrightconfig.esp32.json
	$(BIN)/pyright -p pyrightconfig.rp2.json

# Ctrl-C is how a demo ends: exit status 130 from a clean stop is not a failure.
demo: setup
	$(BIN)/microws demo || [ $$? -eq 130 ]

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) tests/node/node_modules build .pytest_cache
