"""The forward pass's result, shared by both model families."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Outputs:
    """What a forward pass returns. Fields a method does not produce are ``None``.

    recon:      the unconditioned reconstruction (baseline and multidecoder: p(x | z);
                single decoder: p(x | z, m = 0), computed in eval mode only)
    recon_cond: the conditioned reconstruction p(x | z, m) (multidecoder and single decoder)
    Gaussian:   mu, logvar, z        VQ: z_e (encoder output), z_q (nearest codes), codes
    """

    recon: torch.Tensor | None = None
    recon_cond: torch.Tensor | None = None
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    z: torch.Tensor | None = None
    z_e: torch.Tensor | None = None
    z_q: torch.Tensor | None = None
    codes: torch.Tensor | None = None
