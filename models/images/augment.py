"""Training-split augmentation (kornia, on batches of tensors) and the tensor form of the input normalisation.

Random resized crop (70-100 % of the area), horizontal flip (optional), rotation up to ±10°, colour jitter
(brightness, contrast, saturation 0.2, hue 0.02). Kornia draws from torch's global generator, which the
run seeds. Validation, evaluation, export and serving never augment.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.registry import ImageInput


def build_augment(image_size: int, *, flip: bool) -> nn.Module:
    import kornia.augmentation as K

    steps: list[nn.Module] = [K.RandomResizedCrop((image_size, image_size), scale=(0.7, 1.0), ratio=(0.85, 1.15))]
    if flip:
        steps.append(K.RandomHorizontalFlip())
    steps += [K.RandomRotation(degrees=10.0), K.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8)]
    return K.AugmentationSequential(*steps)


def normalise(unit: torch.Tensor, spec: ImageInput) -> torch.Tensor:
    """(N, C, H, W) floats in 0..1 → the model input, as `engine.serve.classify.to_input` computes it."""
    mean = torch.tensor(spec.mean, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
    return (unit * 255.0 - mean) / std
