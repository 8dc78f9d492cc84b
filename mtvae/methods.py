"""The thesis's three methods, declared once.

=============== ============================================== ============================
method          decoders                                        trains on
=============== ============================================== ============================
baseline        p(x | z)                        (thesis ch. 2)  recon, latent
multidecoder    p(x | z) and an independent                     recon, recon_cond, latent
                p(x | z, m)                     (section 3.2)
single          one p(x | z, m) under variable  (section 3.3)  recon_cond, latent
                m; "unconditioned" is m = 0
=============== ============================================== ============================

The models (which decoders to build, what a forward pass returns), the losses (which terms),
the trainer (whether m is drawn, what SoftAdapt balances), the evaluation (the selection loss),
the reports (which metrics exist) and make_config (the default known pixels) read
:data:`METHODS` instead of comparing method names. Term and metric names are those of
:class:`mtvae.models.Outputs` and :func:`mtvae.losses.training_terms`: ``recon`` the
unconditioned reconstruction, ``recon_cond`` the conditioned one, ``latent`` the KL divergence
or the VQ loss (docs/thesis_code.md#losses).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Method", "METHODS", "get_method"]


@dataclass(frozen=True)
class Method:
    """What one method is made of."""

    name: str
    section: str  # where the thesis defines it
    decoder: bool  # builds p(x | z), ``model.decoder``
    cond_decoder: bool  # builds p(x | z, m), ``model.cond_decoder``
    terms: tuple[str, ...]  # the training objective's terms, in the order they are summed
    softadapt: tuple[str, ...]  # the terms SoftAdapt balances (thesis section 4.1)
    metrics: tuple[str, ...]  # the reconstruction metrics evaluated and reported
    # the known pixels it is trained with unless told otherwise (mtvae.observations): where,
    # how many (sections 3.2.1, 3.3.1; the baseline ignores its m,
    # docs/thesis_code.md#sampler-assignment)
    sampler: str = "exact"
    count: str = "fixed"

    @property
    def conditioned(self) -> bool:
        """Whether the method sees known pixels: m is drawn for training and evaluation."""
        return self.cond_decoder

    @property
    def unconditioned(self) -> str:
        """The decoder whose output is ``recon``: ``decoder`` p(x | z), or for the single
        decoder ``cond_decoder`` with m = None, which means m = 0, no known pixels (section
        3.3; docs/thesis_code.md#gaussian-models). The single decoder computes it in eval mode
        and whenever m is None; it never trains on it."""
        return "decoder" if self.decoder else "cond_decoder"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("baseline", "2", decoder=True, cond_decoder=False, terms=("recon", "latent"),
           softadapt=("recon", "latent"), metrics=("recon",)),
    # W1 recon + W2 recon_cond + beta latent (section 3.2.2); the same z feeds both decoders
    Method("multidecoder", "3.2", decoder=True, cond_decoder=True,
           terms=("recon", "recon_cond", "latent"), softadapt=("recon", "recon_cond", "latent"),
           metrics=("recon", "recon_cond")),
    # trained on the conditioned output only; its m = 0 output is evaluated as recon
    Method("single", "3.3", decoder=False, cond_decoder=True, terms=("recon_cond", "latent"),
           softadapt=("recon_cond", "latent"), metrics=("recon", "recon_cond"),
           sampler="gaussian", count="power-law"),
)}


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; ValueError naming the choices otherwise."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {tuple(METHODS)}") from None
