# The two commands of the README: `make run` serves the panel, `make test` runs every test.
# Both work on a fresh Debian 12 machine as root: they install what they need first.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Debian packages the tests need: real keepalived, sshd and iptables for the lab, Chromium for
# the browser tests, redis-server for a private Redis when none runs, Debian's python3 for the
# lab's health-check targets (a node's sshd runs /usr/bin/python3, not this venv), pg_dump;
# python3-venv for `python3 -m venv` (Debian's python3 has no ensurepip without it).
# Checked against every program the tests run (strace of a whole run, in the note of issue 10).
TEST_APT := keepalived openssh-server openssh-client iptables iproute2 iputils-ping procps curl openssl chromium redis-server postgresql-client python3 python3-venv
RUN_APT := redis-server python3-venv
PG_URL ?= postgres://root@127.0.0.1:5432/test

.PHONY: screenshots run test test-sqlite test-postgres lint venv apt-test apt-run clean bench demo

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

# apt-get update only when something is missing, so a prepared machine starts at once.
apt-test:
	@missing=$$(for p in $(TEST_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

apt-run:
	@missing=$$(for p in $(RUN_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

run: apt-run venv
	VENV=$(VENV) scripts/run.sh

# vipanel and a three-node lab with a pushed cluster, on this machine (scripts/demo.sh); Ctrl-C
# removes it all. Debian packages as for the tests, less the browser.
demo: venv
	@$(MAKE) --no-print-directory apt-test \
		TEST_APT="keepalived openssh-server iptables iproute2 curl openssl redis-server python3-venv"
	VENV=$(VENV) scripts/demo.sh

# The whole suite on SQLite (embedded default), then again on PostgreSQL: every test that
# does not need the lab or the browser, plus the worker integration tests (real Celery worker,
# real lab), where the database's locking and constraints matter most. Running every lab test
# twice would double the time without testing more of our database code.
# Two pytest-xdist workers each time, one per core: each has its own test database, Redis db
# and, for the lab tests, its own lab (tests/settings.py, tests/lab/fixtures.py). The lab tests
# spend most of their time waiting for VRRP's timers, so two labs side by side halve their
# time; a module's tests stay on one worker (--dist loadfile).
test: apt-test venv
	$(MAKE) lint
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

# ruff (rules and format in pyproject.toml) and the import contracts, before any test runs.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

XDIST := -n 2 --dist loadfile

test-sqlite: venv
	$(PY) -m pytest $(XDIST) -m "not lab and not browser"
	$(PY) -m pytest $(XDIST) -m "lab or browser"

test-postgres: venv
	DATABASE_URL=$(PG_URL) $(PY) -m pytest $(XDIST) -m "not lab and not browser"
	DATABASE_URL=$(PG_URL) $(PY) -m pytest tests/test_push_worker.py

# Refresh the README's screenshots from the browser tests.
screenshots: apt-test venv
	VIPANEL_SCREENSHOTS=docs $(PY) -m pytest -m browser

clean:
	rm -rf $(VENV) data staticfiles

# Benchmarks against the lab (root; about 16 minutes), writing docs/BENCHMARKS.md. Ansible, the
# push's point of comparison, goes into a venv of its own. BENCH_PARTS: push sweep failover
# dashboard (default: all); BENCH_ARGS=--quick for a smoke run.
BENCH_ANSIBLE := /tmp/vipanel-bench/ansible-venv
bench: apt-test venv
	@[ -x $(BENCH_ANSIBLE)/bin/ansible-playbook ] || { $(PYTHON) -m venv $(BENCH_ANSIBLE) && \
		$(BENCH_ANSIBLE)/bin/pip install -q -r bench/requirements-ansible.txt; }
	$(PY) -m bench $(BENCH_PARTS) $(BENCH_ARGS)
