"""The geometry branch: the semantic occupancy field (SOF) and its rendering."""
from .sof import MISS_LOGIT, RayRender, SemanticOccupancyField, SOFConfig, SOFRender, rays_as_bundle
from .volume import DepthSlice, Mesh, depth_slice, extract_mesh, grid_axes, sample_grid
from .space import REGIONS, EditResult, GeometrySpace, interpolate, region_ids, restricted_edit
from .inversion import InversionResult, invert_segmap
from .rendering import (EvaluationCount, ProxyGrid, RenderOutput, count_field_evaluations, depth_prior,
                        proxy_grid, render_adaptive, render_dense, render_rays, render_with_prior)

__all__ = ["MISS_LOGIT", "SemanticOccupancyField", "SOFConfig", "SOFRender", "RayRender", "rays_as_bundle",
           "sample_grid", "grid_axes", "extract_mesh", "Mesh", "depth_slice", "DepthSlice",
           "render_dense", "render_adaptive", "render_with_prior", "depth_prior", "proxy_grid", "ProxyGrid",
           "render_rays", "RenderOutput", "EvaluationCount", "count_field_evaluations",
           "GeometrySpace", "REGIONS", "region_ids", "interpolate", "restricted_edit", "EditResult",
           "invert_segmap", "InversionResult"]
