"""mtvae: multitask variational autoencoders.

Semi-conditional Gaussian VAEs and VQ-VAEs that reconstruct from the latent alone and from a few
known pixels, reproducing "Multitask variational autoencoders" (University of Bergen, 2024).

    import mtvae
    result = mtvae.train_model("mnist-sample", model="vq", config=1, method="single", epochs=5)
"""

__version__ = "0.1.0"

from .api import make_config, train_model  # noqa: E402
from .checkpoint import load_model  # noqa: E402
from .config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from .data import load_dataset  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .losses import LossConfig  # noqa: E402
from .models import ModelConfig, build_model  # noqa: E402
from .observations import ObservationConfig, Observer  # noqa: E402
from .prior import load_prior, sample_codes, sample_images, train_prior  # noqa: E402
from .train import fit  # noqa: E402

__all__ = [
    "DataConfig", "LossConfig", "ModelConfig", "ObservationConfig", "Observer", "RunConfig",
    "TrainConfig", "build_model", "evaluate", "fit", "load_dataset", "load_model", "load_prior",
    "make_config", "sample_codes", "sample_images", "train_model", "train_prior",
]
