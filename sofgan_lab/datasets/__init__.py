"""Real datasets: CelebAMask-HQ label maps and FFHQ / CelebA-HQ photo folders for training, plus
offline stand-ins with the same layouts.

- :mod:`.celebamask`: read CelebAMask-HQ's per-part masks into CelebAMask-19 label maps
  (:func:`read_celebamask_labels`) and write segmap folders in SOF-20 / SofGAN-17 / CelebAMask-19
  ids for :class:`~sofgan_lab.train.siw_data.SegmapFolder` (:func:`build_segmap_folder`).
- :mod:`.images`: FFHQ's nested layout, resized photo folders (:func:`build_image_folder`) and
  :class:`StreamingImageFolder` (decode on demand instead of holding every image in memory).
- :mod:`.standin`: tiny CelebAMask-HQ- and FFHQ-shaped trees made from the synthetic world
  (:func:`make_celebamask_standin`, :func:`make_ffhq_standin`), for tests and notebooks.

Used paper parts: §5 (unpaired training data: photos and segmaps need not match) and §6
(CelebAMask-HQ segmaps, FFHQ photos).
"""
from __future__ import annotations

from .celebamask import (CELEBAHQ_IMAGE_DIR, CELEBAMASK_MASK_DIR, CELEBAMASK_PARTS, MASKS_PER_FOLDER,
                         SEGMAP_FOLDER_FORMAT, build_segmap_folder, celebamask_image_path, celebamask_indices,
                         celebamask_mask_path, compose_masks, read_celebamask_labels, resolve_celebamask_root)
from .images import (FFHQ_IMAGE_DIR, IMAGE_BYTES_PER_1K, IMAGE_FOLDER_FORMAT, StreamingImageFolder,
                     build_image_folder, ffhq_images, load_rgb, source_images)
from .standin import (SOF20_TO_CELEBAMASK19, STANDIN_MARKER, make_celebamask_standin, make_ffhq_standin,
                      sof_to_celebamask)

__all__ = [
    "CELEBAHQ_IMAGE_DIR", "CELEBAMASK_MASK_DIR", "CELEBAMASK_PARTS", "MASKS_PER_FOLDER", "SEGMAP_FOLDER_FORMAT",
    "build_segmap_folder", "celebamask_image_path", "celebamask_indices", "celebamask_mask_path",
    "compose_masks", "read_celebamask_labels", "resolve_celebamask_root",
    "FFHQ_IMAGE_DIR", "IMAGE_BYTES_PER_1K", "IMAGE_FOLDER_FORMAT", "StreamingImageFolder", "build_image_folder",
    "ffhq_images", "load_rgb", "source_images",
    "SOF20_TO_CELEBAMASK19", "STANDIN_MARKER", "make_celebamask_standin", "make_ffhq_standin",
    "sof_to_celebamask",
]
