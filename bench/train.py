"""Training and sampling speed of every head, and peak training memory per head x encoder (CPU).

    python bench/train.py speed                      # training it/s per head (N=2048)
    python bench/train.py sampling --diffusion D.ckpt --flow F.ckpt
                                                     # s/cloud: DDPM-1000, DDIM-50, FM-20 + 1-NNA-CD
    python bench/train.py memory                     # peak RSS, B=32, N=2048, head x encoder

Ratios are against a peer measured in the same run (DDPM-1000 for the samplers, the VAE for
training speed), so the numbers compare across machines. Data: the real forest tiles
(``data=forest``), tiled once into the cache like ``train.py`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ["vae", "gan", "diffusion", "flow_matching"]
ENCODERS = ["pointnet", "pointnet2", "dgcnn"]


class _StepTimer:
    """Lightning callback timing batches after a warm-up (first batches pay allocation costs)."""

    def __new__(cls, warmup: int):
        import lightning as L

        class StepTimer(L.Callback):
            def __init__(self):
                self.times: list[float] = []

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                self.times.append(time.perf_counter())

            def rate(self) -> float:
                t = self.times[warmup:]
                return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else float("nan")

        return StepTimer()


def _fit(overrides: list[str], root: Path, extra_callbacks=()):
    from pcgen.train.run import build, compose_config

    cfg = compose_config(["callbacks=none", "logger=none", "trainer=cpu",
                          "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                          *overrides], root=root)
    module, datamodule, trainer = build(cfg, root)
    trainer.callbacks.extend(extra_callbacks)
    trainer.fit(module, datamodule=datamodule)
    return module, datamodule, trainer


def bench_speed(args) -> None:
    rows = []
    for model in args.models:
        timer = _StepTimer(args.warmup)
        steps = args.warmup + args.steps + 1
        # GAN: two optimizer steps per batch.
        max_steps = steps * (2 if model == "gan" else 1)
        _fit([f"model={model}", f"encoder={args.encoder}", f"data={args.data}",
              f"data.batch_size={args.batch}", f"data.dataset.num_points={args.num_points}",
              f"trainer.max_steps={max_steps}"], Path(args.out) / f"speed_{model}", [timer])
        rows.append((model, timer.rate()))
    base = dict(rows).get("vae", rows[0][1])
    print(f"# training speed: encoder={args.encoder} B={args.batch} N={args.num_points} "
          f"data={args.data} threads={torch.get_num_threads()}")
    for model, rate in rows:
        print(f"train {model:14s} {rate:7.3f} it/s  {rate * args.batch * args.num_points / 1e3:8.1f} "
              f"kpts/s  x{rate / base:5.2f} vs vae")


def _reference_clouds(data: str, num_points: int, count: int) -> torch.Tensor:
    from pcgen.train.run import build_datamodule, compose_config

    cfg = compose_config([f"data={data}", f"data.dataset.num_points={num_points}"], root=".")
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    tiles = dm.tiles
    idx = torch.randperm(len(tiles), generator=torch.Generator().manual_seed(0))[:count]
    return torch.stack([torch.as_tensor(tiles[int(i)]["points"]) for i in idx]).float()


def _nna_cd(gen: torch.Tensor, ref: torch.Tensor) -> float:
    from pcgen import metrics

    return float(metrics.evaluate_sets(gen, ref, metrics=("chamfer",))["chamfer"]["1nna"])


def _time_net_evals(head, num_points: int, batch: int, evals: int) -> float:
    """Seconds per network evaluation of an iterative head at (batch, num_points)."""
    x = torch.randn(batch, num_points, 3)
    t = torch.full((batch,), 500.0)
    with torch.no_grad():
        head.net(x, t)  # warm-up
        t0 = time.perf_counter()
        for _ in range(evals):
            head.net(x, t)
    return (time.perf_counter() - t0) / evals


def bench_sampling(args) -> None:
    from pcgen.train.checkpoint import load_head

    ref = _reference_clouds(args.data, args.num_points, args.num_clouds)
    # (name, checkpoint, sample kwargs, network evaluations per cloud, run it for 1-NNA?)
    plan = []
    if args.diffusion:
        plan += [("DDPM-1000", args.diffusion, dict(sampler="ddpm", steps=None), 1000, args.full_ddpm),
                 ("DDIM-50", args.diffusion, dict(sampler="ddim", steps=50, eta=0.0), 50, True)]
    if args.flow:
        plan += [("FM-heun-20", args.flow, dict(solver="heun", steps=20), 40, True),
                 ("FM-euler-20", args.flow, dict(solver="euler", steps=20), 20, True)]
    heads, per_eval, rows = {}, {}, []
    for name, ckpt, kw, evals, run in plan:
        if ckpt not in heads:
            heads[ckpt] = load_head(ckpt)[0]
            per_eval[ckpt] = _time_net_evals(heads[ckpt], args.num_points, args.sample_batch,
                                             args.timed_evals) / args.sample_batch
        head = heads[ckpt]
        nna, measured = float("nan"), None
        if run:
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            clouds = [head.sample(min(args.sample_batch, len(ref) - s), args.num_points,
                                  generator=gen, **kw) for s in range(0, len(ref), args.sample_batch)]
            measured = (time.perf_counter() - t0) / len(ref)
            nna = _nna_cd(torch.cat(clouds), ref)
        rows.append((name, measured, per_eval[ckpt] * evals, nna))
    base = rows[0][2]
    print(f"# sampling: N={args.num_points}, {len(ref)} clouds vs {len(ref)} real {args.data} tiles, "
          f"batch {args.sample_batch}, threads={torch.get_num_threads()}; 1-NNA-CD: 50% ideal, 100% worst")
    print("# 'net' = network evaluations x measured s/eval per cloud (the samplers share the network,"
          " so this is the sampler's cost); 'run' = a full timed sampling run")
    for name, measured, est, nna in rows:
        run = f"run {measured:8.3f} s/cloud" if measured is not None else "run      (skipped)"
        print(f"sample {name:12s} net {est:8.3f} s/cloud  {run}  x{base / est:6.1f} faster than "
              f"{rows[0][0]}  1-NNA-CD {100 * nna:5.1f}%")


def _memory_child(model: str, encoder: str, batch: int, num_points: int, data: str, out: str) -> None:
    _fit([f"model={model}", f"encoder={encoder}", f"data={data}", f"data.batch_size={batch}",
          f"data.dataset.num_points={num_points}", f"trainer.max_steps={2 if model == 'gan' else 1}"],
         Path(out) / f"mem_{model}_{encoder}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_gib": peak_kib / 2 ** 20}))


def bench_memory(args) -> None:
    print(f"# training peak RSS: B={args.batch} N={args.num_points} data={args.data}, one optimizer "
          f"step per player, fresh process each (limit {args.limit_gib} GiB)")
    for model in args.models:
        for encoder in args.encoders:
            cmd = [sys.executable, __file__, "_memory", "--models", model, "--encoders", encoder,
                   "--batch", str(args.batch), "--num-points", str(args.num_points),
                   "--data", args.data, "--out", args.out]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            dt = time.perf_counter() - t0
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
                print(f"memory {model:14s} {encoder:10s}  FAILED ({tail})")
                continue
            peak = json.loads(lines[-1])["peak_gib"]
            verdict = "fits" if peak < args.limit_gib else "DOES NOT FIT"
            print(f"memory {model:14s} {encoder:10s} {peak:6.2f} GiB  {verdict}  ({dt:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["speed", "sampling", "memory", "_memory"])
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--encoders", nargs="+", default=ENCODERS)
    p.add_argument("--encoder", default="pointnet", help="speed mode: the shared encoder")
    p.add_argument("--data", default="forest")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--steps", type=int, default=5, help="timed batches (speed)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--diffusion", help="diffusion checkpoint (sampling)")
    p.add_argument("--flow", help="flow-matching checkpoint (sampling)")
    p.add_argument("--num-clouds", type=int, default=32)
    p.add_argument("--sample-batch", type=int, default=16)
    p.add_argument("--timed-evals", type=int, default=5, help="network evaluations timed per head")
    p.add_argument("--full-ddpm", action="store_true",
                   help="also run DDPM-1000 end to end for its 1-NNA (slow on CPU)")
    p.add_argument("--limit-gib", type=float, default=24.0)
    p.add_argument("--out", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "pcgen_bench"))
    args = p.parse_args()
    if args.mode == "speed":
        args.batch = args.batch or 16
        bench_speed(args)
    elif args.mode == "sampling":
        bench_sampling(args)
    elif args.mode == "memory":
        args.batch = args.batch or 32
        bench_memory(args)
    else:
        _memory_child(args.models[0], args.encoders[0], args.batch, args.num_points, args.data, args.out)


if __name__ == "__main__":
    main()
