"""The shipped demo models still do what data/demo/README.md says they do."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sofgan_lab.demo import demo_dir
from sofgan_lab.geometry import SemanticOccupancyField
from sofgan_lab.train.sof_eval import evaluate_sof_model


# one thread; `scans`: the shared tiny dataset (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_sof_is_small_and_loads():
    d = demo_dir("sof")
    size = sum(f.stat().st_size for f in d.iterdir())
    assert size <= 15 * 2**20, f"the demo SOF is {size / 2**20:.1f} MB (limit 15 MB)"
    m = SemanticOccupancyField.from_pretrained("demo")
    assert m.config.num_instances == 100 and m.latents.weight.shape == (100, m.config.latent_dim)


def test_demo_sof_segments_unseen_views_of_its_instances():
    # New cameras (seed 7) of the first 4 training instances, regenerated from the synthetic seed
    # recorded with the model; the README reports 0.867 over all 100 instances x 8 views.
    report = evaluate_sof_model(demo_dir("sof"), heldout_views=4, seed=7, instances=4, device="cpu")
    assert report["views"] == 16 and report["source"] == "synthetic"
    assert report["miou"] >= 0.8, report


@pytest.mark.slow
def test_demo_space_smile_direction_grows_the_mouth():
    # data/demo/README.md: with a frontal camera framing the face, the mouth + lips area grows at
    # every one of 5 steps (0..3 std along "smile") for 98 % of 50 samples; here 20 samples.
    import numpy as np

    from sofgan_lab.cameras import Camera
    from sofgan_lab.geometry import GeometrySpace
    from sofgan_lab.labels import SOF

    model = SemanticOccupancyField.from_pretrained("demo")
    space = GeometrySpace.load("demo")
    z = space.sample(20, seed=0)
    cam = Camera.from_orbit(0.0, 0.0, image_size=128, target=(0.0, 0.25, 0.0), pixels_per_unit=120)
    mouth = torch.tensor([int(SOF.MOUTH), int(SOF.U_LIP), int(SOF.L_LIP)])
    areas = np.stack([torch.isin(model.render(space.edit(z, "smile", float(a)), cam).labels, mouth)
                      .sum((1, 2)).numpy() for a in np.linspace(0.0, 3.0, 5)], 1)
    growing = (np.diff(areas, axis=1) > 0).all(1).mean()
    assert growing >= 0.9, areas


def test_demo_texture_model_is_small_and_loads_without_pickle():
    import json

    from sofgan_lab.texture import SIWConfig, SIWGenerator

    d = demo_dir("siw")
    size = sum(f.stat().st_size for f in d.iterdir())
    assert size <= 20 * 2**20, f"the demo texture model is {size / 2**20:.1f} MB (limit 20 MB)"
    assert {f.suffix for f in d.iterdir()} <= {".json", ".safetensors"}
    G = SIWGenerator.from_pretrained("demo")
    # the demo preset, grown while training (data/demo/README.md): SPADE from 16², wider at 32-128²
    grown = {**SIWConfig.demo(128).to_dict(), "spade_min": 16}
    grown["channels"] = {**grown["channels"], "32": 128, "64": 64, "128": 32}
    assert G.config.to_dict() == SIWConfig.from_dict(grown).to_dict()
    training = json.loads((d / "training.json").read_text())
    assert training["model_config"] == G.config.to_dict() and training["images_seen"] > 100_000


def _demo_framing() -> str:
    """The named framing of the demo pipeline's default camera (what its models were trained on)."""
    from sofgan_lab.cameras import DEFAULT_TARGET, framing_name

    cam = json.loads((Path(demo_dir("sof")).parent / "pipeline.json").read_text())["camera"]
    name = framing_name(cam.get("target", DEFAULT_TARGET), cam.get("zoom", 1.0))
    assert name is not None, f"data/demo/pipeline.json: camera {cam} has no named framing"
    return name


def test_demo_texture_model_follows_new_segmaps_and_keeps_hair_edits_local(tmp_path):
    # 24 segmaps of heads never seen in training (seed 4); data/demo/README.md reports the mIoU on
    # 300 of them. The bar here is the leakage target and a floor well under the measured mIoU.
    from sofgan_lab.parsing import FaceParser
    from sofgan_lab.synthetic.writers import write_photos
    from sofgan_lab.train import evaluate_siw, load_siw_generator
    from sofgan_lab.train.siw_data import SegmapFolder

    held = write_photos(tmp_path / "held", count=24, size=128, seed=4, with_segmaps=True, workers=2, progress=False,
                        framing=_demo_framing())
    segs = SegmapFolder(held, 128).data
    rep = evaluate_siw(load_siw_generator("demo"), FaceParser.from_pretrained("demo"), segs, seed=0)
    assert rep["leak_outside"] <= 0.02, rep
    assert rep["leak_inside"] >= 0.05, rep        # the hair did change
    assert rep["miou"] >= 0.42, rep
    assert min(rep["per_class"][c] for c in ("background", "cloth", "hair", "skin")) >= 0.7, rep["per_class"]


def test_portrait_framing_of_geometry_samples():
    """Geometry-space samples rendered by the demo SOF frontally at the portrait framing: the face
    (SOF ids 1-10) covers >= 20 % of the frame on average (about 6 % at the official framing) and
    nothing is cut at the top (the hair is in view)."""
    from sofgan_lab.cameras import Camera, framing
    from sofgan_lab.geometry.space import GeometrySpace
    from sofgan_lab.labels import SOF

    sof = SemanticOccupancyField.from_pretrained("demo").eval()
    z = torch.as_tensor(GeometrySpace.load("demo").sample(16, seed=0), dtype=torch.float32)
    fractions = {}
    for name in ("portrait", "official"):
        with torch.no_grad():
            lab = sof.render(z, Camera.from_orbit(0.0, 0.0, image_size=96, **framing(name))).labels
        fractions[name] = float(((lab >= int(SOF.SKIN)) & (lab <= int(SOF.L_LIP))).float().mean())
        if name == "portrait":
            assert not (lab[:, 0] > 0).any(), "the head is cut at the top of the portrait frame"
    assert fractions["portrait"] >= 0.20, fractions
    assert fractions["official"] < 0.10, fractions


def test_portrait_sof_meets_its_targets_on_new_views():
    """data/demo/sof_portrait (the SOF for the portrait framing, to replace data/demo/sof when the
    texture model for that framing ships): <= 5 MB, trained on portrait-framed views, and on views
    it never saw (12 instances x 2 new cameras of seed 11, portrait framing) mIoU >= 0.87 (0.902 on
    100 x 8 views in data/demo/README.md; target 0.90) with every small class present >= 0.45
    (0.67-0.89 there; target 0.60)."""
    d = demo_dir("sof_portrait")
    assert sum(f.stat().st_size for f in d.iterdir()) <= 5 * 2**20
    rep = evaluate_sof_model(d, heldout_views=2, seed=11, instances=12)
    assert rep["framing"] == "portrait" and rep["views"] == 24
    assert rep["miou"] >= 0.87, rep
    small = ("l_brow", "r_brow", "l_ear", "r_ear", "ear_r", "eye_g", "neck_l")
    present = {k: rep["iou"][k] for k in small if rep["iou"][k] is not None}
    assert len(present) >= 5 and min(present.values()) >= 0.45, present
