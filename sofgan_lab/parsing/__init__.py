"""A synthetic face parser: RGB portrait -> SOF-20 label map (for the segmentation-mIoU metric).

:class:`FaceParser` (a compact U-Net, :class:`FaceParserConfig`) is trained on the synthetic
photos and their segmaps by :func:`sofgan_lab.train.parser_trainer.train_parser` (every trainer lives
in :mod:`sofgan_lab.train`) and measured by ``evaluate_parser`` there.
``FaceParser.from_pretrained("demo")`` loads the shipped demo parser.
"""
from .model import FaceParser, FaceParserConfig

__all__ = ["FaceParser", "FaceParserConfig"]
