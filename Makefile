# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := sqlite:///spendbot-demo.db
DEMO_QUESTIONS := "what did we spend last month?" \
	"spend by provider last 30 days" \
	"GPU spend by team this month compared to last month" \
	"top 5 services last month" \
	"which GPUs are idle?" \
	"what data do you have?"

.PHONY: demo test bench clean

$(BIN)/spendbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/spendbot
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/spendbot
	rm -f spendbot-demo.db
	SPENDBOT_DATABASE_URL=$(DEMO_DB) $(BIN)/spendbot demo-data
	@if [ -t 0 ]; then \
		SPENDBOT_DATABASE_URL=$(DEMO_DB) $(BIN)/spendbot chat; \
	else \
		printf '%s\n' $(DEMO_QUESTIONS) | SPENDBOT_DATABASE_URL=$(DEMO_DB) $(BIN)/spendbot chat; \
	fi

test: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n auto

clean:
	rm -rf $(VENV) spendbot-demo.db .pytest_cache .ruff_cache

BENCH_ROWS ?= 1000000
BENCH_GROWTH_ROWS ?= 100000 1000000
BENCH_SERIES ?= 10000
bench: $(VENV)/.test-deps
	$(BIN)/python -m bench.ingest --rows $(BENCH_ROWS) --postgres auto
	$(BIN)/python -m bench.queries --rows $(BENCH_ROWS) --postgres auto --backends pandas,sqlite,duckdb --reuse
	$(BIN)/python -m bench.growth --rows $(BENCH_GROWTH_ROWS) --reuse
	$(BIN)/python -m bench.skills --rows $(BENCH_ROWS) --reuse
	$(BIN)/python -m bench.anomalies --series $(BENCH_SERIES) --days 180
	$(BIN)/python -m bench.ack --concurrency 100 --rounds 5

# The Teams app package to upload (Apps > Manage your apps > Upload an app); set MICROSOFT_APP_ID.
.PHONY: teams-package
teams-package: $(BIN)/spendbot
	$(BIN)/spendbot teams-package --out dist/spendbot-teams.zip
