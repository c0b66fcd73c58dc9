"""Metrics: segmentation (confusion matrix, IoU, mIoU) and the paper's §6.3 evaluation.

* :mod:`.results` — :class:`MetricResult` (mean, standard error, n, provenance, paper comparability)
* :mod:`.perceptual` — :func:`load_lpips` (offline LPIPS alex/vgg/squeeze)
* :mod:`.diversity` — :func:`lpips_diversity` (Table 2), :func:`ssg_diversity` (Table 3)
* :mod:`.consistency` — :func:`fvv_identity` (Table 3)
* :mod:`.frechet` — :func:`frechet_distance`, :func:`kid`, :class:`FeatureStats`, :func:`fid` (Fig. 7)
* :mod:`.features` — :class:`InceptionFeatures` (FID Inception), :class:`ParserFeatures`, ...
* :mod:`.sof_space` — :func:`representability` (Fig. 9)
* :mod:`.tables` — :func:`metric_table` (the bar chart is :func:`sofgan_lab.widgets.plot_metrics`)

Everything but the segmentation metrics loads on first use (torch, lpips, pandas are not imported
by ``import sofgan_lab.metrics``).
"""
from .segmentation import ConfusionMatrix, miou

_LAZY = {
    "MetricResult": "results", "MetricSpec": "results", "METRICS": "results", "register_metric": "results",
    "make_provenance": "results",
    "LPIPSMetric": "perceptual", "load_lpips": "perceptual", "backbone_weights_path": "perceptual",
    "lpips_diversity": "diversity", "ssg_diversity": "diversity",
    "fvv_identity": "consistency",
    "frechet_distance": "frechet", "kid": "frechet", "FeatureStats": "frechet", "compute_features": "frechet",
    "fid": "frechet",
    "FeatureExtractor": "features", "InceptionFeatures": "features", "load_inception": "features",
    "ParserFeatures": "features", "as_feature_extractor": "features",
    "representability": "sof_space",
    "metric_table": "tables", "table_to_markdown": "tables", "table_to_latex": "tables", "table_to_csv": "tables",
    "PipelineSampler": "sampling",
}

__all__ = ["ConfusionMatrix", "miou", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
