"""The texture branch: SIW-StyleGAN generator, discriminator and region styles (paper §5)."""
from .discriminator import SIWDiscriminator
from .generator import OFFICIAL_CHANNELS, SIWConfig, SIWGenerator, SIWOutput, style_mixing_latents
from .regions import (
    STYLE_GROUPS, class_style_weights, group_style_weights, random_two_style_weights, region_map_from_weights,
    two_style_weights,
)

__all__ = [
    "SIWConfig", "SIWGenerator", "SIWOutput", "SIWDiscriminator", "OFFICIAL_CHANNELS", "style_mixing_latents",
    "STYLE_GROUPS", "two_style_weights", "group_style_weights", "class_style_weights",
    "random_two_style_weights", "region_map_from_weights",
]
