"""mtvae: multitask variational autoencoders.

Semi-conditional Gaussian VAEs and VQ-VAEs that reconstruct from the latent alone and from a few
known pixels, reproducing "Multitask variational autoencoders" (University of Bergen, 2024).

    import mtvae
    result = mtvae.train_model("mnist-sample", model="vq", config=1, method="single", epochs=5)
"""

from ._version import __version__
from .api import make_config, train_model
from .checkpoint import load_model
from .config import DataConfig, RunConfig, TrainConfig
from .data import load_dataset
from .evaluate import evaluate
from .losses import LossConfig
from .models import ModelConfig, build_model
from .observations import ObservationConfig, Observer
from .prior import load_prior, sample_codes, sample_images, train_prior
from .train import fit

__all__ = [
    "__version__", "DataConfig", "LossConfig", "ModelConfig", "ObservationConfig", "Observer",
    "RunConfig", "TrainConfig", "build_model", "evaluate", "fit", "load_dataset", "load_model",
    "load_prior", "make_config", "sample_codes", "sample_images", "train_model", "train_prior",
]
