"""Train a pcgen head: ``python train.py model=diffusion encoder=dgcnn data=forest trainer.max_steps=2000``.

Thin Hydra entry: compose the packaged ``pcgen/conf/config.yaml`` plus command-line overrides, then hand the config
to ``pcgen.train.run.train``. ``-m`` sweeps (``python train.py -m model=vae,diffusion``) use
Hydra's basic launcher; ``resume=PATH`` continues a run. See docs/training.md.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from pcgen.errors import PcgenError
from pcgen.train.run import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="pkg://pcgen.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from pcgen.train.run import train

    try:
        result = train(cfg, root=HydraConfig.get().runtime.output_dir)
    except PcgenError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    # The returned value lets sweepers (e.g. Optuna) optimize the final training loss.
    loss = result.get("train/loss")
    return None if loss is None else float(loss)


if __name__ == "__main__":
    main()
