"""Training-step and density-query speed: ``python -m scripts.benchmarks [--device cuda] [--sizes 192x640 96x320]``.

A training step is the full step of ``train.py`` (encode, rays in 8x8 patches, 64 samples per ray, colour from the
4 colour frames, L1+SSIM and smoothness, backward, Adam) on a synthetic batch of 8 views, so that data loading is
not part of the number: BTS with 4096 rays, MVBTS with 2048 rays and 3 encoded views, KDBTS as MVBTS plus the
student and the distillation loss (the ``joint`` recipe, where everything trains). Defaults follow docs/decisions.md
§9: on CPU one sample, fp32, 2 threads; on GPU the paper batch sizes (16, 8, 8). One JSON line per measurement:
the median step time with its spread (fastest, slowest), the machine (CPU model, cores, threads, torch version).

How close to the machine's limit: the run first measures the machine's own peaks (:func:`machine_peaks`: a float32
matmul rate and a memory-copy bandwidth, with the threads of the run), then prints next to each time the share of
them reached: a training step's counted FLOPs (``torch.utils.flop_counter``: matmuls and convolutions, forward and
backward) per second against the matmul peak; a density query's FLOPs (the point MLP) against the matmul peak and
its feature-sampling traffic (four texels of every feature channel read per point and view, the token written)
against the bandwidth. Each share treats its work as if it were the only work of that time, so together they say
how far each stage is from its physical limit, not where the rest of the time goes.

The reproduction's configuration with the fast encoder path against the plain one:

    python -m scripts.benchmarks --sizes 96x352 --depth 18 --batch-size 4 --rays 1024 --threads 1 --models bts \
        --amp none bf16 --channels-last false true --steps 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bts.fields import EncodedViews
from bts.geometry import make_rigid, rotation_y
from bts.models import build_model
from bts.numerics import CPU_MEMORY_MODES, flush_subnormals, set_cpu_memory
from bts.results import cpu_model
from bts.rendering.renderer import RendererConfig, query_density
from bts.training.engine import encoder_precision, fused_adam
from bts.training.objective import ObjectiveConfig, training_step

K_NORMALIZED = torch.tensor([[0.7849, 0.0, -0.0312], [0.0, 2.9391, 0.2701], [0.0, 0.0, 1.0]])


def synthetic_batch(batch_size: int, height: int, width: int, device: torch.device) -> dict:
    """Eight views around a forward-moving stereo rig, with random images."""
    g = torch.Generator().manual_seed(0)
    poses = []
    for t, (dx, yaw) in enumerate([(0.0, 0), (0.0, 0), (0.6, 0), (0.6, 0), (-0.8, -75), (-0.8, -75), (1.4, 75),
                                   (1.4, 75)]):
        poses.append(make_rigid(rotation_y(yaw).float(), torch.tensor([dx, 0.0, float(t % 2) + (t >= 4) * 10.0])))
    return {
        "images": (torch.rand(batch_size, 8, 3, height, width, generator=g) * 2 - 1).to(device),
        "intrinsics": K_NORMALIZED.expand(batch_size, 8, 3, 3).clone().to(device),
        "cam_to_world": torch.stack(poses).expand(batch_size, 8, 4, 4).clone().to(device),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def model_config(kind: str, depth: int) -> dict:
    encoder = {"depth": depth, "pretrained": False}
    if kind == "bts":
        return {"kind": "bts", "encoder": encoder, "field": {}}
    cfg = {"kind": kind, "encoder": encoder,
           "field": {"num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0, "view_dropout": 0.5},
           "fusion": {"type": "confidence", "hidden_dim": 128, "feature_dim": 16, "out_hidden_dim": 16},
           "views": {"num_train_views": 3, "train_candidates": [1, 2, 3], "eval_views": "mono"}}
    if kind == "kdbts":
        cfg["student"] = {"hidden_dim": 64}
    return cfg


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bench_train_step(model_cfg: dict, batch: dict, objective: ObjectiveConfig, renderer: RendererConfig,
                     device: torch.device, steps: int, warmup: int, amp: str, channels_last: bool = False,
                     flops: list[int] | None = None, profile: list[dict] | None = None,
                     profile_top: int = 15, faults: list[float] | None = None,
                     profile_shapes: bool = False) -> list[float]:
    """Seconds of each of ``steps`` full training steps (forward, backward, Adam) after ``warmup`` steps; with a list
    ``flops``, one more (untimed) step's counted FLOPs are appended to it (:func:`counted_flops`); with a list
    ``profile``, one more step's ``profile_top`` costliest operators (:func:`profiled_ops`) are appended to it; with
    a list ``faults``, the process's minor page faults per timed step (every page the kernel had to map and zero)."""
    torch.manual_seed(0)  # the same initial weights in every run: how many values are subnormal depends on them
    model = build_model(model_cfg).to(device)
    if model_cfg["kind"] == "kdbts":
        model.configure("joint", student_photometric=False)  # the costlier recipe: everything trains
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused_adam(device))  # as train.py
    model.encoder.use_fast_path(encoder_precision(amp, device), channels_last)  # as train.py does
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        if i == warmup:
            faults_before = _minor_faults()
        start = time.perf_counter()
        out = training_step(model, batch, objective, renderer, gen)
        optimizer.zero_grad(set_to_none=True)
        out.loss.total.backward()
        optimizer.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    if faults is not None and steps > 0:
        faults.append((_minor_faults() - faults_before) / steps)
    if flops is not None:
        def step():
            out = training_step(model, batch, objective, renderer, gen)
            optimizer.zero_grad(set_to_none=True)
            out.loss.total.backward()

        flops.append(counted_flops(step))
    if profile is not None:
        def whole_step():
            out = training_step(model, batch, objective, renderer, gen)
            optimizer.zero_grad(set_to_none=True)
            out.loss.total.backward()
            optimizer.step()

        profile.extend(profiled_ops(whole_step, profile_top, shapes=profile_shapes))
    return times


def profiled_ops(fn, top: int, shapes: bool = False) -> list[dict]:
    """Where one call of ``fn`` spends its time: the ``top`` operators by self CPU time (``torch.profiler``; the
    time inside an operator minus that of the operators it calls), each with its share of the summed self time and
    its call count; with ``shapes``, one entry per operator and input shapes, the shapes included. The profiler's
    own overhead is part of the call, so read the shares, not the seconds."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    with profile(activities=[ProfilerActivity.CPU], record_shapes=shapes) as prof:
        fn()
    events = [e for e in prof.key_averages(group_by_input_shape=shapes) if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_s": round(e.self_cpu_time_total / 1e6, 4),
             "share": round(e.self_cpu_time_total / total, 3), "calls": e.count,
             **({"shapes": str(e.input_shapes)} if shapes else {})} for e in events[:top]]


def machine_peaks(device: torch.device, size: int = 2048, copy_mb: int = 256, repeats: int = 5) -> dict[str, float]:
    """The machine's own limits with the current thread setting: the float32 matmul rate (``size`` x ``size``
    products, best of ``repeats``) in GFLOP/s and the memory bandwidth of a ``copy_mb`` MB tensor copy (bytes read
    plus written, best of ``repeats``) in GB/s."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    x = torch.empty(copy_mb * 2**20 // 4, device=device).uniform_()
    y = torch.empty_like(x)
    best_mm = best_copy = math.inf
    for _ in range(repeats + 1):  # the first of each is a warm-up
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best_mm = min(best_mm, time.perf_counter() - start)
        start = time.perf_counter()
        y.copy_(x)
        _sync(device)
        best_copy = min(best_copy, time.perf_counter() - start)
    return {"matmul_gflops": 2 * size**3 / best_mm / 1e9, "copy_gbps": 2 * x.numel() * 4 / best_copy / 1e9}


def _mm_flops(a, b, *, out_val=None, **_) -> int:
    """``aten.mm`` FLOPs that know a sparse left factor (the feature sampling's backward, ``scatter_to_texels``):
    ``2 nnz n`` there, where the stock formula would count the sparse matrix as dense; ``2 m k n`` otherwise."""
    if a.layout != torch.strided:
        return 2 * int(a._nnz()) * int(b.shape[-1])
    return 2 * int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


_mm_flops._get_raw = True  # FlopCounterMode passes the tensors, not their shapes


def counted_flops(fn) -> int:
    """The FLOPs ``torch.utils.flop_counter`` counts for one call of ``fn`` (matmuls and convolutions, forward and
    backward where ``fn`` runs one; a sparse product by its stored entries)."""
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.mm: _mm_flops})
    with counter:
        fn()
    return int(counter.get_total_flops())


def sampling_bytes(num_points: int, num_views: int, channels: int, bytes_per_value: int = 4) -> int:
    """The memory traffic of bilinear feature sampling: four texels of every channel read per point and view, and
    the sampled token written (the least any implementation must move when the feature map is not in cache)."""
    return num_points * num_views * channels * bytes_per_value * (4 + 1)


def share(rate: float, peak: float) -> float:
    return round(rate / peak, 4) if peak > 0 else math.nan


@torch.no_grad()
def bench_density(model_cfg: dict, height: int, width: int, num_points: int, device: torch.device,
                  repeats: int, flops: list[int] | None = None) -> float:
    """Seconds for the densities of ``num_points`` points from one already encoded image (eval mode); with a list
    ``flops``, one more query's counted FLOPs are appended to it."""
    model = build_model(model_cfg).to(device).eval()
    batch = synthetic_batch(1, height, width, device)
    encoded: EncodedViews = model.encode(batch["images"], batch["intrinsics"], batch["cam_to_world"], [0])
    points = (torch.rand(1, num_points, 3, generator=torch.Generator().manual_seed(1)) * torch.tensor([20, 4, 60])
              - torch.tensor([10, 2, -3])).to(device)

    fn = model.density_fn(encoded)
    query_density(fn, points[:, :1000], 100_000)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        query_density(fn, points, 100_000)
    _sync(device)
    seconds = (time.perf_counter() - start) / repeats
    if flops is not None:
        flops.append(counted_flops(lambda: query_density(fn, points, 100_000)))
    return seconds


def bench_view_sampling(h: int, w: int, num_views: int, num_points: int, device: torch.device,
                        repeats: int = 3) -> tuple[float, float]:
    """Seconds for the tokens of ``num_points`` points in ``num_views`` encoded views: one batched projection and
    ``grid_sample`` over all views (what the model does) against a Python loop over the views."""
    from bts.fields import EncodedViews, PositionalEncoding  # noqa: PLC0415
    from bts.fields.tokens import view_tokens  # noqa: PLC0415

    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, num_views, 64, h, w, generator=g).to(device)
    intr = torch.tensor([[1.0, 0, 0], [0, 3.3, 0], [0, 0, 1]]).expand(1, num_views, 3, 3).to(device)
    c2w = torch.eye(4).repeat(1, num_views, 1, 1)
    c2w[0, :, 0, 3] = torch.linspace(0, 0.6, num_views)
    encoded = EncodedViews.create(features, intr, c2w.to(device))
    points = (torch.rand(1, num_points, 3, generator=g) * torch.tensor([8.0, 2.0, 40.0]) + torch.tensor(
        [-4.0, -1.0, 3.0])).to(device)
    encoding = PositionalEncoding(3, 6).to(device)

    def batched():
        return view_tokens(points, encoded, encoding, 3.0, 80.0)

    def looped():
        parts = [view_tokens(points, encoded.select([v]), encoding, 3.0, 80.0) for v in range(num_views)]
        return torch.cat([p.tokens for p in parts], dim=1)

    times = []
    for fn in (batched, looped):
        with torch.no_grad():
            fn()
            _sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            _sync(device)
        times.append((time.perf_counter() - start) / repeats)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="+", default=["192x640", "96x320"])
    p.add_argument("--batch-size", type=int, default=None, help="default: 1 on CPU, 16 on GPU")
    p.add_argument("--depth", type=int, default=50, help="ResNet depth of the encoder")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", nargs="+", default=["none"], help="none, bf16, fp16 (CUDA): the encoder's precision")
    p.add_argument("--models", nargs="+", default=["bts", "mvbts", "kdbts"], help="none: only the micro-benchmarks")
    p.add_argument("--rays", type=int, default=None,
                   help="rays per batch element (default: the paper's, 4096 for BTS and 2048 for MVBTS / KDBTS)")
    p.add_argument("--samples", type=int, default=64, help="samples per ray")
    p.add_argument("--channels-last", nargs="+", default=["false"], choices=["false", "true"],
                   help="the encoder's memory format(s) to measure (trainer.channels_last)")
    p.add_argument("--flush-denormal", default="true", choices=["false", "true"],
                   help="subnormal floats flushed to zero, as train.py does (trainer.flush_denormal; per process)")
    p.add_argument("--cpu-memory", default="keep", choices=CPU_MEMORY_MODES,
                   help="where large CPU tensors get their memory, as train.py does (trainer.cpu_memory; per process)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the N costliest operators of one more training step (torch.profiler, self CPU "
                   "time): where the step's time goes")
    p.add_argument("--profile-shapes", action="store_true",
                   help="with --profile, one entry per operator and input shapes (which call of an operator costs)")
    a = p.parse_args(argv)
    memory = set_cpu_memory(a.cpu_memory)  # before the first large allocation (bts/numerics.py)
    flushed = flush_subnormals(a.flush_denormal == "true")  # before any tensor operation (bts/numerics.py)
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    renderer = RendererConfig(num_samples=a.samples)
    machine = (torch.cuda.get_device_name() if device.type == "cuda"
               else f"{cpu_model()}, {os.cpu_count()} cores, {a.threads} threads, torch {torch.__version__}, "
                    f"subnormals {'flushed' if a.flush_denormal == 'true' else 'kept'}"
                    f"{'' if flushed else ' (not on every thread)'}"
                    f", cpu_memory {a.cpu_memory}{'' if memory else ' (not in effect)'}")
    peaks = machine_peaks(device)
    print(json.dumps({"what": "machine_peaks", **{k: round(v, 1) for k, v in peaks.items()}, "machine": machine}),
          flush=True)
    for kind in [m for m in a.models if m != "none"]:
        # Paper configurations: BTS batch 16 with 4096 rays, MVBTS / KDBTS batch 8 with 2048 rays (3 encoded views).
        batch_size = a.batch_size or ((16 if kind == "bts" else 8) if device.type == "cuda" else 1)
        objective = ObjectiveConfig(rays_per_element=a.rays or (4096 if kind == "bts" else 2048))
        for size in a.sizes:
            h, w = (int(x) for x in size.split("x"))
            batch = synthetic_batch(batch_size, h, w, device)
            for amp, layout in itertools.product(a.amp, a.channels_last):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                flops: list[int] = []
                faults: list[float] = []
                ops: list[dict] | None = [] if a.profile > 0 else None
                times = bench_train_step(model_config(kind, a.depth), batch, objective, renderer, device, a.steps,
                                         a.warmup, amp, layout == "true", flops=flops, profile=ops,
                                         profile_top=a.profile, faults=faults,
                                         profile_shapes=a.profile_shapes)
                sec = statistics.median(times)
                rays = batch_size * objective.rays_per_element
                print(json.dumps({"what": f"{kind}_train_step", "size": size, "batch_size": batch_size, "amp": amp,
                                  "channels_last": layout == "true", "resnet": a.depth,
                                  "rays_per_element": objective.rays_per_element, "samples": a.samples,
                                  "seconds_per_step": round(sec, 3),
                                  "spread_s": [round(min(times), 3), round(max(times), 3)],
                                  "rays_per_s": round(rays / sec), "peak_memory_mb": round(_peak_memory_mb(device)),
                                  "page_faults_per_step": round(faults[0]) if faults else None,
                                  "gflop_per_step": round(flops[0] / 1e9, 2),
                                  "share_of_matmul_peak": share(flops[0] / sec / 1e9, peaks["matmul_gflops"]),
                                  "machine": machine}), flush=True)
                if ops is not None:
                    print(json.dumps({"what": f"{kind}_train_step_profile", "size": size, "amp": amp,
                                      "channels_last": layout == "true", "top_ops": ops, "machine": machine}),
                          flush=True)
    h, w = (int(x) for x in a.sizes[0].split("x"))
    density_flops: list[int] = []
    sec = bench_density(model_config("bts", a.depth), h, w, 1_000_000, device, repeats=2, flops=density_flops)
    traffic = sampling_bytes(1_000_000, 1, build_model(model_config("bts", a.depth)).encoder.feature_dim)
    print(json.dumps({"what": "bts_density_1M_points", "size": a.sizes[0], "seconds": round(sec, 3),
                      "gflop": round(density_flops[0] / 1e9, 2),
                      "share_of_matmul_peak": share(density_flops[0] / sec / 1e9, peaks["matmul_gflops"]),
                      "sampling_gb": round(traffic / 1e9, 2),
                      "share_of_copy_bandwidth": share(traffic / sec / 1e9, peaks["copy_gbps"]),
                      "machine": machine}), flush=True)
    batched, looped = bench_view_sampling(h, w, 3, 200_000, device)
    print(json.dumps({"what": "view_tokens_3_views_200k_points", "size": a.sizes[0], "batched_s": round(batched, 4),
                      "loop_over_views_s": round(looped, 4), "machine": machine}), flush=True)


if __name__ == "__main__":
    main()
