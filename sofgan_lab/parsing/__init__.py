"""A synthetic face parser: RGB portrait -> SOF-20 label map (for the segmentation-mIoU metric).

:class:`FaceParser` (a compact U-Net, :class:`FaceParserConfig`) is trained on the synthetic
photos and their segmaps by :func:`train_parser` (:mod:`sofgan_lab.parsing.train`) and measured by
:func:`evaluate_parser`. ``FaceParser.from_pretrained("demo")`` loads the shipped demo parser.
"""
from .model import FaceParser, FaceParserConfig

__all__ = ["FaceParser", "FaceParserConfig", "ParserTrainConfig", "ParserTrainResult", "train_parser",
           "evaluate_parser", "PhotoSet", "degrade"]

_TRAIN_NAMES = ("ParserTrainConfig", "ParserTrainResult", "train_parser", "evaluate_parser", "PhotoSet", "degrade")


def __getattr__(name):  # the trainer (and its imports: PIL, tqdm, the metrics) load on use
    if name in _TRAIN_NAMES:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
