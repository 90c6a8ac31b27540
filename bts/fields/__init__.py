"""Density fields: a 3D point and encoded views in, a density out."""

from bts.fields.encoding import PositionalEncoding, inverse_depth_code
from bts.fields.mlp import MLP
from bts.fields.single_view import DensityOutput, SingleViewField
from bts.fields.tokens import EncodedViews, ViewTokens, project_to_views, sample_features, view_tokens

__all__ = ["PositionalEncoding", "inverse_depth_code", "MLP", "DensityOutput", "SingleViewField", "EncodedViews",
           "ViewTokens", "project_to_views", "sample_features", "view_tokens"]
