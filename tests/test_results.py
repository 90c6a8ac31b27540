"""bts/results.py: every result file is strict JSON."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bts.results import json_safe, write_json


def test_non_finite_numbers_numpy_values_and_paths_become_strict_json(tmp_path):
    value = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "np": np.float32(0.5), "arr": np.arange(3),
             "nested": [{"x": np.float64("nan")}], "path": Path("a/b"), 3: "int key"}
    path = write_json(tmp_path / "sub" / "results.json", value)

    def refuse(name):
        raise ValueError(name)

    back = json.loads(path.read_text(), parse_constant=refuse)
    assert back == {"nan": None, "inf": "inf", "ninf": "-inf", "np": 0.5, "arr": [0, 1, 2],
                    "nested": [{"x": None}], "path": "a/b", "3": "int key"}


def test_an_unconvertible_value_is_refused_not_written():
    with pytest.raises(TypeError):
        write_json("/dev/null", {"x": object()})
    assert json_safe((1, 2.0)) == [1, 2.0]
