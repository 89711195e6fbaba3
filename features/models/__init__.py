from features.models.catalog import (
    Eval,
    InferenceHost,
    Model,
    Source,
    SourceId,
    SourceRelease,
    SourceSet,
    Visibility,
    parse_source_id,
)
from features.models.dashboard import Activation, Feature
from features.models.explanations import (
    Explanation,
    ExplanationModel,
    ExplanationScore,
    ExplanationScoreModel,
    ExplanationScoreType,
    ExplanationType,
    ScoreStatus,
)
from features.models.imports import ImportedFile, ImportedFileKind, ImportedFileStatus, ImportPanel
from features.models.lists import FeatureList, ListItem
from features.models.similar import CrossSourceSimilarity
from features.models.upstream import EvalType, InferenceHostSource, UpstreamRecord

__all__ = [
    "Activation", "CrossSourceSimilarity", "Eval", "EvalType", "Explanation", "ExplanationModel",
    "ExplanationScore", "ExplanationScoreModel", "ExplanationScoreType", "ExplanationType", "Feature",
    "FeatureList",
    "ImportPanel", "ImportedFile", "ImportedFileKind", "ImportedFileStatus", "InferenceHost",
    "InferenceHostSource", "ListItem", "Model", "ScoreStatus", "Source", "SourceId", "SourceRelease",
    "SourceSet", "UpstreamRecord", "Visibility", "parse_source_id",
]
