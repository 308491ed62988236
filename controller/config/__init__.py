"""Loading, validating and modelling mlops-config.json."""

from controller.config.load import LoadResult, load
from controller.config.model import Config, Pipeline, S3Location, Settings

__all__ = ["Config", "LoadResult", "Pipeline", "S3Location", "Settings", "load"]
