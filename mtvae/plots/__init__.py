"""Figures of the thesis, one function each, all returning a matplotlib Figure.

    from mtvae import plots
    plots.set_style()
    fig = plots.power_law_distribution(784, exponents=(10, 40, 60))
    plots.save_figure(fig, "sec2-5-2_power_law_counts", "figures", made_by="quick profile ...")

==================================== ===================================================
thesis                               helper
==================================== ===================================================
section 2.5.2 power-law pixel count  :func:`power_law_distribution`, :func:`power_law_pmf`
Fig. 3.1 conditioning information m  :func:`conditioning_information`
Fig. 3.6 the three sampling types    :func:`sampling_types`
Figs. 4.1, 4.3 reconstructions       :func:`reconstructions`
Figs. 4.2, 4.4-4.6 validation curves :func:`validation_curves` (thesis curves beside ours,
                                     :func:`load_thesis_curves`)
section 4.2 recon vs exponent        :func:`reconstruction_vs_exponent`, :func:`exponent_table`
single decoder vs known pixels       :func:`reconstruction_vs_known_pixels`,
                                     :func:`known_pixel_errors`
exponent slider (notebooks 01, 03)   :func:`exponent_explorer`, :func:`exponent_panel`
==================================== ===================================================
"""

from .background import (
    conditioning_information,
    count_histogram,
    exponent_panel,
    power_law_distribution,
    power_law_pmf,
    power_law_summary,
    sampling_types,
)
from .curves import (
    THESIS_CURVES,
    history_of,
    load_thesis_curves,
    summary_table,
    validation_curves,
)
from .reconstructions import (
    THESIS_EXPONENT_SWEEP,
    exponent_table,
    known_pixel_errors,
    reconstruction_vs_exponent,
    reconstruction_vs_known_pixels,
    reconstructions,
)
from .style import FIGURE_INDEX, save_figure, set_style, styled, write_index
from .widgets import exponent_explorer

__all__ = [
    "FIGURE_INDEX", "THESIS_CURVES", "THESIS_EXPONENT_SWEEP", "conditioning_information",
    "count_histogram", "exponent_explorer", "exponent_panel", "exponent_table", "history_of",
    "known_pixel_errors", "load_thesis_curves", "power_law_distribution", "power_law_pmf",
    "power_law_summary",
    "reconstruction_vs_exponent", "reconstruction_vs_known_pixels", "reconstructions",
    "sampling_types", "save_figure", "set_style", "styled", "summary_table",
    "validation_curves", "write_index",
]
