"""Train a pcgen head from a checkout: ``python train.py model=diffusion encoder=dgcnn data=forest``.

Thin entry, the same Hydra app as ``pcgen train`` (``pcgen.train.train_cli``): it composes the
packaged ``pcgen/conf/config.yaml`` plus command-line overrides and hands the config to
``pcgen.train.run.train``. ``-m`` sweeps (``python train.py -m model=vae,diffusion``) use Hydra's
basic launcher; ``resume=PATH`` continues a run. See docs/training.md.
"""

from pcgen.train.train_cli import cli

if __name__ == "__main__":
    cli()
