"""Forward+backward time and peak memory per batch for each encoder (default configs from pcgen/conf/encoder).

Each encoder runs in its own subprocess so its peak resident memory is its own. Times are the
median of a few training steps after one warm-up step, as wall time and as CPU time of the
process (all threads; steadier than wall time on a shared machine); ratios are against PointNet measured in
the same run (the cheapest encoder), so they stay comparable across machines.

    python bench/encoders.py                      # B=8, N=2048, all three
    python bench/encoders.py --batch 32 --only dgcnn --repeats 0   # the DGCNN memory check (one step)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

NAMES = ("pointnet", "pointnet2", "dgcnn")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure(name: str, batch: int, num_points: int, repeats: int, device: str) -> dict:
    """Build ``name`` from its config and time training steps; runs inside the child process."""
    import torch
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    with initialize_config_module("pcgen.conf", version_base="1.3"):
        cfg = compose(overrides=[f"+encoder={name}"])
    torch.manual_seed(0)
    model = instantiate(cfg.encoder).to(device).train()
    x = (torch.rand(batch, num_points, 3, device=device) * 2 - 1)
    params = sum(p.numel() for p in model.parameters())

    def step():
        out = model(x)
        (out.global_feature.square().mean() + out.point_features.square().mean()).backward()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    base = rss_mib()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up; also sets the memory peak
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    nan = float("nan")
    return {"name": name, "params": params, "seconds": statistics.median(times) if times else nan,
            "cpu_seconds": statistics.median(cpu) if cpu else nan, "peak_mib": peak, "base_mib": base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=NAMES, action="append")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--child", choices=NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.points, args.repeats, args.device)))
        return 0

    import torch

    print(f"encoders forward+backward, B={args.batch} N={args.points}, device={args.device}, "
          f"torch threads={torch.get_num_threads()}, "
          + (f"median of {args.repeats} after 1 warm-up" if args.repeats else "memory only (1 step)"))
    rows = []
    for name in args.only or NAMES:
        cmd = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--points",
               str(args.points), "--repeats", str(args.repeats), "--device", args.device]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{name}: failed\n{res.stderr[-2000:]}")
            return 1
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    ref = next((r for r in rows if r["name"] == "pointnet"), None)
    mem_label = "peak GPU MiB" if args.device == "cuda" else "peak RSS MiB"
    for r in rows:
        ratio = f"{r['cpu_seconds'] / ref['cpu_seconds']:5.1f}x pointnet" if ref and args.repeats else "-"
        print(f"{r['name']:10s} params={r['params']:>9,d}  wall {r['seconds']:7.3f} s/batch  "
              f"cpu {r['cpu_seconds']:7.3f} s/batch ({ratio})  "
              f"{mem_label}={r['peak_mib']:8.0f} (process before step: {r['base_mib']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
