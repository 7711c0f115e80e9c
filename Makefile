# Fargo: `make run` sets up and starts Fargo and runs the example task; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FARGO := $(VENV)/bin/fargo
DATA_DIR ?= /var/lib/fargo
ENDPOINT ?= http://127.0.0.1:8400
APT_PACKAGES := containerd runc tini iproute2 nftables e2fsprogs busybox-static python3-venv docker-registry
TEST_APT_PACKAGES := postgresql iperf3 skopeo
TEST_IMAGE := build/busybox.tar
# Pinned versions of every Python dependency; `make lock` refreshes them on purpose.
CONSTRAINTS := constraints.txt
LOCK_VENV := build/lock-venv

.PHONY: install system-packages test-packages venv lock run stop test bench clean

install: system-packages venv $(TEST_IMAGE)

# Debian packages: containerd and runc run the tasks; iproute2/nftables build task networks;
# tini is the init of initProcessEnabled; e2fsprogs makes ephemeral volumes; busybox-static is the base of the image Fargo builds for examples and tests.
system-packages:
	@bash scripts/apt-install.sh $(APT_PACKAGES)

# The store is tested on PostgreSQL too: the tests start a throw-away cluster unless FARGO_TEST_POSTGRES_URL is set.
test-packages:
	@bash scripts/apt-install.sh $(TEST_APT_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	@touch $@

# Refresh constraints.txt on purpose: the newest releases pyproject.toml allows, in a fresh venv, frozen.
# botocore's validator report is read by the wire layer, so review the diff and run `make test` before committing.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -e '.[test]'
	{ sed -n '/^#/p' $(CONSTRAINTS) 2>/dev/null; $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "$(CONSTRAINTS) refreshed; review it with git diff, then run make test."

$(TEST_IMAGE): $(VENV)/.installed fargo/runtime/test_image.py
	@mkdir -p build
	$(PY) -m fargo.runtime.test_image $(TEST_IMAGE)

# Start Fargo in the background, wait until it is healthy, then run examples/hello-fargate.json.
run: install
	@bash scripts/run-example.sh "$(FARGO)" "$(DATA_DIR)" "$(ENDPOINT)" "$(TEST_IMAGE)"

stop:
	@if [ -f $(DATA_DIR)/fargo.pid ]; then kill $$(cat $(DATA_DIR)/fargo.pid) && echo "Fargo stopped."; fi

test: install test-packages
	$(PY) -m pytest tests -q -p no:cacheprovider

bench: install
	$(PY) bench/api.py
	$(PY) bench/task_start.py
	$(PY) bench/cached_start.py
	$(PY) bench/task_timeouts.py
	$(PY) bench/idle_tasks.py
	$(PY) bench/runtime.py
	$(PY) bench/network.py
	$(PY) bench/task_network.py
	$(PY) bench/metadata.py
	$(PY) bench/storage.py
	$(PY) bench/pull.py
	$(PY) bench/services.py

clean:
	rm -rf build $(VENV)
