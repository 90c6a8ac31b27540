"""The decoder's ELU (``bts.encoders.decoder.elu``): ``exp(x) - 1`` in float32 instead of ``expm1`` on the CPU,
against ``F.elu``: values within the rounding of ``exp`` near 1, the same gradient, the same memory layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bts.encoders.decoder import ConvBlock, elu


def _maps(dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 12, 20, generator=gen) * 3
    x[0, 0, 0, :6] = torch.tensor([0.0, -0.0, -1e-7, 1e-7, -30.0, -200.0])  # zero, tiny, saturated negatives
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


def test_values_equal_f_elu_to_the_rounding_of_exp():
    x = _maps()
    reference = F.elu(x.double())
    fast = elu(x)
    assert fast.dtype == torch.float32 and fast.is_contiguous(memory_format=torch.channels_last)
    assert (fast.double() - reference).abs().max() <= 1e-7
    assert torch.equal(fast[x > 0], x[x > 0])  # the positive branch is the input itself
    assert fast.min() >= -1.0 and fast[0, 0, 0, 5] == -1.0


def test_bf16_is_computed_wide_and_rounded_once():
    x = _maps(torch.bfloat16)
    fast, reference = elu(x), F.elu(x)
    assert fast.dtype == torch.bfloat16
    # at most one bf16 step apart (where the two float32 results straddle a rounding boundary), or the absolute
    # rounding of exp near 1 for the tiniest inputs
    step = (reference.float().abs() * 2.0**-7).clamp_min(1e-7)
    assert ((fast.float() - reference.float()).abs() <= step).all()
    assert (fast == reference).float().mean() > 0.99


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradient_is_f_elus(dtype):
    x = _maps(dtype)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    F.elu(a).backward(grad)
    elu(b).backward(grad)
    assert torch.equal(a.grad, b.grad)


def test_float64_and_the_conv_block_use_it():
    x = _maps(torch.float64)
    assert torch.equal(elu(x), F.elu(x))  # float64 keeps F.elu itself
    block = ConvBlock(8, 4)
    out = block(_maps())
    assert torch.equal(out, elu(block.conv(_maps())))
    assert not torch.equal(out, block.conv(_maps()))
