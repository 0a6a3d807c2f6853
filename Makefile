# Two commands do all set-up, idempotently: `make demo` and `make test`.
# graph-tool comes from Debian (python3-graph-tool, 2.45) for Debian's own python3,
# so the venv is made from /usr/bin/python3 with --system-site-packages. Debian's chromium renders
# the study report headless in the tests (tests/modgraph/study/test_report_browser.py).
SYS_PYTHON ?= /usr/bin/python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
APT_PKGS   := python3-graph-tool python3-venv python3-pip chromium

.PHONY: setup test demo study-demo clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if ! $(SYS_PYTHON) -c "import graph_tool" 2>/dev/null || ! $(SYS_PYTHON) -c "import ensurepip" 2>/dev/null \
		|| ! command -v chromium >/dev/null; then \
		echo "installing $(APT_PKGS) with apt"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi
	@[ -x $(PY) ] || $(SYS_PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@$(PY) -c "import graph_tool, numpy, distributed; assert numpy.__version__ < '2', numpy.__version__"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/modgraph-train demo --out out/demo
	@echo "the commands are $(VENV)/bin/modgraph and $(VENV)/bin/modgraph-train (source $(VENV)/bin/activate to put them on PATH)"

# one sculpted network through six exports, 3 methods x 3 seeds, out/study-demo/study/report.html
study-demo: $(STAMP)
	$(VENV)/bin/modgraph-train study-demo --out out/study-demo

clean-venv:
	rm -rf $(VENV)
