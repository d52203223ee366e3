"""Image-track speed: LDM training iterations/s and DDIM-50 sampling time, 64×64 and 256×256.

Models: the CPU-sized ``tiny`` U-Net and the LDM paper's 192-channel U-Net (``ldm128`` layout) at
64×64; the 256×256 presets with 192 (original) and 160 channels. One training iteration = encode
with the frozen first stage + U-Net forward/backward + AdamW step (CosPlace contexts precomputed, as
in ``pcgen image train``). Sampling = 50 DDIM denoiser steps + decode; with ``--quick-steps K`` only K
denoiser steps are timed and the 50-step time is extrapolated (marked ``~``). Wall and CPU
(process) seconds are both printed: on a shared machine CPU time is the steadier figure. Ratios are
against the peer measured in the same run.

    python bench/image.py [--device cpu|cuda] [--threads N] [--batch 1] [--quick-steps 5] [--only 64]
"""

from __future__ import annotations

import argparse
import time

import torch

from pcgen.image.config import build_ldm, load_preset

CASES = [
    ("64", "tiny", ["data.image_size=64"]),
    ("64", "ldm128", ["data.image_size=64"]),
    ("256", "ldm256_c160", []),
    ("256", "ldm256_c192", []),
]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    _sync(device)
    w, c = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - w, time.process_time() - c


def bench_case(preset, overrides, device, batch, train_iters, quick_steps):
    torch.manual_seed(0)
    cfg = load_preset(preset, overrides)
    model = build_ldm(cfg).to(device)
    size = cfg.data.image_size
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    ctx = model.embed(x)
    params = sum(p.numel() for p in model.unet.parameters()) / 1e6
    model.train()
    model.set_scale_factor(x)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-5)

    def step():
        loss = model.loss({"image": x, "context": ctx})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (allocator, kernels)
    wall, cpu = timed(lambda: [step() for _ in range(train_iters)], device)
    model.eval()
    steps = quick_steps or 50
    s_wall, s_cpu = timed(lambda: model.sample(context=ctx, steps=steps, sampler="ddim"), device)
    d_wall, d_cpu = timed(lambda: model.decode(torch.randn(batch, 4, size // 8, size // 8, device=device)), device)
    if steps != 50:  # extrapolate the denoiser part; decode counted once
        s_wall = d_wall + (s_wall - d_wall) * 50 / steps
        s_cpu = d_cpu + (s_cpu - d_cpu) * 50 / steps
    return dict(params=params, it_s=train_iters / wall, cpu_s_per_it=cpu / train_iters,
                ddim_wall=s_wall, ddim_cpu=s_cpu, approx=steps != 50)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--train-iters", type=int, default=2)
    ap.add_argument("--quick-steps", type=int, default=5, help="0 = time all 50 DDIM steps")
    ap.add_argument("--only", choices=("64", "256"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.train_iters} timed training iterations after 1 warm-up")
    rows = {}
    for res, preset, overrides in CASES:
        if args.only and res != args.only:
            continue
        r = bench_case(preset, overrides, device, args.batch, args.train_iters, args.quick_steps)
        rows[(res, preset)] = r
        mark = "~" if r["approx"] else ""
        print(f"{res:>3}x{res:<3} {preset:<12} unet {r['params']:6.1f}M  train {r['it_s']:7.3f} it/s "
              f"({r['cpu_s_per_it']:7.2f} CPU-s/it)  DDIM-50 {mark}{r['ddim_wall']:7.1f} s wall "
              f"{mark}{r['ddim_cpu']:7.1f} CPU-s", flush=True)
    pairs = [(("256", "ldm256_c160"), ("256", "ldm256_c192"), "c160 vs c192 at 256"),
             (("64", "ldm128"), ("256", "ldm256_c192"), "ldm128 layout at 64 px vs ldm256_c192 at 256 px"),
             (("64", "tiny"), ("64", "ldm128"), "tiny vs 192-ch at 64 px")]
    for a, b, label in pairs:
        if a in rows and b in rows:
            ra, rb = rows[a], rows[b]
            print(f"ratio {label}: training CPU-s/it {ra['cpu_s_per_it'] / rb['cpu_s_per_it']:.3f}, "
                  f"DDIM-50 CPU-s {ra['ddim_cpu'] / rb['ddim_cpu']:.3f}")


if __name__ == "__main__":
    main()
