"""The Clarify analysis configurations of bias and explainability monitors.

Built the way the SageMaker Python SDK builds them for `ModelBiasMonitor.suggest_baseline` and
`ModelExplainabilityMonitor.suggest_baseline` (and the original orchestrator calls those):

- the baseline job reads one `analysis_config.json` (dataset type, headers and label, the bias
  or SHAP settings, the methods, and a `predictor` that makes Clarify start a temporary shadow
  endpoint from the endpoint's model, so the production endpoint and its data capture are left
  alone);
- the monitoring job reads a separate, smaller config (`ConfigUri`): captured data has no header
  row, so it carries the headers (bias: with the label; explainability: features only, plus
  the shadow-endpoint predictor), while the prediction attributes and the probability threshold
  go to the job definition's `EndpointInput`.

Two values are only known in the account: the dataset's header row (the original reads the
first line of the baseline file and takes its first column as the label) and the name of the
model behind the endpoint. The baseline state machine adds them at run time; everything else
is computed here, offline, and stored as one JSON document in the assets bucket, keyed by its
hash (a CloudFormation parameter holds at most 4,096 bytes; a SHAP baseline alone can be more).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from controller.core.config.model import Pipeline

CSV = "text/csv"
REPORT = {"name": "report", "title": "Analysis Report"}
SHAP_DEFAULTS = {"use_logit": False, "save_local_shap_values": True}
"""The SDK's SHAPConfig always writes these two; the original passed the config through it."""

KEY_PREFIX = "mlops-controller/analysis"
"""Where the documents live in the assets bucket: `<prefix>/<sha256>.json`."""


@dataclass(frozen=True)
class Upload:
    """An object the applier writes to the assets bucket before the stack that reads it."""

    key: str
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class AnalysisParts:
    """What render knows of the two configs; the state machine merges in headers, label and
    the model name (`predictor.model_name`), keeping a key written here when both have it."""

    baseline: dict[str, Any]
    monitor: dict[str, Any]
    baseline_predictor: dict[str, Any]
    monitor_predictor: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "monitor": self.monitor,
            "baseline_predictor": self.baseline_predictor,
            "monitor_predictor": self.monitor_predictor,
        }

    def upload(self) -> Upload:
        body = json.dumps(self.document(), sort_keys=True, separators=(",", ":")).encode()
        return Upload(f"{KEY_PREFIX}/{hashlib.sha256(body).hexdigest()}.json", body)


def analysis_parts(pipeline: Pipeline) -> AnalysisParts:
    predictor = {
        "instance_type": str(pipeline.get("instance_type")),
        "initial_instance_count": 1,
        "content_type": CSV,
        "accept_type": CSV,
    }
    if pipeline.kind.monitor == "model_bias":
        return _bias(pipeline, predictor)
    return _explainability(pipeline, predictor)


def _bias(pipeline: Pipeline, predictor: dict[str, Any]) -> AnalysisParts:
    section = bias_section(pipeline.get("bias_config"))
    label = model_predicted_label(pipeline)
    threshold = label.pop("probability_threshold", None)
    baseline: dict[str, Any] = {
        "dataset_type": CSV,
        **section,
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "report": REPORT,
        },
    }
    if threshold is not None:
        baseline["probability_threshold"] = float(threshold)
    monitor = {k: v for k, v in section.items() if k in _BIAS_MONITOR_KEYS}
    return AnalysisParts(baseline, monitor, {**predictor, **label}, {})


_BIAS_MONITOR_KEYS = frozenset(
    {"label_values_or_threshold", "facet", "group_variable", "headers", "label"}
)
"""What a bias monitoring config may hold (the rest goes to the job's EndpointInput)."""


def _explainability(pipeline: Pipeline, predictor: dict[str, Any]) -> AnalysisParts:
    shap = {**SHAP_DEFAULTS, **dict(pipeline.get("shap_config"))}
    baseline_predictor = dict(predictor)
    scores = pipeline.get("model_scores")
    if scores is not None:
        baseline_predictor["label"] = scores
    baseline = {"dataset_type": CSV, "methods": {"shap": shap, "report": REPORT}}
    return AnalysisParts(baseline, {"methods": {"shap": shap}}, baseline_predictor, predictor)


def bias_section(bias_config: Any) -> dict[str, Any]:
    """The SDK's BiasConfig keywords as the analysis-config keys Clarify reads; any other key
    is taken as an analysis-config key already (a `label` column when it is not the first)."""
    bias = dict(bias_config)
    names = bias.pop("facet_name", None)
    values = bias.pop("facet_values_or_threshold", None)
    if isinstance(names, list):
        facets = [{"name_or_index": name} for name in names]
        for facet, value in zip(facets, values or [], strict=False):
            if value is not None:
                facet["value_or_threshold"] = value
    else:
        facets = [{"name_or_index": names}]
        if values is not None:
            facets[0]["value_or_threshold"] = values
    section: dict[str, Any] = {"facet": facets}
    if "group_name" in bias:
        section["group_variable"] = bias.pop("group_name")
    return {**section, **bias}


def model_predicted_label(pipeline: Pipeline) -> dict[str, Any]:
    """ModelPredictedLabelConfig: label, probability and label_headers describe the model's
    output (the predictor); probability_threshold is for the caller to place."""
    config = pipeline.get("model_predicted_label_config") or {}
    return {
        k: config[k]
        for k in ("label", "probability", "label_headers", "probability_threshold")
        if config.get(k) is not None
    }


def endpoint_attributes(pipeline: Pipeline) -> dict[str, str]:
    """A job definition's EndpointInput attributes (empty: not set). As the SDK backfills
    them from the baseline: a bias monitor's predicted label and probability come from its
    model_predicted_label_config, an explainability monitor's from model_scores; an explicit
    `monitor_*_attribute` key wins."""
    inference = pipeline.get("monitor_inference_attribute")
    probability = pipeline.get("monitor_probability_attribute")
    if pipeline.kind.monitor == "model_bias":
        label = model_predicted_label(pipeline)
        inference = _first(inference, label.get("label"))
        probability = _first(probability, label.get("probability"))
    elif pipeline.kind.monitor == "model_explainability":
        inference = _first(inference, pipeline.get("model_scores"))
    return {
        "MonitorInferenceAttribute": "" if inference is None else str(inference),
        "MonitorProbabilityAttribute": "" if probability is None else str(probability),
        "FeaturesAttribute": str(pipeline.get("features_attribute") or ""),
    }


def probability_threshold(pipeline: Pipeline) -> float | None:
    """The threshold a monitoring job applies to the predicted probability, if any."""
    if pipeline.kind.monitor == "model_bias":
        value = model_predicted_label(pipeline).get("probability_threshold")
    else:
        value = pipeline.get("probability_threshold_attribute")
    return None if value is None else float(value)


def _first(*candidates: Any) -> Any:
    return next((value for value in candidates if value is not None and value != ""), None)
