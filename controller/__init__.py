"""mlops-controller: a GitOps controller for SageMaker ML pipelines."""

__version__ = "0.1.0"
