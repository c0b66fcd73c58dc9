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
    assert size <= 5 * 2**20, f"the demo SOF is {size / 2**20:.1f} MB (limit 5 MB)"
    m = SemanticOccupancyField.from_pretrained("demo")
    assert m.config.num_instances == 100 and m.latents.weight.shape == (100, m.config.latent_dim)


def test_demo_pipeline_records_the_portrait_framing_and_the_trained_poses():
    """pipeline.json: the default camera frames a portrait (the framing the demo SOF was trained at,
    recorded in its training.json), the pose range is the trained one, styles are drawn untruncated."""
    from sofgan_lab.cameras import TRAINED_PITCH_RANGE, TRAINED_YAW_RANGE
    from sofgan_lab.pipeline import SofGAN

    pipe = SofGAN.from_pretrained("demo")
    assert pipe.framing_name == "portrait", pipe.default_camera
    training = json.loads((Path(demo_dir("sof")) / "training.json").read_text())
    assert '"framing": "portrait"' in json.dumps(training), "the demo SOF's training data is not portrait-framed"
    assert tuple(pipe.pose_range["yaw"]) == TRAINED_YAW_RANGE and tuple(pipe.pose_range["pitch"]) == TRAINED_PITCH_RANGE
    assert pipe.truncation == 1.0


@pytest.mark.slow
def test_demo_space_smile_direction_grows_the_mouth():
    # data/demo/README.md: with a frontal camera framing the face, the mouth + lips area is larger at
    # 3 std along "smile" than at 0 for every one of 50 samples, and grows at every one of 5 steps
    # (0..3 std) for 90 % of them; here 20 samples (85 % there).
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
    assert (areas[:, -1] > areas[:, 0]).all() and growing >= 0.75, areas


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


def test_demo_texture_model_meets_its_targets_on_new_segmaps(tmp_path):
    """The issue-17 targets on 48 photos and segmaps of heads never seen in training (seed 4), at the
    demo framing, with the demo parser; data/demo/README.md reports them on 300 (mIoU 0.87, glasses
    0.93, colour-diversity ratios hair / skin / cloth / background 0.96 / 1.21 / 1.69 / 1.52, mixer
    ΔE ratio 0.88, leak 0.005). The bars are the targets with a margin for the smaller sample."""
    from sofgan_lab.parsing import FaceParser
    from sofgan_lab.synthetic.writers import write_photos
    from sofgan_lab.train import evaluate_siw, load_siw_generator
    from sofgan_lab.train.siw_data import ImageFolder, SegmapFolder

    held = write_photos(tmp_path / "held", count=48, size=128, seed=4, with_segmaps=True, workers=2, progress=False,
                        framing=_demo_framing())
    segs = SegmapFolder(held, 128).data
    images = ImageFolder(held, 128)
    photos = images.batch(torch.arange(len(images)))                 # [-1, 1]
    rep = evaluate_siw(load_siw_generator("demo"), FaceParser.from_pretrained("demo"), segs, seed=0,
                       photos=photos, photo_segmaps=segs, n_styles=32, n_geometries=4)
    assert rep["leak_outside"] <= 0.01, rep                      # target 0.01
    assert rep["leak_inside"] >= 0.05, rep                       # the hair did change
    assert rep["miou"] >= 0.75, rep                              # target 0.70
    assert rep["per_class"]["eye_g"] >= 0.6, rep["per_class"]     # target 0.5: glasses are drawn
    assert min(rep["per_class"][c] for c in ("background", "cloth", "hair", "skin")) >= 0.85, rep["per_class"]
    assert min(rep["diversity_ratio"].values()) >= 0.75, rep["diversity_ratio"]   # target 0.8 (on 300: >= 0.96)
    assert rep["mix_delta_e_ratio"] >= 0.7, rep                  # target 0.8 (on 300: 0.88)


def test_portrait_framing_of_geometry_samples():
    """Geometry-space samples rendered by the demo pipeline in its default frontal view: the face
    (SOF ids 1-10) covers >= 20 % of the frame on average (0.236 on 32 samples in data/demo/README.md;
    about 6 % at the official framing) and nothing is cut at the top (the hair is in view)."""
    from sofgan_lab.cameras import Camera, framing
    from sofgan_lab.labels import SOF
    from sofgan_lab.pipeline import SofGAN

    pipe = SofGAN.from_pretrained("demo")
    z = torch.as_tensor(pipe.space.sample(16, seed=0), dtype=torch.float32)
    fractions = {}
    for name, cam in (("default", pipe.camera(0.0, 0.0)),
                      ("official", Camera.from_orbit(0.0, 0.0, image_size=pipe.image_size, **framing("official")))):
        with torch.no_grad():
            lab = pipe.sof.eval().render(z, cam).labels
        fractions[name] = float(((lab >= int(SOF.SKIN)) & (lab <= int(SOF.L_LIP))).float().mean())
        if name == "default":
            assert not (lab[:, 0] > 0).any(), "the head is cut at the top of the default frame"
    assert fractions["default"] >= 0.20, fractions
    assert fractions["official"] < 0.10, fractions


def test_demo_sof_meets_its_targets_on_new_views():
    """The demo SOF on views it never saw (12 instances x 2 new cameras of seed 11, portrait framing,
    within the trained poses): mIoU >= 0.87 (0.902 on 100 x 8 views in data/demo/README.md; target
    0.90) with every small class present >= 0.45 (0.67-0.89 there; target 0.60)."""
    d = demo_dir("sof")
    rep = evaluate_sof_model(d, heldout_views=2, seed=11, instances=12)
    assert rep["framing"] == "portrait" and rep["views"] == 24
    assert rep["miou"] >= 0.87, rep
    small = ("l_brow", "r_brow", "l_ear", "r_ear", "ear_r", "eye_g", "neck_l")
    present = {k: rep["iou"][k] for k in small if rep["iou"][k] is not None}
    assert len(present) >= 5 and min(present.values()) >= 0.45, present
