"""The embedded world: procedural 3D semantic portraits with known attributes.

- :mod:`.attributes`: the named attributes, their distributions, seeded sampling.
- :mod:`.head`: a head as a labelled union of signed-distance primitives (SOF-20 labels).
- :mod:`.render`: exact sphere-traced label maps and depth at any camera.
- :mod:`.photo`: shaded "photos" with per-region texture styles.
- :mod:`.writers`: the SOF training layout and photo folders, written atomically.
"""
from __future__ import annotations

from .attributes import (ATTRIBUTE_NAMES, ATTRIBUTES, AttributeSpec, default_attributes,
                         instance_rng, sample_attributes, synthetic_attributes, validate_attributes)
from .head import Head, build_head
from .photo import Photo, TextureStyle, render_photo, sample_style
from .render import SegmapRender, render_segmap
from .writers import write_photos, write_scans

__all__ = ["ATTRIBUTES", "ATTRIBUTE_NAMES", "AttributeSpec", "default_attributes", "instance_rng",
           "sample_attributes", "validate_attributes", "Head", "build_head", "SegmapRender",
           "render_segmap", "Photo", "TextureStyle", "render_photo", "sample_style", "write_scans",
           "write_photos", "synthetic_attributes"]
