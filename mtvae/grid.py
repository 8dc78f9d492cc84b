"""The thesis's experiment grid by name: the 45 rows of Table 4.1 per dataset and the exponent sweep.

Per dataset and per (family, config) group (thesis section 4; docs/thesis_code.md#table-rows):

================ ===================================================== =========================
method           variants                                              row names (VQ config 1)
================ ===================================================== =========================
baseline         -                                                     vq1-baseline
multidecoder     {exact, uniform} sampling x {plain, SoftAdapt}        vq1-multi-exact,
                                                                       vq1-multi-uniform-softadapt
single decoder   {gaussian, uniform} sampling x power-law exponent     vq1-single-gaussian-a40,
                 {40, 60}                                              vq1-single-uniform-a60
================ ===================================================== =========================

Groups: Gaussian VAE configs 1-2 (``gauss1``, ``gauss2``) and VQ-VAE configs 1-3 (``vq1``-``vq3``),
so 5 x 9 = 45 rows. The exponent sweep (the thesis's reconstruction-vs-exponent figures, run on
CIFAR-10) is the single decoder with Gaussian sampling for Gaussian config 2 and VQ config 2 at
exponents 3, 5, 10, 20, ..., 70; its a = 40 and a = 60 points are table rows.

Every row maps one-to-one to a line of the thesis's table (``mtvae/assets/thesis_table_4_1.csv``)
through :meth:`Row.thesis_key` and becomes a :class:`~mtvae.config.RunConfig` through
:meth:`Row.run_config`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from .api import make_config
from .config import RunConfig, TrainConfig

__all__ = ["FAMILY_NAMES", "Row", "TABLE_ROWS", "SWEEP_ROWS", "SPATIAL_ROWS", "SWEEP_EXPONENTS",
           "ROWS", "select_rows", "thesis_dataset"]

# docs/thesis_code.md#sweep
SWEEP_EXPONENTS = (3, 5, 10, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70)

# The families' display names, as the thesis table spells them (tables, labels, plot titles)
FAMILY_NAMES = {"gaussian": "Gaussian VAE", "vq": "VQ-VAE"}
_THESIS_DATASET = {"mnist": "MNIST", "mnist-sample": "MNIST", "cifar10": "CIFAR10",
                   "celeba": "CelebA"}


def thesis_dataset(dataset: str) -> str | None:
    """The thesis table's dataset name for one of ours; None where the thesis has no numbers.

    'mnist-sample' (the bundled 10,000 test digits) is compared with the thesis's MNIST rows, which
    were trained on the 60,000 training digits: read such ratios as a sanity check only.
    """
    return _THESIS_DATASET.get(dataset.lower().replace("_", "-"))


@dataclass(frozen=True)
class Row:
    """One experiment: a model, a method and its conditioning; cross-validated per dataset."""

    family: str  # gaussian | vq
    config: int  # Gaussian 1-2, VQ 1-3
    method: str  # baseline | multidecoder | single
    sampler: str | None = None  # multidecoder: exact | uniform; single: gaussian | uniform
    softadapt: bool = False
    exponent: int | None = None  # single decoder: the power-law exponent a
    conditioning: str = "dense"  # "spatial": m as feature maps (models/spatial.py), not the thesis's

    @property
    def name(self) -> str:
        prefix = f"{'gauss' if self.family == 'gaussian' else 'vq'}{self.config}"
        if self.method == "baseline":
            return f"{prefix}-baseline"
        tail = ("-softadapt" if self.softadapt else "") + \
            ("-spatial" if self.conditioning == "spatial" else "")
        if self.method == "multidecoder":
            return f"{prefix}-multi-{self.sampler}{tail}"
        return f"{prefix}-single-{self.sampler}-a{self.exponent}{tail}"

    def thesis_key(self) -> tuple[str, int, str, str]:
        """(model, config, method, params) as the columns of the thesis table spell them."""
        model = FAMILY_NAMES[self.family]
        if self.method == "baseline":
            return model, self.config, "baseline", ""
        params = f"{self.sampler.capitalize()} sampling"
        tail = (", SoftAdapt" if self.softadapt else "") + \
            (", spatial conditioning" if self.conditioning == "spatial" else "")
        if self.method == "multidecoder":
            return model, self.config, "Multi Decoder", params + tail
        return model, self.config, "Single Decoder", f"{params}, Exponent={self.exponent}" + tail

    def run_config(self, dataset: str, *, protocol: str = TrainConfig.protocol,
                   thesis_protocol: bool = False, **kwargs) -> RunConfig:
        """This row as a RunConfig; ``kwargs`` go to :func:`mtvae.make_config` (epochs, fold,
        folds, limit, seed, device, lr, ...). ``protocol="thesis"`` (``thesis_protocol=True`` is
        the older spelling) adds the switches that repeat the thesis code's protocol
        (:mod:`mtvae.protocol`, docs/crossval.md)."""
        opts = dict(kwargs)
        if self.method == "multidecoder":
            opts.setdefault("count", "fixed")
        elif self.method == "single":
            opts.setdefault("count", "power-law")
            opts.setdefault("exponent", float(self.exponent))
        if self.conditioning != "dense":
            opts.setdefault("conditioning", self.conditioning)
        return make_config(dataset, model=self.family, config=self.config, method=self.method,
                           sampler=self.sampler, softadapt=self.softadapt,
                           protocol="thesis" if thesis_protocol else protocol, **opts)


def _group(family: str, config: int) -> list[Row]:
    rows = [Row(family, config, "baseline")]
    rows += [Row(family, config, "multidecoder", s, sa)
             for s in ("exact", "uniform") for sa in (False, True)]
    rows += [Row(family, config, "single", s, False, a)
             for s in ("gaussian", "uniform") for a in (40, 60)]
    return rows


# The thesis table's order: VQ configs 1-3, then Gaussian configs 1-2
# (docs/thesis_code.md#table-rows).
TABLE_ROWS: tuple[Row, ...] = tuple(
    r for fam, cfg in (("vq", 1), ("vq", 2), ("vq", 3), ("gaussian", 1), ("gaussian", 2))
    for r in _group(fam, cfg))
SWEEP_ROWS: tuple[Row, ...] = tuple(
    Row(fam, 2, "single", "gaussian", False, a) for fam in ("gaussian", "vq")
    for a in SWEEP_EXPONENTS)
# Each conditioned table row again with spatial conditioning (models/spatial.py): not in the
# thesis, shown below its rows in Table 4.1.
SPATIAL_ROWS: tuple[Row, ...] = tuple(
    Row(r.family, r.config, r.method, r.sampler, r.softadapt, r.exponent, "spatial")
    for r in TABLE_ROWS if r.method != "baseline")
# Every named row once, table rows first: the canonical order that sharding relies on (new rows
# go at the end, so the shards of earlier row sets stay as they were).
ROWS: dict[str, Row] = {r.name: r for r in TABLE_ROWS + SWEEP_ROWS + SPATIAL_ROWS}


def select_rows(spec: str | list[str] | tuple[str, ...] = "all") -> list[Row]:
    """Rows by name, in canonical order (so every worker of a sharded sweep agrees).

    ``spec`` items: ``all`` or ``table`` (the 45 Table 4.1 rows), ``sweep`` (the exponent sweep),
    ``grid`` (both), ``spatial`` (the table's conditioned rows with spatial conditioning), a row name (``vq1-single-gaussian-a40``), or a shell pattern
    (``'vq*-baseline'``, ``'gauss2-*'``).
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    if not items:
        raise ValueError("no rows selected; give 'all', 'sweep', a row name or a pattern")
    wanted: set[str] = set()
    for item in items:
        key = item.strip()
        if key in ("all", "table"):
            wanted.update(r.name for r in TABLE_ROWS)
        elif key == "sweep":
            wanted.update(r.name for r in SWEEP_ROWS)
        elif key == "spatial":
            wanted.update(r.name for r in SPATIAL_ROWS)
        elif key == "grid":
            wanted.update(r.name for r in TABLE_ROWS + SWEEP_ROWS)
        else:
            # a pattern reaches the spatial rows only when it names them ('*-spatial'), so
            # 'vq1-*' stays the thesis's nine rows
            pool = ROWS if "spatial" in key else [n for n, r in ROWS.items()
                                                  if r.conditioning == "dense"]
            hits = fnmatch.filter(pool, key)
            if not hits:
                raise ValueError(f"unknown row {key!r}; rows look like 'vq1-baseline', "
                                 "'gauss2-multi-uniform-softadapt', 'vq2-single-gaussian-a40', "
                                 "or use all | sweep | grid | a pattern such as 'vq1-*' "
                                 "(`python -m mtvae crossval --list-rows` prints them all)")
            wanted.update(hits)
    return [row for name, row in ROWS.items() if name in wanted]
