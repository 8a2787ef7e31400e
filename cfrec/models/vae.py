"""The VAE family of Tables 2 and 3 as one LightningModule: encoder, likelihood, prior and β schedule are parts.

Mult-VAE (Liang et al. 2018) is GaussianEncoder + Multinomial + StandardNormal + Anneal; Table 2's KL-free
rows swap in `Zero` (and `Logistic`), Table 3 swaps the prior (VampPrior), the encoder (IAF, SIVAE) or
adds the weight penalty (VAE+Reg, l2 = 0.01). Objective per batch (Eq. 5, negated, plus the penalty):

    loss = −mean_u log p(x_u | z_u) + β · mean_u KL(q(z_u | x_u) || p(z_u)) + l2 · Σ ||W||²

The parts arrive built (the encoder and the prior as constructors taking `n_items`, and the prior also the
encoder). This file holds the maths only and imports torch alone: building the parts from a config and
describing them in a checkpoint is `cfrec.config`'s job (`build_model`, `load_model`). A part may take part
in a run through two optional hooks (`PartHooks`), so the model names no particular part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn

from cfrec.data.batches import UserBatch
from cfrec.models.base import CFModule
from cfrec.models.encoders import Posterior, gaussian_log_prob, xavier_init
from cfrec.models.optim import fused_adam
from cfrec.models.schedules import Schedule

OUTPUT_BIAS_INITS = (None, "log_odds")  # how the decoder's output bias starts (None: Liang's N(0, 0.001²))
PART_NAMES = ("encoder", "prior", "likelihood", "beta")


class PartHooks(Protocol):
    """What any part may implement (each hook is optional; a part without it is skipped).

    - `diagnostics(fold_in) -> {name: value}`: figures about the part on the first validation batch, logged as
      `val/<name>` and kept in the epoch's history (SIVAE: `psi_spread`, how much the noise moves ψ).
    - `epoch_end(beta, val_ndcg) -> {key: value}`: called after each training epoch's validation with β of the
      epoch's last update; what it returns joins the run's results (the β search: its curve, `beta_search`).
    - `get_state() -> dict` / `set_state(dict)`: what the part keeps across a resume (the β search's curve).
    """

    def diagnostics(self, fold_in: torch.Tensor) -> dict[str, float]: ...

    def epoch_end(self, beta: float, val_ndcg: float) -> dict[str, Any]: ...


def _cpu_bf16_autocast(t: torch.Tensor) -> bool:
    """Whether `t` is on CPU inside a bf16 autocast region."""
    if t.device.type != "cpu":
        return False
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


class VAE(CFModule):
    """β-VAE for implicit feedback (Eq. 5) with a [latent → 600 → I] tanh decoder (Liang's p-network)."""

    def __init__(
        self,
        n_items: int,
        encoder: Callable[..., nn.Module],
        likelihood: Any,
        prior: Callable[..., nn.Module],
        beta: Schedule,
        decoder_hidden_dims: list[int] = (600,),
        l2: float = 0.0,
        lr: float = 1e-3,
        mc_samples: int = 1,
        output_bias: str | None = None,
    ):
        super().__init__()
        if output_bias not in OUTPUT_BIAS_INITS:
            raise ValueError(f"model.output_bias must be one of {OUTPUT_BIAS_INITS}, got {output_bias!r}")
        self.encoder: nn.Module = encoder(n_items=n_items)
        self.prior: nn.Module = prior(n_items=n_items, encoder=self.encoder)
        self.likelihood = likelihood
        self.beta: Schedule = beta
        self.l2, self.lr, self.mc_samples, self.output_bias = l2, lr, mc_samples, output_bias
        dims = [self.encoder.latent_dim, *decoder_hidden_dims, n_items]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.decoder = nn.Sequential(*layers[:-1])  # tanh on hidden layers, linear logits η
        xavier_init(self.decoder)

    def parts(self, hook: str) -> list[tuple[str, Callable[..., Any]]]:
        """(part name, bound hook) of every part that implements `hook` (see `PartHooks`)."""
        found = ((name, getattr(getattr(self, name), hook, None)) for name in PART_NAMES)
        return [(name, fn) for name, fn in found if callable(fn)]

    def divergence(self, post: Posterior) -> torch.Tensor:
        """Per-user KL(q || p): closed form for a Gaussian q when the prior has one, else log q(z|x) − log p(z)."""
        if post.log_q is None and hasattr(self.prior, "kl_gaussian"):
            return self.prior.kl_gaussian(post.mu.float(), post.logvar.float())
        z = post.z.float()
        log_q = post.log_q if post.log_q is not None else gaussian_log_prob(z, post.mu.float(), post.logvar.float())
        return log_q.float() - self.prior.log_prob(z).float()

    def weight_penalty(self) -> torch.Tensor:
        """Σ ||W||² over the weight matrices of encoder and decoder (biases and pseudo-inputs excluded, as Liang)."""
        params = [*self.encoder.named_parameters(), *self.decoder.named_parameters()]
        return sum(p.pow(2).sum() for name, p in params if name.endswith("weight"))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits η = decoder(z) (B, I)."""
        if not _cpu_bf16_autocast(z):
            return self.decoder(z)  # the plain path
        # speed path, CPU under bf16 autocast only: the output layer as (W hᵀ)ᵀ, the same product in the operand
        # layout oneDNN's bf16 kernels run about twice as fast for the forward and the weight gradient (the
        # logits are then item-major; tests/models/test_speed_paths.py checks it against the plain path)
        *hidden, out = self.decoder
        h = z
        for layer in hidden:
            h = layer(h)
        return torch.addmm(out.bias[:, None], out.weight, h.t()).t()

    def losses(self, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        """Eq. 5 on a batch, averaged over users and `mc_samples` draws of z: loss, recon (mean log p(x|z)) and,
        unless the schedule skips it, kl and bound (the ELBO, β = 1)."""
        recon = kl = 0.0
        for _ in range(self.mc_samples):
            post = self.encoder(x)
            # logits as the decoder gives them (bf16 under autocast): the likelihoods compute in ≥ float32
            # themselves, block by block, instead of upcasting the whole (B, I) matrix here
            recon = recon + self.likelihood.log_prob(x, self.decode(post.z)).mean()
            if not self.beta.skip_kl:
                kl = kl + self.divergence(post).mean()
        out = {"recon": recon / self.mc_samples}
        out["loss"] = -out["recon"]
        if not self.beta.skip_kl:
            out["kl"] = kl / self.mc_samples
            out["bound"] = out["recon"] - out["kl"]
            out["loss"] = out["loss"] + beta * out["kl"]
        if self.l2:
            out["loss"] = out["loss"] + self.l2 * self.weight_penalty()
        return out

    def training_step(self, batch: UserBatch, batch_idx: int) -> torch.Tensor:
        beta = self.beta(self.global_step)
        terms = self.losses(batch.x, beta)
        logs = {f"train/{k}": v for k, v in terms.items()} | {"train/beta": beta}
        self.log_dict(logs, on_step=True, on_epoch=True, batch_size=batch.x.shape[0])
        return terms["loss"]

    @torch.no_grad()
    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        """Logits η at the posterior's evaluation z (encoder in eval mode: no dropout, no sampling)."""
        was_training = self.encoder.training
        z = self.encoder.eval()(fold_in).z
        self.encoder.train(was_training)
        return self.decoder(z)

    def setup(self, stage: str) -> None:
        """With `output_bias="log_odds"`, start the output layer's bias at each item's training log-odds,
        log(p_i / (1 − p_i)) with p_i the share of training users who clicked i (clipped to [1/2N, 1 − 1/2N]),
        so that a Bernoulli decoder starts at the base rate instead of p ≈ 0.5. The paper is silent on this
        initialisation (off by default). Lightning calls `setup` before restoring a checkpoint, so a resumed
        run keeps its trained bias."""
        if stage != "fit" or self.output_bias is None:
            return
        train = self.trainer.datamodule.split.train
        n = train.shape[0]
        p = np.clip(np.asarray((train > 0).sum(0)).ravel() / n, 0.5 / n, 1 - 0.5 / n)
        bias = self.decoder[-1].bias
        with torch.no_grad():
            bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=bias.dtype))

    def on_fit_start(self) -> None:
        self.beta.start(self.trainer.estimated_stepping_batches)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self._diagnostics = {k: v for _, hook in self.parts("diagnostics") for k, v in hook(batch[0]).items()}

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        fitting = self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking
        for name, value in getattr(self, "_diagnostics", {}).items():  # beside the metrics (so in the history)
            self.results["val"][name] = value
            self.log(f"val/{name}", value)
        self._diagnostics = {}
        if fitting:  # not the sanity check, nor a later trainer.validate
            beta = self.beta(max(self.global_step - 1, 0))  # β of the epoch's last update
            for _, hook in self.parts("epoch_end"):
                for key, value in hook(beta, self.results["val"]["ndcg@100"]).items():
                    self.results[key] = value
                    for name, x in (value.items() if isinstance(value, dict) else ()):
                        if isinstance(x, float):  # e.g. beta_search/best_beta
                            self.log(f"{key}/{name}", x)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["parts"] = {name: get() for name, get in self.parts("get_state")}  # e.g. a β search's curve

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("parts", {})
        for name, restore in self.parts("set_state"):
            if name in saved:
                restore(saved[name])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return fused_adam(self.parameters(), lr=self.lr)

