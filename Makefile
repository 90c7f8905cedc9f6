# The README's two commands: `make demo` and `make test`. Both set everything up first.
SMALL_MODEL := qwen2.5-coder-0.5b-instruct-q4_k_m
DEFAULT_MODEL := qwen2.5-coder-1.5b-instruct-q4_k_m

.PHONY: demo test setup bench

# The demo drives the server over stdio as an editor would: no editor, browser or PyTorch.
demo:
	scripts/setup.sh --extras dev $(DEFAULT_MODEL)
	.venv/bin/python scripts/demo.py

test:
	scripts/setup.sh $(SMALL_MODEL)
	scripts/setup_editor.sh
	scripts/setup_test_tools.sh
	.venv/bin/ruff check .
	SMALLCODER_MODEL=$(SMALL_MODEL) .venv/bin/pytest
	npm run --silent test:unit  # the toolchain check and pip command lines, without VS Code
	SMALLCODER_MODEL=$(SMALL_MODEL) npm run --silent test:e2e
	npm run --silent test:e2e -- --fake-server  # Solve, Train and its install, walkthrough; scripted server
	npm run --silent test:e2e -- --fake-engine  # languages, exclusions, partial accept, snooze, files on disk
	npm run --silent test:e2e:trust  # an untrusted workspace cannot pick the program we run

setup:
	scripts/setup.sh $(SMALL_MODEL) $(DEFAULT_MODEL)
	scripts/setup_editor.sh
	scripts/setup_test_tools.sh

bench:
	.venv/bin/python bench/engine.py
	.venv/bin/python bench/lsp.py
	.venv/bin/python bench/fim.py --sample 200 --multi-line-sample 100
