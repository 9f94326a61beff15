# `make check` is the test command CI runs: lint, format check, types, layering, tests.
UV ?= uv
SRC := packages/*/src apps/*/src
TESTS := conftest.py $(wildcard tests/*.py packages/*/tests/*.py apps/*/tests/*.py scripts/*.py)

.PHONY: check sync lint format-check format typecheck layers test coverage bench clean

check: sync lint format-check typecheck layers test

sync:
	$(UV) sync --locked

lint:
	$(UV) run --locked ruff check .

format-check:
	$(UV) run --locked ruff format --check .

format:
	$(UV) run --locked ruff format .
	$(UV) run --locked ruff check --fix .

typecheck:
	$(UV) run --locked mypy $(SRC) $(TESTS)

layers:
	$(UV) run --locked lint-imports

test:
	$(UV) run --locked pytest -q

coverage:
	$(UV) run --locked pytest -q --cov --cov-report=term-missing

bench:
	$(UV) run --locked bench all

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache htmlcov .coverage dist build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
