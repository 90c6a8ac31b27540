# `make demo` runs the main job on the built-in synthetic city; `make test` runs the test suite.
# Both create the local virtual environment .venv on first use and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The demo evaluates 20 test frames per model under the `exact` protocol (which also reports the `bts` numbers).
DEMO_EVAL := protocol=exact max_frames=20 output_dir=outputs/demo/occupancy

.PHONY: install demo test lint benchmark reproduce completion distillation clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# PyTorch from PyPI is the CUDA build (it also runs on the CPU): the environment takes about 6 GB of disk.
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[dev]' || { \
		echo "error: installing the project into $(VENV) failed (pip says why above); it needs about 6 GB of free disk (PyTorch's CUDA" \
			"build and its libraries). Free disk here:"; df -h . ; exit 1; }
	@# The project's top-level package is `datasets/`; the PyPI package of that name would shadow it.
	@if $(BIN)/python -m pip show datasets >/dev/null 2>&1; then \
		echo "error: the PyPI package 'datasets' is installed in $(VENV) and clashes with this project's datasets/ package; run '$(BIN)/pip uninstall datasets'"; exit 1; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m scripts.demo
	$(BIN)/python train.py -cn bts preset=synthetic
	$(BIN)/python train.py -cn mvbts preset=synthetic
	$(BIN)/python train.py -cn kdbts preset=synthetic
	$(BIN)/python -m scripts.export_single_view outputs/kdbts/latest/checkpoints/last.pt
	$(BIN)/python evaluation/occupancy.py checkpoint=outputs/bts/latest/checkpoints/last.pt $(DEMO_EVAL)/bts
	$(BIN)/python evaluation/occupancy.py checkpoint=outputs/mvbts/latest/checkpoints/last.pt $(DEMO_EVAL)/mvbts
	$(BIN)/python evaluation/occupancy.py checkpoint=outputs/kdbts/latest/checkpoints/last_single_view.pt \
		$(DEMO_EVAL)/kdbts
	$(BIN)/python -m evaluation.summary outputs/demo/occupancy/bts/results.json \
		outputs/demo/occupancy/mvbts/results.json outputs/demo/occupancy/kdbts/results.json
	$(BIN)/python render_novel_view.py checkpoint=outputs/kdbts/latest/checkpoints/last_single_view.pt \
		render.num_samples=32 sequence.count=20 'bev.resolution=[64,64]' output.dir=outputs/demo/render

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Static checks (the rule set is in pyproject.toml, [tool.ruff.lint]); .ci/run runs them before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .

# The reproduction of the papers' finding on the synthetic city (issue 7; README "Reproduction"), budget 1.
reproduce: $(STAMP)
	$(BIN)/python -m scripts.reproduce

# Scene completion on the built-in city (issue 13; README "Scene completion"): BTS (`preset=completion`: every loss ray
# from the fisheyes) and its supervised bound, two seeds, 150 / 450 / 1,500 / 2,100 steps, learning curves with
# baselines and exact ceilings; two trainings (then evaluations) at once, one thread each, for the 2-core machine. BTS
# starts from an encoder pretrained on the city's material labels (600 steps, the offline stand-in for ImageNet
# weights); the bound starts from scratch, as in the README's table.
completion: $(STAMP)
	$(BIN)/python scripts/completion.py --jobs 2 --encoder-pretraining 600 --pretrained-models bts

# The distillation experiment (issue 14; README "The distillation experiment"): BTS, MVBTS teachers (stereo, seeing)
# and KDBTS students per loss and mask, two seeds, scored on the exact truth per region of the teacher's evidence.
distillation: $(STAMP)
	$(BIN)/python scripts/distillation.py --jobs 2

benchmark: $(STAMP)
	$(BIN)/python -m datasets.benchmark
	$(BIN)/python -m scripts.benchmarks
	$(BIN)/python -m evaluation.benchmark
	$(BIN)/python -m scripts.render_benchmark

clean-venv:
	rm -rf $(VENV)
