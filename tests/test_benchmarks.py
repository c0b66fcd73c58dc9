"""The benchmark runner (``python -m benchmarks``) and the case context API."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a top-level folder, not part of the installed package
    sys.path.insert(0, str(REPO))

from benchmarks.cases import Context, Measured, register  # noqa: E402

MACHINE_KEYS = {"platform", "python", "cpu_count", "cpu_model", "memory_total_bytes", "torch",
                "torch_threads", "device", "device_name"}
MEASURED_KEYS = {"kind", "name", "unit", "repeats", "warmup", "min", "median", "mean", "items", "items_per_s"}


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_quick_run_writes_json_and_summary(tmp_path):
    out = tmp_path / "results"
    proc = _bench("--quick", "images_roundtrip", "--repeats", "2", "--out", str(out))
    assert proc.returncode == 0, f"runner failed:\n{proc.stdout}\n{proc.stderr}"

    record = json.loads((out / "images_roundtrip.json").read_text())
    assert record["case"] == "images_roundtrip"
    assert record["description"]
    assert record["timestamp"].endswith("Z") and record["timestamp"][:2] == "20"
    assert record["quick"] is True
    assert record["device"] == "cpu"
    assert MACHINE_KEYS <= set(record["machine"]), set(record["machine"])
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["torch"]

    figures = record["figures"]
    assert "roundtrip" in figures, list(figures)
    for name, fig in figures.items():
        assert set(fig) == MEASURED_KEYS, (name, set(fig))
        assert fig["kind"] == "measured" and fig["name"] == name
        assert fig["repeats"] == 2, "--repeats must override the case's repeat count"
        for key in ("min", "median", "mean", "items_per_s"):
            assert _positive_finite(fig[key]), (name, key, fig[key])
        assert fig["min"] <= fig["median"]
    rt = figures["roundtrip"]
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[rt["unit"]]
    assert rt["items_per_s"] == pytest.approx(rt["items"] / (rt["median"] / scale), rel=1e-9)

    summary = (out / "SUMMARY.md").read_text()
    assert "| images_roundtrip | roundtrip |" in summary, summary
    assert "| images_roundtrip |" in proc.stdout  # the CLI prints this run's table


def test_unknown_case_exits_2_and_lists_known(tmp_path):
    proc = _bench("no_such_case", "--out", str(tmp_path))
    assert proc.returncode == 2, proc
    assert "no_such_case" in proc.stderr and "images_roundtrip" in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("*.json"))


def test_list_shows_cases():
    proc = _bench("--list")
    assert proc.returncode == 0, proc.stderr
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("images_roundtrip")), None)
    assert line is not None, proc.stdout
    assert "tensor_to_uint8" in line  # with its description


def test_context_measure_and_record():
    calls = []
    ctx = Context(quick=True)
    fig = ctx.measure("noop", lambda: calls.append(1), repeats=4, warmup=2, unit="ms", items=8)
    assert isinstance(fig, Measured) and len(calls) == 6
    assert fig.repeats == 4 and fig.unit == "ms" and fig.min <= fig.median
    assert fig.items_per_s == pytest.approx(8 / (fig.median / 1e3))
    rec = ctx.record("ratio", 2.5, "x")
    assert rec.value == 2.5 and list(ctx.figures) == ["noop", "ratio"]
    assert ctx.figures_as_json()["ratio"] == {"kind": "recorded", "name": "ratio", "value": 2.5, "unit": "x"}

    with pytest.raises(ValueError, match="already"):
        ctx.record("ratio", 1.0, "x")
    with pytest.raises(ValueError, match="unit"):
        ctx.measure("bad_unit", lambda: None, unit="hours")
    with pytest.raises(ValueError, match="repeats"):
        ctx.measure("bad_repeats", lambda: None, repeats=0)
    with pytest.raises(ValueError, match="value"):
        ctx.record("nan", float("nan"), "x")


def test_context_repeats_override():
    ctx = Context(repeats=3)
    calls = []
    fig = ctx.measure("noop", lambda: calls.append(1), repeats=50, warmup=0)
    assert fig.repeats == 3 and len(calls) == 3


def test_register_rejects_a_second_case_with_the_same_name():
    import benchmarks.cases as cases

    try:

        @register("_test_dup_case", description="first")
        def first(ctx):  # pragma: no cover - never run
            pass

        with pytest.raises(ValueError, match="registered twice"):

            @register("_test_dup_case", description="second")
            def second(ctx):  # pragma: no cover - never run
                pass

    finally:
        cases._REGISTRY.pop("_test_dup_case", None)


# ---------------------------------------------------------------------------------- issue 21: roofline
def test_roofline_quick_run_reports_finite_figures(tmp_path):
    out = tmp_path / "results"
    proc = _bench("--quick", "roofline", "--repeats", "1", "--out", str(out))
    assert proc.returncode == 0, f"runner failed:\n{proc.stdout}\n{proc.stderr}"
    figures = json.loads((out / "roofline.json").read_text())["figures"]
    for name in ("matmul_peak_gflops", "siw_demo_32_b1_k1_gflop", "siw_demo_32_b1_k2_s", "siw_demo_32_b1_k2_ref_s",
                 "siw_demo_32_b1_k2_gflops", "siw_demo_32_b1_k2_peak_fraction", "siw_demo_32_b1_k2_speedup",
                 "sof_tiny_mflop_per_ray", "sof_tiny_dense_16_us_per_ray", "sof_tiny_dense_16_peak_fraction",
                 "sof_tiny_dense_16_speedup", "sof_tiny_adaptive_16_speedup"):
        fig = figures.get(name)
        assert fig is not None, (name, sorted(figures))
        value = fig["value"] if fig["kind"] == "recorded" else fig["min"]
        assert _positive_finite(value), (name, fig)
    # today's outputs equal the reference's (issue 21: float32 unchanged to <= 1e-5)
    for name in ("siw_demo_32_b1_k1_max_abs_diff", "siw_demo_32_b1_k2_max_abs_diff",
                 "sof_tiny_dense_16_max_abs_diff", "sof_tiny_adaptive_16_max_abs_diff"):
        assert 0 <= figures[name]["value"] <= 1e-5, (name, figures[name])


@pytest.mark.parametrize("batch, styles, mode", [(1, 1, "exact"), (2, 2, "exact"), (2, 2, "fast"), (1, 3, "exact")])
def test_siw_flop_count_equals_torch_flop_counter(batch, styles, mode):
    """The FLOPs counted from layer shapes equal torch's count of the reference forward's matmuls and
    convolutions (demo widths at 64 px; a wrong term in :func:`benchmarks.flops.siw_flops` fails)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.flops import siw_flops
    from benchmarks.reference.siw import ReferenceSIWGenerator
    from sofgan_lab.texture import SIWConfig

    cfg = SIWConfig.demo(64)
    torch.manual_seed(0)
    g = ReferenceSIWGenerator(cfg).eval()
    seg = torch.randint(0, 17, (batch, 64, 64))
    z = torch.randn(batch, styles, cfg.style_dim)
    kw = {} if styles == 1 else {"class_weights": torch.rand(batch, 17, styles).softmax(-1), "mode": mode}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        g(seg, z, **kw)
    assert siw_flops(cfg, batch, styles, mode).total == counter.get_total_flops()


def test_sof_flop_count_equals_torch_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.flops import sof_hyper_flops, sof_ray_flops
    from benchmarks.reference.sof import ReferenceSOF
    from sofgan_lab.geometry import SOFConfig

    cfg = SOFConfig(latent_dim=16, hyper_dim=24, phi_dim=32, marcher_dim=40, classifier_dim=48, march_steps=3)
    m = ReferenceSOF(cfg).eval()
    o = torch.randn(1, 50, 3) * 3
    d = torch.nn.functional.normalize(-o, dim=-1)
    z = torch.randn(1, 16)
    with torch.no_grad():
        with FlopCounterMode(display=False) as hyper:
            theta = m.hyper_weights(z)
        with FlopCounterMode(display=False) as rays:
            m.classify(theta, m.march(theta, o, d))
    assert hyper.get_total_flops() == sof_hyper_flops(cfg)
    assert rays.get_total_flops() == 50 * sof_ray_flops(cfg)


def test_portrait_path_quick_run_reports_finite_figures(tmp_path):
    out = tmp_path / "results"
    proc = _bench("--quick", "portrait_path", "--repeats", "1", "--out", str(out))
    assert proc.returncode == 0, f"runner failed:\n{proc.stdout}\n{proc.stderr}"
    figures = json.loads((out / "portrait_path.json").read_text())["figures"]
    for name in ("portrait_ms", "portrait_ref_ms", "portrait_speedup", "sof_render_ms", "sof_render_ref_ms",
                 "siw_ms", "siw_ref_ms", "siw_speedup"):
        fig = figures[name]
        assert _positive_finite(fig["value"] if fig["kind"] == "recorded" else fig["min"]), (name, fig)
    assert 0 <= figures["portrait_max_abs_diff"]["value"] <= 1e-5, figures["portrait_max_abs_diff"]
