"""One look for every figure, saving to PNG + PDF, and the figures/README.md index.

Figure helpers draw inside ``styled()`` (seaborn's whitegrid theme, colour-blind palette) so they
look the same whether or not the user called :func:`set_style`; ``set_style()`` applies the same
settings globally for the user's own plots.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import matplotlib
import numpy as np
import torch

from ..data import to_float

__all__ = ["set_style", "styled", "save_figure", "FIGURE_INDEX", "write_index", "record",
           "check_name", "BASELINE", "image_array", "show_image", "masked_image", "palette",
           "strip"]

BASELINE = {"color": "0.15", "linestyle": "--"}  # the baseline is dashed black in every figure
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_FILES = ("png", "pdf", "md", "tex", "csv")  # what the index links: figures and tables

# name -> (thesis reference, what the figure shows). save_figure's index reads this; a figure
# without an entry is still listed, with an empty description.
FIGURE_INDEX = {
    "sec2-5-2_power_law_counts": (
        "section 2.5.2 / 3.3.1", "pixel count floor(N(1-X)), X ~ Power(a): Monte Carlo histogram "
        "with the analytic pmf for several exponents"),
    "fig3-1_conditioning_information": (
        "Fig. 3.1", "image x, mask, masked image and the channels of m = [x * mask, mask]"),
    "fig3-6_sampling_types": (
        "Fig. 3.6", "original / mask / result for exact-grid, uniform and Gaussian sampling"),
    "sec2-5-2_exponent_panel": (
        "section 2.5.2 (slider, static)", "count histogram and one drawn mask for one exponent"),
    "fig4-1_gaussian_multidecoder_reconstructions": (
        "Fig. 4.1", "Gaussian VAE multidecoder (exact): input, known pixels, unconditioned and "
        "conditioned decoder outputs"),
    "fig4-2_gaussian_multidecoder_curves": (
        "Fig. 4.2", "validation KL and reconstruction per epoch, multidecoder vs baseline; thesis "
        "CelebA curves beside ours"),
    "fig4-3_vq_multidecoder_reconstructions": (
        "Fig. 4.3", "VQ-VAE multidecoder (exact): input, known pixels, unconditioned and "
        "conditioned decoder outputs"),
    "fig4-4_vq_multidecoder_curves": (
        "Fig. 4.4", "validation VQ loss and reconstruction per epoch, multidecoder vs baseline; "
        "thesis CelebA curves beside ours"),
    "fig4-5_gaussian_single_curves": (
        "Fig. 4.5", "validation KL and reconstruction per epoch, single decoder vs baseline; "
        "thesis CelebA curves beside ours"),
    "fig4-6_vq_single_curves": (
        "Fig. 4.6", "validation VQ loss and reconstruction per epoch, single decoder vs baseline; "
        "thesis CelebA curves beside ours"),
    "sec4-2_single_reconstructions": (
        "section 4.2", "single decoder: input, known pixels, output with m = 0 and with m"),
    "sec4-2_recon_vs_exponent": (
        "section 4.2 (exponent figures)", "single decoder reconstruction with m = 0 against the "
        "power-law exponent, baseline dashed; thesis CIFAR-10 sweep beside ours"),
    "sec4-2_single_known_pixels": (
        "section 4.2 (new)", "single decoder reconstruction error as the number of known pixels "
        "grows, with examples"),
    "sec4-2_dense_vs_spatial": (
        "section 4.2 (mtvae extension)", "single decoder with the thesis's dense m-layer "
        "against spatial conditioning (m as feature maps): error and the draws' 95 % coverage "
        "as the known pixels grow"),
    "sec4-2_single_exponent_panel": (
        "section 4.2 (slider, static)", "count histogram, a drawn mask and the single decoder's "
        "reconstructions for one exponent"),
    "sec2-5-1_prior_nll": (
        "sections 2.2.2, 2.5.1 (new: the thesis trained no prior)", "Gated PixelCNN prior over "
        "the VQ-VAE's codes: validation NLL per epoch and held-out test NLL in bits per code, "
        "against the uniform prior's log2 K"),
    "sec2-5-1_pixelcnn_samples": (
        "sections 2.2.2, 2.5.1 (new)", "new images: VQ-VAE codes from the PixelCNN prior, "
        "uniformly random codes (no prior), Gaussian VAE with z ~ N(0, I)"),
    "sec3-2-3_generation_given_pixels": (
        "sections 2.3, 3.2.3 (new)", "images generated from a few known pixels: prior latents "
        "decoded by the single decoder with m = [x * mask, mask]"),
    "sec3-2-3_uncertainty_maps_vq": (
        "sections 2.3, 3.2.3 (new; Gundersen et al. 2021)", "VQ-VAE single decoder, PixelCNN prior: one "
        "image with more and more known pixels; mean, standard deviation and absolute error "
        "of decodings of the same prior latents"),
    "sec3-2-3_uncertainty_maps_gaussian": (
        "sections 2.3, 3.2.3 (new; Gundersen et al. 2021)", "the same for the Gaussian VAE single "
        "decoder, z ~ N(0, I)"),
    "sec3-2-3_uncertainty_vs_known_pixels": (
        "sections 2.3, 3.2.3 (new)", "mean std of the decodings and MSE of their mean against the number "
        "of known pixels: VQ-VAE with its PixelCNN prior, Gaussian VAE with N(0, I)"),
    "tab4-1_crossval": (
        "Table 4.1", "cross-validated test reconstruction and latent loss per row, ours beside "
        "the thesis's MNIST numbers (Markdown, LaTeX, CSV)"),
    "tab4-1_crossval_vs_thesis": (
        "Table 4.1", "the table as a figure: our mean ± std over folds beside the thesis's value "
        "± its std, log scale"),
    "claims_crossval": (
        "chapters 4-5", "the thesis's directional claims checked on this profile's folds, paired "
        "per fold (verdict, folds agreeing, mean change, the thesis table's own direction)"),
    "tab4-1_reference_mnist": (
        "Table 4.1", "the committed CPU reference run on the real MNIST (reference_results/, "
        "thesis protocol) beside the thesis's numbers"),
    "tab4-1_reference_mnist_vs_thesis": (
        "Table 4.1", "the reference run's table as a figure, beside the thesis's values"),
    "claims_reference_mnist": (
        "chapters 4-5", "the thesis's claims checked on the real-MNIST reference run"),
}


def _rc() -> dict:
    import seaborn as sns
    from cycler import cycler

    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook", font_scale=0.85))
    rc.update({
        "axes.prop_cycle": cycler(color=sns.color_palette("colorblind")),
        "figure.dpi": 100, "savefig.dpi": 150, "legend.frameon": False,
        "image.interpolation": "nearest", "image.cmap": "gray", "axes.titlesize": 10,
        "figure.titlesize": 11, "pdf.fonttype": 42,  # editable text in the PDFs
    })
    return rc


def palette(n: int) -> list:
    """The first ``n`` colours of the figures' palette (seaborn colour-blind)."""
    import seaborn as sns

    return list(sns.color_palette("colorblind", n))


def set_style() -> None:
    """Apply the figures' style globally (seaborn whitegrid, colour-blind palette)."""
    matplotlib.rcParams.update(_rc())


@contextlib.contextmanager
def styled():
    """Draw in the figures' style without changing the global settings.

    Restores only the keys it sets: ``matplotlib.rc_context`` would also restore
    ``interactive``, which the notebook backend switches on at the first figure, and inline
    figures would stop showing.
    """
    rc = _rc()
    old = {k: matplotlib.rcParams[k] for k in rc}
    matplotlib.rcParams.update(rc)
    try:
        yield
    finally:
        matplotlib.rcParams.update(old)


def save_figure(fig, name: str, folder: str | os.PathLike = "figures", *,
                made_by: str | None = None, dpi: int = 150) -> None:
    """Write ``folder/name.png`` and ``folder/name.pdf`` (returns nothing, so a notebook cell
    ending with it prints nothing).

    ``made_by`` (e.g. ``Profile.label``) is recorded in ``folder/figures.json`` and the figure
    is listed in ``folder/README.md`` with its thesis reference (:data:`FIGURE_INDEX`).
    The files are byte-stable for the same figure (no creation date in the PDF).
    """
    check_name(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    record(folder, name, made_by)


def check_name(name: str) -> str:
    """``name`` if it is a valid figure or table name (no extension, no folder)."""
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be letters, digits, '-' or '_' without an "
                         "extension, e.g. 'fig4-2_gaussian_multidecoder_curves'")
    return name


def record(folder: str | os.PathLike, name: str, made_by: str | None) -> None:
    """Note in ``folder/figures.json`` what made the saved figure or table ``name`` and rewrite
    ``folder/README.md`` (nothing without ``made_by``)."""
    if made_by is None:
        return
    path = Path(folder) / "figures.json"
    made = json.loads(path.read_text()) if path.exists() else {}
    made[check_name(name)] = made_by
    path.write_text(json.dumps(dict(sorted(made.items())), indent=1) + "\n")
    write_index(folder)


def write_index(folder: str | os.PathLike = "figures") -> Path:
    """(Re)write ``folder/README.md`` from ``figures.json``: one row per saved figure."""
    folder = Path(folder)
    path = folder / "figures.json"
    made = json.loads(path.read_text()) if path.exists() else {}
    lines = ["# Figures", "",
             "Written by the notebooks (`python -m mtvae reproduce`, docs/notebooks.md); each row "
             "says which profile and dataset made the figure. `.png` for screens, `.pdf` for "
             "print; tables as `.md`, `.tex` (booktabs) and `.csv`.",
             "Quick-profile figures show that the pipeline runs and the direction of the effects, "
             "not the thesis's numbers (few images, few epochs).", "",
             "| figure | thesis | shows | made by |", "|---|---|---|---|"]
    order = {name: i for i, name in enumerate(FIGURE_INDEX)}  # thesis order, others after
    for name, by in sorted(made.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        ref, what = FIGURE_INDEX.get(name, ("", ""))
        files = " ".join(f"[{ext}]({name}.{ext})" for ext in _FILES
                         if (folder / f"{name}.{ext}").exists())
        lines.append(f"| `{name}` {files} | {ref} | {what} | {by} |")
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- images ---------------------------------------------------------------------------------

def image_array(x) -> np.ndarray:
    """One image (C, H, W) tensor/array in [0, 1] (uint8 in [0, 255]) -> (H, W) or (H, W, 3)."""
    x = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    x = to_float(x).clamp(0, 1).numpy()
    if x.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got shape {x.shape}")
    return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)


def masked_image(x, mask, fill=(0.55, 0.65, 0.8)) -> np.ndarray:
    """RGB view of x at the known pixels, unknown pixels in a tint (so known black pixels show)."""
    img = image_array(x)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    keep = image_array(mask).astype(bool)
    out = np.empty_like(img)
    out[:] = np.asarray(fill)
    out[keep] = img[keep]
    return out


def frame(ax, title: str | None = None) -> None:
    """An image axis: no ticks, no grid, an optional title."""
    ax.set_xticks([]), ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)


def show_image(ax, img: np.ndarray, title: str | None = None, **kwargs) -> None:
    ax.imshow(img, vmin=0, vmax=1, cmap="gray", **kwargs)
    frame(ax, title)


def strip(images, pad: int = 1, value: float = 1.0) -> np.ndarray:
    """Images side by side with a ``pad``-pixel separator: a list of (H, W[, 3]) arrays."""
    arrays = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1) for a in images]
    h = arrays[0].shape[0]
    sep = np.full((h, pad, 3), value)
    out = [arrays[0]]
    for a in arrays[1:]:
        out += [sep, a]
    return np.concatenate(out, axis=1)
