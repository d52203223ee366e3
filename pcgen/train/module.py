"""LightningModules that train any pcgen head: one optimizer (VAE, diffusion, flow matching) or two (GAN).

The modules know nothing about a particular head beyond its contract: ``head.loss(batch)``
returns named unweighted terms, a ``pcgen.losses.WeightedLoss`` turns them into the total, and
``head.sample(...)`` generates. Every term is logged on its own (``train/<term>``), the weighted
total as ``train/loss``. EMA weights and the global RNG state travel with each checkpoint so that
``trainer.fit(ckpt_path=...)`` resumes bit-exactly.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import lightning as L
import torch
from torch import nn

from pcgen.errors import ConfigError
from pcgen.train.ema import make_ema, update_ema
from pcgen.train.rng import capture_rng_state, restore_rng_state

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]
LossFn = Callable[..., Any]  # pcgen.losses.WeightedLoss: (terms, step=) -> LossOutput


def _batch_size(batch: Mapping[str, torch.Tensor]) -> int:
    return int(batch["points"].shape[0])


class _HeadModuleBase(L.LightningModule):
    """What both families share: the head, its EMA, metadata, RNG state and batch counter."""

    def __init__(self, head: nn.Module, ema_decay: float | None = 0.999,
                 meta: Mapping[str, Any] | None = None):
        super().__init__()
        self.head = head
        self.ema = make_ema(head, ema_decay) if ema_decay else None
        # `meta` (head kind, the head's config, data normalization) is what load_head needs
        # to rebuild the head without the Hydra run that made it.
        self.save_hyperparameters(dict(meta or {}))
        # Batches seen by training_step: the data module starts its sampler here on resume.
        self.batches_seen = 0
        self._rng_to_restore: dict | None = None

    # -- sampling -----------------------------------------------------------------------
    def sampling_head(self) -> nn.Module:
        """The weights to sample from: the EMA average when kept, else the live head."""
        return self.ema.module if self.ema is not None else self.head

    # -- EMA ------------------------------------------------------------------------------
    def _update_ema(self) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.head)

    # -- checkpoint extras -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["pcgen"] = {"batches_seen": self.batches_seen, "rng": capture_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("pcgen", {})
        self.batches_seen = int(extra.get("batches_seen", 0))
        # Restored at train start, after Lightning's own set-up has drawn whatever it draws.
        self._rng_to_restore = extra.get("rng")

    def on_train_start(self) -> None:
        if self._rng_to_restore is not None:
            restore_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def _log_terms(self, prefix: str, terms: Mapping[str, torch.Tensor], batch_size: int) -> None:
        self.log_dict({f"{prefix}/{name}": value.detach().float() for name, value in terms.items()},
                      batch_size=batch_size, sync_dist=False)

    def _log_weights(self, weights: Mapping[str, float]) -> None:
        # Effective weights show schedules (KL warm-up, ...) next to the terms they scale.
        self.log_dict({f"weight/{name}": float(w) for name, w in weights.items()})


class HeadModule(_HeadModuleBase):
    """Train a single-optimizer head (VAE, diffusion, flow matching) with automatic optimization.

    Args:
        head: a pcgen head exposing ``loss(batch) -> {name: scalar}`` and ``sample(...)``.
        loss: a ``WeightedLoss`` mapping the head's terms (and the step, for schedules) to a total.
        optimizer: ``_partial_`` optimizer factory, called with the head's parameters.
        scheduler: optional ``_partial_`` LR-scheduler factory, called with the optimizer; stepped
            every optimizer step.
        ema_decay: EMA decay, or None / 0 to keep no average.
        meta: JSON-able metadata saved as hyper-parameters (``kind``, ``head`` config, ...).
    """

    def __init__(self, head: nn.Module, loss: LossFn, optimizer: OptimizerFactory,
                 scheduler: SchedulerFactory | None = None, ema_decay: float | None = 0.999,
                 meta: Mapping[str, Any] | None = None):
        super().__init__(head, ema_decay, meta)
        self.loss = loss
        self._optimizer_factory = optimizer
        self._scheduler_factory = scheduler

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.batches_seen += 1
        out = self.loss(self.head.loss(batch), step=self.global_step)
        n = _batch_size(batch)
        self._log_terms("train", out.terms, n)
        self._log_weights(out.weights)
        self.log("train/loss", out.total.detach().float(), prog_bar=True, batch_size=n)
        return out.total

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        out = self.loss(self.sampling_head().loss(batch), step=self.global_step)
        n = _batch_size(batch)
        self._log_terms("val", out.terms, n)
        self.log("val/loss", out.total.float(), prog_bar=True, batch_size=n, sync_dist=True)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # Here rather than in on_train_batch_end: checkpoint callbacks run before the module's
        # batch-end hook, and a checkpoint must hold the EMA of the step it was taken at.
        self._update_ema()

    def configure_optimizers(self) -> Any:
        # Frozen parts (an l-GAN's autoencoder, a fixed backbone) stay out of the optimizer.
        opt = self._optimizer_factory([p for p in self.head.parameters() if p.requires_grad])
        if self._scheduler_factory is None:
            return opt
        sched = self._scheduler_factory(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class GANModule(_HeadModuleBase):
    """Train a ``GANHead`` with manual optimization: discriminator step(s), then a generator step.

    Manual optimization because the two players need separate optimizers, an update ratio
    (WGAN-GP's n_critic) and their own clipping, which automatic optimization cannot express.
    Note that Lightning counts every ``optimizer.step()`` in ``trainer.global_step``, so one
    batch with both updates advances it by two.

    Args:
        head: a ``GANHead``: ``discriminator_loss(batch)``, ``generator_loss(batch)`` (each
            ``{name: scalar}``), ``generator_parameters()`` and ``discriminator_parameters()``.
        loss: ``WeightedLoss`` for the generator's terms.
        loss_d: ``WeightedLoss`` for the discriminator's terms (None: ``loss``, which then
            needs ``require_all=False``).
        optimizer: ``_partial_`` optimizer factory for the generator.
        optimizer_d: ``_partial_`` optimizer factory for the discriminator (default: ``optimizer``).
        scheduler: optional ``_partial_`` scheduler factory applied to both optimizers.
        generator_every: update the generator once every this many batches (n_critic).
        gradient_clip_val: clip each player's gradients to this value (None or 0: no clipping).
        gradient_clip_algorithm: ``"norm"`` (the total gradient norm) or ``"value"`` (each
            element), as Lightning's Trainer argument of that name.
        ema_decay, meta: as in :class:`HeadModule`.
    """

    def __init__(self, head: nn.Module, loss: LossFn, loss_d: LossFn | None,
                 optimizer: OptimizerFactory, optimizer_d: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None, generator_every: int = 1,
                 gradient_clip_val: float | None = None, gradient_clip_algorithm: str = "norm",
                 ema_decay: float | None = 0.999, meta: Mapping[str, Any] | None = None):
        super().__init__(head, ema_decay, meta)
        if isinstance(generator_every, bool) or not isinstance(generator_every, int) or generator_every < 1:
            raise ConfigError(f"generator_every must be an integer >= 1, got {generator_every!r}")
        if str(gradient_clip_algorithm).lower() not in ("norm", "value"):
            raise ConfigError(f"gradient_clip_algorithm must be 'norm' or 'value', got {gradient_clip_algorithm!r}")
        self.automatic_optimization = False
        self.loss = loss
        self.loss_d = loss_d if loss_d is not None else loss
        self._optimizer_factory = optimizer
        self._optimizer_d_factory = optimizer_d or optimizer
        self._scheduler_factory = scheduler
        self.generator_every = generator_every
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = str(gradient_clip_algorithm).lower()

    def _clip(self, opt: Any) -> None:
        if self.gradient_clip_val:
            self.clip_gradients(opt, gradient_clip_val=self.gradient_clip_val,
                                gradient_clip_algorithm=self.gradient_clip_algorithm)

    def _player_step(self, opt: Any, total: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(total)
        self._clip(opt)
        opt.step()

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self.batches_seen += 1
        opt_g, opt_d = self.optimizers()
        n = _batch_size(batch)
        d_out = self.loss_d(self.head.discriminator_loss(batch), step=self.global_step)
        self._player_step(opt_d, d_out.total)
        self._log_terms("train_d", d_out.terms, n)
        self.log("train_d/loss", d_out.total.detach().float(), prog_bar=True, batch_size=n)

        if self.batches_seen % self.generator_every == 0:
            # The critic needs no gradient from the generator's objective: freezing it skips
            # that backward and keeps its .grad clean (flags restored, not forced to True).
            disc = list(self.head.discriminator_parameters())
            flags = [p.requires_grad for p in disc]
            for p in disc:
                p.requires_grad_(False)
            try:
                g_out = self.loss(self.head.generator_loss(batch), step=self.global_step)
                self._player_step(opt_g, g_out.total)
            finally:
                for p, flag in zip(disc, flags):
                    p.requires_grad_(flag)
            self._log_terms("train_g", g_out.terms, n)
            self._log_weights(g_out.weights)
            self.log("train/loss", g_out.total.detach().float(), prog_bar=True, batch_size=n)
            self._update_ema()

        for sched in self._schedulers():
            sched.step()

    def _schedulers(self) -> list[Any]:
        scheds = self.lr_schedulers()
        if scheds is None:
            return []
        return list(scheds) if isinstance(scheds, (list, tuple)) else [scheds]

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        out = self.loss(self.sampling_head().generator_loss(batch), step=self.global_step)
        self.log("val/loss", out.total.float(), prog_bar=True, batch_size=_batch_size(batch),
                 sync_dist=True)

    def configure_optimizers(self) -> Any:
        opt_g = self._optimizer_factory(list(self.head.generator_parameters()))
        opt_d = self._optimizer_d_factory(list(self.head.discriminator_parameters()))
        if self._scheduler_factory is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [self._scheduler_factory(opt_g), self._scheduler_factory(opt_d)]
