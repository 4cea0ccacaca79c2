"""The pretrained backbone, the new head, and what each training stage may change."""

from __future__ import annotations

import torch
from torch import nn

from models.images.network import FEATURES, N_BLOCKS, TransferNet, pretrained_weights


def _trainable(net: TransferNet) -> set[str]:
    return {n for n, p in net.named_parameters() if p.requires_grad}


def test_pretrained_weights_come_from_the_wheel_and_the_head_is_new() -> None:
    weights = pretrained_weights()
    net = TransferNet(5, 64, pretrained=True)
    assert torch.equal(net.net._conv_stem.weight, weights["_conv_stem.weight"])
    assert net.net._fc.weight.shape == (5, FEATURES) and weights["_fc.weight"].shape[0] == 1000


def test_head_only_then_last_k_blocks_then_everything() -> None:
    torch.manual_seed(0)
    net = TransferNet(3, 64, pretrained=True)
    head = net.set_trainable(0)
    assert _trainable(net) == {"net._fc.weight", "net._fc.bias"} and sum(p.numel() for p in head) == 3 * FEATURES + 3
    net.set_trainable(2)
    names = _trainable(net)
    assert any(n.startswith(f"net._blocks.{N_BLOCKS - 1}.") for n in names)
    assert any(n.startswith(f"net._blocks.{N_BLOCKS - 2}.") for n in names)
    assert not any(n.startswith(f"net._blocks.{N_BLOCKS - 3}.") for n in names)
    assert "net._conv_head.weight" in names and "net._conv_stem.weight" not in names
    net.set_trainable(None)
    assert _trainable(net) == {n for n, _ in net.named_parameters()}


def test_frozen_stages_get_no_gradient_and_pretrained_batchnorm_keeps_its_statistics() -> None:
    torch.manual_seed(0)
    net = TransferNet(3, 64, pretrained=True)
    net.set_trainable(1)
    net.train()
    assert all(not m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert not net.net._blocks[0].training and net.net._blocks[N_BLOCKS - 1].training
    before = net.net._bn0.running_mean.clone()
    net(torch.randn(4, 3, 64, 64)).sum().backward()
    assert net.net._blocks[0]._project_conv.weight.grad is None
    assert net.net._blocks[N_BLOCKS - 1]._project_conv.weight.grad is not None
    assert torch.equal(before, net.net._bn0.running_mean)


def test_scratch_network_trains_its_batchnorm() -> None:
    net = TransferNet(3, 64, pretrained=False)
    net.set_trainable(None)
    net.train()
    assert all(m.training and m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
