"""Loading, validating and modelling mlops-config.json."""

from controller.core.config.load import LoadResult, load
from controller.core.config.model import Config, Pipeline, S3Location, Settings

__all__ = ["Config", "LoadResult", "Pipeline", "S3Location", "Settings", "load"]
