"""What does a CosPlace embedding keep? Generate from it, then ask CosPlace to find the source.

For every source image: embed it with CosPlace, generate ``K`` images from that embedding with the
LDM, and write a side-by-side sheet (source | generations). The generations' own embeddings then
query the database of source embeddings: recall@1/5 says how often the right place comes back,
cosine similarity how close each generation lands to its source. As references the report gives
chance level (k / N) and the recall of the sources themselves shrunk to the LDM's resolution (what a
perfect generator at that resolution could reach), plus the mean-colour difference per cell of a
3×3 grid (where in the frame the generations drift).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pcgen.atomic import atomic_dir
from pcgen.errors import ConfigError
from pcgen.image.cosplace import CosPlace
from pcgen.image.data import image_names, load_images, resize_center_crop, to_unit_tensor
from pcgen.image.ldm import LatentDiffusion
from pcgen.image.render import grid, save_png

__all__ = ["explain", "recall_at_k", "region_colour_difference", "ExplainReport"]


def recall_at_k(queries: Tensor, database: Tensor, truth: Tensor, ks=(1, 5)) -> dict[int, float]:
    """Fraction of queries whose true database index is among the ``k`` most cosine-similar.

    Args:
        queries: ``(Q, D)`` unit vectors; database: ``(N, D)`` unit vectors; truth: ``(Q,)`` indices.
    """
    sims = queries @ database.T
    order = sims.argsort(dim=1, descending=True)
    rank = (order == truth[:, None]).float().argmax(dim=1)
    return {k: float((rank < k).float().mean()) for k in ks}


def region_colour_difference(source: Tensor, generated: Tensor, cells: int = 3) -> np.ndarray:
    """Mean absolute difference of per-cell mean RGB, in 0–255 units, on a ``cells × cells`` grid.

    Args:
        source: ``(3, H, W)`` in [-1, 1]; generated: ``(K, 3, H, W)`` in [-1, 1].
    Returns:
        ``(cells, cells)`` differences averaged over the ``K`` generations and the channels.
    """
    pool = torch.nn.functional.adaptive_avg_pool2d
    s = pool(source[None].float(), cells)
    g = pool(generated.float(), cells)
    return ((g - s).abs().mean(dim=(0, 1)) * 127.5).numpy()


@dataclass
class ExplainReport:
    checkpoint: str
    images: str
    num_sources: int
    samples_per_source: int
    sampler: str
    steps: int
    eta: float
    guidance_scale: float
    seed: int
    recall: dict = field(default_factory=dict)
    recall_chance: dict = field(default_factory=dict)
    recall_sources_at_model_resolution: dict = field(default_factory=dict)
    cosine_to_source_mean: float = 0.0
    cosine_to_other_sources_mean: float = 0.0
    region_colour_difference: list = field(default_factory=list)
    per_source: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def markdown(self) -> str:
        r = lambda d: " / ".join(f"{100 * d[k]:.1f}%" for k in sorted(d, key=int))
        lines = [
            "# CosPlace explainability report", "",
            f"- checkpoint: `{self.checkpoint}`", f"- images: `{self.images}` ({self.num_sources} sources,"
            f" {self.samples_per_source} generations each, {self.sampler.upper()}-{self.steps}, η={self.eta},"
            f" guidance {self.guidance_scale}, seed {self.seed})", "",
            "| measure | recall@1 / recall@5 |", "| --- | --- |",
            f"| generations → sources | {r(self.recall)} |",
            f"| chance (k / N) | {r(self.recall_chance)} |",
            f"| sources at model resolution → sources | {r(self.recall_sources_at_model_resolution)} |", "",
            f"Mean cosine similarity of a generation to its source: {self.cosine_to_source_mean:.3f}"
            f" (to the other sources: {self.cosine_to_other_sources_mean:.3f}).", "",
            "Mean-colour difference per region (0–255, 3×3 grid, top row first):", "",
        ]
        lines += ["| " + " | ".join(f"{v:.1f}" for v in row) + " |" for row in self.region_colour_difference]
        lines += ["", "| source | cosine mean | cosine min | cosine max | rank-1 hits | sheet |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for p in self.per_source:
            lines.append(f"| {p['source']} | {p['cosine_mean']:.3f} | {p['cosine_min']:.3f} | "
                         f"{p['cosine_max']:.3f} | {p['top1_hits']}/{self.samples_per_source} | "
                         f"[png]({p['sheet']}) |")
        if self.skipped:
            lines += ["", "Skipped unreadable files: " + ", ".join(self.skipped)]
        return "\n".join(lines) + "\n"


@torch.no_grad()
def explain(model: LatentDiffusion, images: str | os.PathLike, out: str | os.PathLike, samples: int = 4, *,
            sampler: str = "ddim", steps: int = 50, eta: float = 0.0, guidance_scale: float = 1.0,
            seed: int = 0, evaluator: CosPlace | None = None, checkpoint: str = "",
            batch: int = 16, overwrite: bool = False) -> ExplainReport:
    """Run the explainability pipeline; write ``sheets/*.png``, ``report.json``, ``report.md`` to ``out``.

    Args:
        model: a conditional LDM (its CosPlace gives the conditions).
        images: folder of source images (unreadable files are skipped with a warning).
        samples: generations per source ``K`` (1 to 1000).
        sampler, steps, eta, guidance_scale: as :meth:`LatentDiffusion.sample`.
        evaluator: CosPlace used to embed generations and sources for retrieval; defaults to the
            model's own (pass a published CosPlace for an independent judge).
        checkpoint: the model's checkpoint file, recorded in the report; ``out`` may not be it.
        overwrite: write into a non-empty ``out`` (replacing only files pcgen wrote there).
    Returns:
        The report (also written as JSON and Markdown). Output appears only when complete.

    Raises:
        OutputError: ``out`` is unsafe (:func:`pcgen.outputs.check_output`: an input, inside one,
            or non-empty without ``overwrite``).
        ConfigError: an unconditional model, or a setting out of range.
        InputError: no readable image, or two images of one name (``x.jpg`` and ``x.png``: their
            sheets would overwrite each other).
    """
    from pcgen.outputs import check_output
    from pcgen.options import check_range

    check_output(out, [images, checkpoint or None], folder=True, overwrite=overwrite,
                 overwrite_hint="overwrite=True")
    if not model.conditional:
        raise ConfigError("explain needs a CosPlace-conditioned LDM; this checkpoint is unconditional")
    check_range("samples", samples, 1, 1000, integer=True)
    model.check_sampling(sampler, steps, eta, guidance_scale)
    root = Path(images)
    bad: list[Path] = []
    loaded = load_images(root, skipped=bad)
    names = image_names([item.path for item in loaded], root)
    skipped = [str(p) for p in bad]
    evaluator = evaluator if evaluator is not None else model.cosplace
    model.eval()
    size = model.config["data"]["image_size"] if model.config else 8 * model.unet.config.sample_size
    pil = [it.image for it in loaded]
    contexts = torch.cat([model.embed(pil[i:i + batch]) for i in range(0, len(pil), batch)])  # (N,1,D)
    database = torch.cat([evaluator(pil[i:i + batch]) for i in range(0, len(pil), batch)])[:, 0].cpu()
    small = torch.stack([resize_center_crop(to_unit_tensor(im), size) for im in pil]) * 2 - 1
    small_emb = torch.cat([evaluator(small[i:i + batch]) for i in range(0, len(small), batch)])[:, 0].cpu()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    n = len(loaded)
    repeated = contexts.repeat_interleave(samples, dim=0)
    gens = torch.cat([model.sample(context=repeated[i:i + batch], sampler=sampler, steps=steps, eta=eta,
                                   guidance_scale=guidance_scale, generator=generator).cpu()
                      for i in range(0, len(repeated), batch)])
    gen_emb = torch.cat([evaluator(gens[i:i + batch]) for i in range(0, len(gens), batch)])[:, 0].cpu()
    truth = torch.arange(n).repeat_interleave(samples)
    cos = gen_emb @ database.T  # (N*K, N)
    own = cos[torch.arange(len(truth)), truth]
    others = (cos.sum() - own.sum()) / max(1, cos.numel() - own.numel())
    top1 = cos.argmax(dim=1) == truth
    report = ExplainReport(
        checkpoint=checkpoint, images=str(root), num_sources=n, samples_per_source=samples, sampler=sampler,
        steps=steps, eta=eta, guidance_scale=guidance_scale, seed=seed,
        recall={str(k): v for k, v in recall_at_k(gen_emb, database, truth).items()},
        recall_chance={str(k): min(1.0, k / n) for k in (1, 5)},
        recall_sources_at_model_resolution={str(k): v for k, v in
                                            recall_at_k(small_emb, database, torch.arange(n)).items()},
        cosine_to_source_mean=float(own.mean()), cosine_to_other_sources_mean=float(others),
        skipped=skipped)
    diffs = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for i, item in enumerate(loaded):
            g = gens[i * samples:(i + 1) * samples]
            name = names[i] + ".png"
            save_png(grid([[small[i], *g]]), tmp / "sheets" / name)
            diffs.append(region_colour_difference(small[i], g))
            c = own[i * samples:(i + 1) * samples]
            report.per_source.append({
                "source": str(item.path.relative_to(root) if item.path.is_relative_to(root) else item.path),
                "cosine_mean": float(c.mean()), "cosine_min": float(c.min()), "cosine_max": float(c.max()),
                "top1_hits": int(top1[i * samples:(i + 1) * samples].sum()), "sheet": f"sheets/{name}"})
        report.region_colour_difference = np.mean(diffs, axis=0).round(2).tolist()
        (tmp / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
        (tmp / "report.md").write_text(report.markdown())
    return report
