"""The benchmark's limits of the machine and work counts (scripts/benchmarks.py): what its shares are made of."""

from __future__ import annotations

import math

import torch

from scripts.benchmarks import counted_flops, machine_peaks, sampling_bytes, share


def test_the_machine_peaks_are_positive_rates():
    peaks = machine_peaks(torch.device("cpu"), size=128, copy_mb=4, repeats=2)
    assert set(peaks) == {"matmul_gflops", "copy_gbps"}
    assert all(math.isfinite(v) and v > 0 for v in peaks.values())


def test_counted_flops_of_a_linear_layer_forward_and_backward():
    layer = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(10, 8)
    assert counted_flops(lambda: layer(x)) == 2 * 10 * 8 * 4
    # Backward: the gradients of the input and of the weight, each one more product of the same size.
    assert counted_flops(lambda: layer(x.requires_grad_()).sum().backward()) == 3 * 2 * 10 * 8 * 4


def test_the_feature_sampling_scatter_counts_its_stored_entries_not_a_dense_product():
    from bts.fields.tokens import scatter_to_texels

    rows, weights, per_point = torch.randint(0, 500, (100, 4)), torch.rand(100, 4), torch.randn(100, 6)
    # the sparse [500, 100] matrix holds 4 entries per point: 2 * 400 * 6, not 2 * 500 * 100 * 6
    assert counted_flops(lambda: scatter_to_texels(rows, weights, per_point, 500)) == 2 * 400 * 6


def test_sampling_traffic_and_shares():
    assert sampling_bytes(1000, 2, 64) == 1000 * 2 * 64 * 4 * 5  # four texels read and one token written per channel
    assert share(5.0, 20.0) == 0.25 and math.isnan(share(1.0, 0.0))


def test_the_profile_names_the_costliest_operator_and_with_shapes_its_call():
    import torch

    from scripts.benchmarks import profiled_ops

    a, b = torch.randn(300, 300), torch.randn(8, 8)

    def work():
        for _ in range(3):
            a @ a
        b + b

    plain = profiled_ops(work, 2)
    assert plain[0]["op"] == "aten::mm" and plain[0]["calls"] == 3 and "shapes" not in plain[0]
    assert 0 < plain[0]["share"] <= 1
    shaped = profiled_ops(work, 5, shapes=True)
    assert shaped[0]["op"] == "aten::mm" and shaped[0]["shapes"] == "[[300, 300], [300, 300]]"
