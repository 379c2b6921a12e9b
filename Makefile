# Freematics ONE+ MicroPython firmware: host build, test, simulation and deploy.
# `make sim` runs the whole telelogger against simulated modem/vehicle/GNSS; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PORT ?= /dev/ttyUSB0
BOARD ?= oneplus-b
DURATION ?= 60
CUT ?= 20:10
CONFIG ?=
SECRETS ?=
DEPLOY_ARGS ?=
LOG ?=
# pytest workers (pytest-xdist): the suite is mostly waiting on simulated peers, two share 2 cores well
TEST_WORKERS ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv test test-mpy lint typecheck build validate deploy repl logs check doctor sim bench census soak fuzz clean

$(VENV)/.installed: requirements-dev.txt scripts/setup_host.sh
	bash scripts/setup_host.sh $(VENV)
	touch $@

venv: $(VENV)/.installed

## make test: unit + integration tests on CPython and MicroPython, plus the .mpy build
test: venv
	$(BIN)/pytest -q -rs -n $(TEST_WORKERS) -m "not slow" host_tests
	$(MAKE) --no-print-directory test-mpy

## the MicroPython half of the suite again, importing the mpy-cross build instead of sources
test-mpy: build
	FIRMWARE_PATH=$(abspath build/firmware) $(BIN)/pytest -q -rs -n $(TEST_WORKERS) -m micropython host_tests

lint: venv
	$(BIN)/ruff check firmware boards host_tests scripts

typecheck: venv
	bash scripts/typecheck.sh

build: venv
	$(PY) scripts/build.py

## check a config and its secrets without a board: make validate CONFIG=my-config.json SECRETS=my-secrets.json
validate: venv
	$(PY) scripts/validate.py --config $(or $(CONFIG),firmware/config.example.json) $(if $(SECRETS),--secrets $(SECRETS))

deploy: build
	$(PY) scripts/deploy.py --port $(PORT) --board $(BOARD) $(if $(CONFIG),--config $(CONFIG)) $(if $(SECRETS),--secrets $(SECRETS)) $(DEPLOY_ARGS)

repl: venv
	$(BIN)/mpremote connect $(PORT) repl

logs: venv
	$(PY) scripts/deploy.py --port $(PORT) --logs

## board bring-up check on the device over USB (after make deploy)
check: venv
	$(PY) scripts/hwcheck.py --port $(PORT)

## explain a modem transcript: make doctor LOG=modem.log
doctor: venv
	$(PY) scripts/at_doctor.py $(LOG)

## the main job: the telelogger against simulated modem/vehicle/GNSS and a real broker
sim: venv
	$(PY) scripts/sim.py --duration $(DURATION) $(if $(CUT),--cut-network $(CUT))

bench: build
	$(PY) scripts/bench.py

## where the live heap goes, by kind of object (a diagnostic 32-bit MicroPython, built once into build/mpdiag)
census: venv
	$(PY) scripts/heapcensus.py

## the long soaks: the fault soak on virtual time (CPython), then 10 minutes of real time with the
## firmware under MicroPython against the simulators and 120 random faults (MP_SOAK_S/MP_SOAK_FAULTS)
MP_SOAK_S ?= 600
MP_SOAK_FAULTS ?= 120
soak: venv
	$(BIN)/pytest -q -m slow host_tests
	$(PY) scripts/sim.py --duration $(MP_SOAK_S) --faults $(MP_SOAK_FAULTS) --drain 120 --out soak-out/micropython

## property tests with fresh random inputs and many more examples (make test runs a fixed set)
FUZZ_EXAMPLES ?= 2000
fuzz: venv
	HYPOTHESIS_PROFILE=explore FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider \
		host_tests/test_fuzz.py host_tests/test_nmea_diff.py host_tests/test_at_framing_props.py host_tests/test_doctor.py

clean:
	rm -rf build sim-out .pytest_cache
