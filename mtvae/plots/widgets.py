"""The power-law exponent slider of notebooks 01 and 03 (ipywidgets, optional).

Without ipywidgets (or without a front end, e.g. under papermill) the explorer still shows the
static figure for its initial exponent, so a notebook cell that calls it never fails headless.
"""

from __future__ import annotations

from .background import _as_batch, exponent_panel, histogram_limits

__all__ = ["exponent_explorer"]


def exponent_explorer(image, *, model=None, exponent: float = 40, sampler: str = "gaussian",
                      seed: int = 0, max_exponent: int = 100):
    """Sliders for the exponent a and the draw: the histogram of pixel counts, one mask drawn
    with a power-law count and (given a single decoder ``model``) its outputs update live.

    Returns the widget (display it, or leave it as a cell's last value); without ipywidgets,
    displays the static :func:`~mtvae.plots.exponent_panel` and returns None.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    try:
        import ipywidgets as widgets
    except ImportError:
        print("ipywidgets is not installed (pip install 'mtvae[notebooks]'): static figure only")
        fig = exponent_panel(image, exponent, model=model, sampler=sampler, seed=seed)
        display(fig)
        plt.close(fig)
        return None

    a = widgets.IntSlider(value=int(exponent), min=1, max=max_exponent, step=1,
                          description="exponent a", continuous_update=False)
    draw = widgets.IntSlider(value=0, min=0, max=20, description="draw",
                             continuous_update=False)
    out = widgets.Output()
    _, _, h, w = _as_batch(image).shape
    # the same axes at every slider position (else each exponent rescales its own histogram)
    limits = histogram_limits(h * w, (a.min, a.max))

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            fig = exponent_panel(image, a.value, model=model, sampler=sampler, draw=draw.value,
                                 seed=seed, limits=limits)
            display(fig)
            plt.close(fig)  # displayed once, inside the widget only

    a.observe(redraw, names="value")
    draw.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([a, draw]), out])
