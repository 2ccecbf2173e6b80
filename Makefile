# irqmon: `make demo` runs the main job on QEMU, `make test` runs the tests.
# Both install what they need first (make setup: apt packages as root, then .venv).
PYTHON := .venv/bin/python
IRQMON := .venv/bin/irqmon
SAMPLE ?= hal_i2c_lock_deadlock

.PHONY: setup firmware demo test bench clean
setup:
	@bash scripts/setup.sh

firmware: setup
	$(MAKE) -C firmware_samples
	$(MAKE) -C firmware_samples BOARD=nucleo_f746zg

demo: firmware
	$(IRQMON) demo $(SAMPLE)

test: firmware
	$(PYTHON) -m pytest -q

bench: firmware
	$(PYTHON) benchmarks/run.py

clean:
	$(MAKE) -C firmware_samples clean
	rm -rf irqmon-demo
