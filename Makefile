# mqnode build and test entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The tests run the client on this MicroPython; override with MICROPYTHON=/path/to/micropython.
export MICROPYTHON ?= $(abspath $(VENV)/bin/micropython)
MOSQUITTO := $(shell command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null)

.PHONY: venv mosquitto test demo clean

venv: $(STAMP)

# Reinstall only when the dependency pins change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The test broker is the system mosquitto; CI machines run as root and can install it themselves.
mosquitto:
ifeq ($(MOSQUITTO),)
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update && apt-get install -y mosquitto; \
	else \
		echo "mosquitto is missing: run 'sudo apt-get install -y mosquitto'" >&2; exit 2; \
	fi
else
	@:
endif

test: venv mosquitto
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

# The main job: a private mosquitto, three simulated nodes and the live monitor (Ctrl-C stops).
# DURATION=10 runs for 10 s and exits 0 with a summary.
demo: venv mosquitto
	$(VENV)/bin/mqnode demo $(if $(DURATION),--duration $(DURATION))

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
