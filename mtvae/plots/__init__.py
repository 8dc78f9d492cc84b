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
dense vs spatial conditioning        :func:`known_pixel_comparison`
exponent slider (notebooks 01, 03)   :func:`exponent_explorer`, :func:`exponent_panel`
sections 2.2.2, 2.5.1 PixelCNN prior :func:`prior_nll_curve`, :func:`generated_samples`
generation from sparse pixels        :func:`given_pixels`
uncertainty from sparse pixels       :func:`uncertainty_panels`, :func:`uncertainty_maps`,
                                     :func:`uncertainty_by_known_pixels`,
                                     :func:`uncertainty_vs_known_pixels`
Table 4.1 cross-validation           :func:`table_comparison`, :func:`save_table`
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
from .generation import (
    generated_samples,
    given_pixels,
    prior_nll_curve,
    uncertainty_by_known_pixels,
    uncertainty_maps,
    uncertainty_panels,
    uncertainty_vs_known_pixels,
)
from .reconstructions import (
    THESIS_EXPONENT_SWEEP,
    exponent_table,
    known_pixel_comparison,
    known_pixel_errors,
    reconstruction_vs_exponent,
    reconstruction_vs_known_pixels,
    reconstructions,
)
from .style import FIGURE_INDEX, save_figure, set_style, styled, write_index
from .tables import save_table, table_comparison
from .widgets import exponent_explorer

__all__ = [
    "FIGURE_INDEX", "THESIS_CURVES", "THESIS_EXPONENT_SWEEP", "conditioning_information",
    "count_histogram", "exponent_explorer", "exponent_panel", "exponent_table",
    "generated_samples", "given_pixels", "history_of", "known_pixel_comparison", "known_pixel_errors", "load_thesis_curves",
    "power_law_distribution", "power_law_pmf", "power_law_summary", "prior_nll_curve",
    "reconstruction_vs_exponent", "reconstruction_vs_known_pixels", "reconstructions",
    "sampling_types", "save_figure", "save_table", "set_style", "styled", "summary_table",
    "table_comparison", "uncertainty_by_known_pixels", "uncertainty_maps", "uncertainty_panels",
    "uncertainty_vs_known_pixels", "validation_curves", "write_index",
]
