"""The two protocols a run can follow: the thesis code's, or mtvae's corrected one.

``protocol="thesis"`` repeats what the thesis's code actually ran (docs/thesis_code.md), so that
numbers set beside the thesis's Table 4.1 compare like with like. ``protocol="mtvae"`` (the
default) keeps the fixes: shuffled seeded folds and batches, distinct pixels, z = mu evaluation,
independent and mirrored VQ decoders, bf16 autocast on CUDA. Every switch below is also an
ordinary config field, so a single one can be flipped on its own; the protocol's name is recorded
in ``TrainConfig.protocol`` (and so in every metrics.json and fold result).

    make_config("mnist", model="vq", method="multidecoder", protocol="thesis")
    python -m mtvae crossval --dataset mnist --rows 'vq1-*' --protocol thesis
"""

from __future__ import annotations

__all__ = ["PROTOCOLS", "THESIS_OPTIONS", "protocol_options", "check_protocol"]

PROTOCOLS = ("thesis", "mtvae")

# The thesis code's switches (docs/thesis_code.md, sections named after each key), as
# make_config options.
THESIS_OPTIONS = {
    "shuffle_folds": False,  # sklearn KFold(5, shuffle=False): contiguous folds (#folds)
    "shuffle": False,  # KFoldDataModule did not pass shuffle: batches in a fixed order (#folds)
    "replacement": True,  # uniform / gaussian pixel draws with replacement (#samplers)
    "eval_sample_z": True,  # Gaussian VAE: evaluate with a sampled z, not z = mu (#evaluation)
    "softadapt_window": 101,  # SoftAdapt 0.0.5: weights recomputed every 101 steps (#softadapt)
    "softadapt_init": "ones",  # its initial weights were torch.ones(3), sum 3 (#softadapt)
    "amp": False,  # fp32 everywhere: the thesis trained in fp32 on A100s (#training)
}


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use 'thesis' (what the thesis code "
                         "ran, for comparing with its table) or 'mtvae' (our corrected defaults)")
    return protocol


def protocol_options(protocol: str, family: str, method: str) -> dict:
    """make_config options that ``protocol`` sets for a model ``family`` and ``method``."""
    if check_protocol(protocol) == "mtvae":
        return {}
    opts = dict(THESIS_OPTIONS)
    if family == "vq" and method == "multidecoder":
        opts["shared_decoder"] = True  # one conv decoder for both outputs (#vq-multidecoder)
    if family == "vq" and method == "baseline":
        opts["thesis_baseline_decoder"] = True  # un-mirrored, smaller decoder (#vq-baseline)
    return opts
