import numpy as np
import pytest
import torch
from PIL import Image

from pcgen.errors import CheckpointError, InputError, ShapeError
from pcgen.image.cosplace import CosPlace, GeM, load_cosplace


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return CosPlace("ResNet18", 512, image_size=64).freeze()


def test_embeddings_are_unit_norm_b_1_512(r18):
    x = torch.rand(3, 3, 40, 56) * 2 - 1
    e = r18(x)
    assert e.shape == (3, 1, 512)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3, 1))
    assert not torch.allclose(e[0], e[1])


def test_default_preprocessing_is_512_centre_crop_imagenet():
    m = CosPlace("ResNet18")
    x = torch.zeros(1, 3, 480, 640)  # mid-grey in [-1, 1] is 0.5 in [0, 1]
    p = m.preprocess(x)
    assert p.shape == (1, 3, 512, 512)
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(p[0, :, 0, 0], expected)


def test_pil_gray_rgba_and_arrays_convert(r18, photos):
    rgb = Image.open(photos / "database" / "db1.jpg").convert("RGB")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    e_rgb = r18(rgb)
    torch.testing.assert_close(r18(rgba), e_rgb)
    torch.testing.assert_close(r18(np.asarray(rgb)), e_rgb)
    gray = rgb.convert("L")
    torch.testing.assert_close(r18(gray), r18(gray.convert("RGB")))
    torch.testing.assert_close(r18(np.asarray(gray)), r18(gray.convert("RGB")))
    assert r18([rgb, gray]).shape == (2, 1, 512)
    # A [-1, 1] tensor of the same picture lands on the same embedding.
    t = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(r18(t), e_rgb, atol=2e-3, rtol=0)


@pytest.mark.parametrize("bad, error, words", [
    # a caller's code handing the wrong object or tensor is a bug (a traceback), not bad input
    ("street.jpg", TypeError, "not str"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), ShapeError, "float image tensors"),
    (torch.full((1, 3, 8, 8), 200.0), ShapeError, "values in [-1, 1]"),
    (torch.zeros(2, 5, 8, 8), ShapeError, "float image tensors"),
    ([], TypeError, "not list"),
    # image arrays are what a file decodes to: a bad one is the user's input
    (np.zeros((4, 4, 2), np.uint8), InputError, "image array"),
    (np.full((4, 4, 3), 3.0), InputError, "[0, 1]"),
])
def test_rejects_other_inputs(r18, bad, error, words):
    with pytest.raises(error) as err:
        r18(bad)
    assert words in str(err.value)


def test_state_dict_keys_follow_published_cosplace():
    r50 = CosPlace("ResNet50", 512).state_dict()
    # torchvision resnet50 has 320 state-dict entries; CosPlace drops fc (2) and adds GeM p + FC.
    assert len(r50) == 321
    assert r50["backbone.0.weight"].shape == (64, 3, 7, 7)
    assert "backbone.1.running_var" in r50 and "backbone.1.num_batches_tracked" in r50
    assert r50["backbone.4.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert r50["backbone.7.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert r50["aggregation.1.p"].shape == (1,) and float(r50["aggregation.1.p"]) == 3.0
    assert r50["aggregation.3.weight"].shape == (512, 2048)
    assert r50["aggregation.3.bias"].shape == (512,)
    r18 = CosPlace("ResNet18", 256).state_dict()
    assert len(r18) == 123
    assert r18["backbone.7.1.bn2.weight"].shape == (512,)
    assert r18["aggregation.3.weight"].shape == (256, 512)
    assert not any(k.startswith(("backbone.8", "backbone.9")) for k in r18)


def test_gem_matches_its_formula():
    x = torch.rand(2, 5, 3, 4) + 0.1
    torch.testing.assert_close(GeM()(x)[..., 0, 0], x.pow(3).mean(dim=(2, 3)).pow(1 / 3))


def test_load_published_layout_infers_architecture(tmp_path, r18):
    torch.manual_seed(1)
    src = CosPlace("ResNet18", 256, image_size=64)
    with torch.no_grad():
        src.aggregation[1].p.fill_(2.5)
    torch.save(src.state_dict(), tmp_path / "ResNet18_256_cosplace.pth")
    torch.save({"epoch_num": 3, "model_state_dict": src.state_dict()}, tmp_path / "train.pth")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for name in ("ResNet18_256_cosplace.pth", "train.pth"):
        m = load_cosplace(tmp_path / name, image_size=64)
        assert (m.backbone_name, m.fc_output_dim) == ("ResNet18", 256)
        assert not any(p.requires_grad for p in m.parameters()) and not m.training
        torch.testing.assert_close(m(x), src.eval()(x))


def test_other_architecture_is_one_line_naming_keys(tmp_path):
    torch.save(CosPlace("ResNet18", 512).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError) as err:
        load_cosplace(tmp_path / "r18.pth", backbone="ResNet50")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "r18.pth") in msg
    assert "missing backbone.4.0.conv3.weight" in msg and "shape mismatch" in msg
    vgg = {"backbone.0.weight": torch.zeros(64, 3, 3, 3), "backbone.28.weight": torch.zeros(512, 512, 3, 3),
           "aggregation.1.p": torch.ones(1), "aggregation.3.weight": torch.zeros(512, 512),
           "aggregation.3.bias": torch.zeros(512)}
    torch.save(vgg, tmp_path / "VGG16_512_cosplace.pth")
    with pytest.raises(CheckpointError, match="unexpected backbone.28.weight"):
        load_cosplace(tmp_path / "VGG16_512_cosplace.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_cosplace(tmp_path / "junk.pth")
