"""Training losses: where a rendered pixel becomes a loss.

- :mod:`~bts.losses.photometric`: L1 + SSIM, per-pixel minimum over the colour frames;
- :mod:`~bts.losses.smoothness`: edge-aware smoothness of the rendered distance;
- :mod:`~bts.losses.masking`: the weight-guided ray mask and the mean that counts masked rays as zeros;
- :mod:`~bts.losses.total`: weights and the combined objective;
- :mod:`~bts.losses.occupancy`: binary cross-entropy of densities against exact occupancy (the supervised bound).
"""

from bts.losses.masking import masked_mean, weight_guided_mask
from bts.losses.occupancy import occupancy_accuracy, occupancy_bce, occupancy_probability
from bts.losses.photometric import PhotometricLoss, photometric_error, photometric_loss, ssim
from bts.losses.smoothness import edge_aware_smoothness, edge_aware_smoothness_map
from bts.losses.total import LossWeights, TotalLoss, combine_losses

__all__ = [
    "LossWeights",
    "PhotometricLoss",
    "TotalLoss",
    "combine_losses",
    "edge_aware_smoothness",
    "edge_aware_smoothness_map",
    "masked_mean",
    "occupancy_accuracy",
    "occupancy_bce",
    "occupancy_probability",
    "photometric_error",
    "photometric_loss",
    "ssim",
    "weight_guided_mask",
]
