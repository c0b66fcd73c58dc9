"""Applications built on the SofGAN pipeline (paper §6.4): free-view video, morphs and edits, projection,
and exports (portrait + segmap PNGs, turntable videos, coloured SOF meshes as PLY/OBJ/GLB)."""
from .export import MESH_FORMATS, export_mesh, save_portrait, turntable
from .morph import expression_edit, geometry_morph, regional_style_morph, style_morph
from .projection import GeometryProjection, TextureProjection, project_geometry, project_texture
from .video import PATHS, Frames, free_view

__all__ = ["Frames", "free_view", "PATHS", "geometry_morph", "style_morph", "regional_style_morph",
           "expression_edit", "project_texture", "TextureProjection", "project_geometry", "GeometryProjection",
           "turntable", "save_portrait", "export_mesh", "MESH_FORMATS"]
