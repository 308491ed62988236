"""The SageMaker requests of the training pipelines, built from their config keys. No AWS.

The original passed its keys to the SageMaker Python SDK (`Estimator`, `HyperparameterTuner`,
`AutoML`); this builds what the SDK would have sent, with the original's defaults, as the
parts of `CreateTrainingJob`, `CreateHyperParameterTuningJob` and `CreateAutoMLJob` that come
from the config. The blueprint's state machine reads them from one stack parameter (JSON, so
no value becomes template text) and adds the job's name and role itself.
"""

from __future__ import annotations

import json
from typing import Any

from controller.core.config.model import Pipeline, S3Location

DEFAULTS: dict[str, Any] = {
    "instance_type": "ml.m4.xlarge",
    "instance_count": 1,
    "instance_volume_size": 20,
    "encrypt_inner_traffic": True,
    "max_runtime_per_job": 86400,
    "use_spot_instances": True,
    "max_wait_time_spot_instances": 172800,
    "content_type": "csv",
    "s3_data_type": "S3Prefix",
    "data_distribution": "FullyReplicated",
    "data_input_mode": "File",
    "job_max_candidates": 10,
    "total_max_runtime": 2592000,
    "generate_definition_only": False,
}
"""The original's defaults (`lambda_helpers.get_model_training_specifc_params` and
`get_autopilot_specifc_params`)."""

NAME_LIMITS = {
    "model_training_builtin": 63,
    "model_tuner_builtin": 32,
    "model_autopilot_training": 32,
}
"""SageMaker's longest job name per type: tuning and AutoML jobs allow 32 characters."""

JOB_WORDS = {
    "model_training_builtin": "training",
    "model_tuner_builtin": "tuner",
    "model_autopilot_training": "autopilot",
}
"""The middle of the original's default job name, `<model_name>-<word>-<random>`."""

RANGE_TYPES = {
    "continuous": "ContinuousParameterRanges",
    "integer": "IntegerParameterRanges",
    "categorical": "CategoricalParameterRanges",
}


def value(pipeline: Pipeline, key: str) -> Any:
    return pipeline.get(key, DEFAULTS.get(key))


def spot(pipeline: Pipeline) -> bool:
    return bool(value(pipeline, "use_spot_instances"))


def job_base(pipeline: Pipeline) -> str:
    """`job_name`, or the original's default without its random part (a hash replaces it)."""
    given = pipeline.get("job_name")
    return str(given) if given else f"{pipeline.name}-{JOB_WORDS[pipeline.type]}"


def request(pipeline: Pipeline, image: str | None) -> dict[str, Any]:
    """What the config decides of the job's request; `image` for the built-in algorithms."""
    if pipeline.type == "model_autopilot_training":
        return _automl(pipeline)
    job = _training_job(pipeline, str(image))
    if pipeline.type == "model_training_builtin":
        return job
    ranges = dict(pipeline.get("hyperparamaters_ranges"))
    static = {k: v for k, v in job.pop("HyperParameters").items() if k not in ranges}
    return {
        "HyperParameterTuningJobConfig": _tuning(pipeline.get("tuner_configs"), ranges),
        "TrainingJobDefinition": {"StaticHyperParameters": static, **job},
    }


def with_checkpoints(job: dict[str, Any], output: S3Location, name: str) -> dict[str, Any]:
    """Spot training resumes from checkpoints, under the output location as the original
    kept them (`<output>/<job name>/checkpoint`)."""
    if not job.get("EnableManagedSpotTraining"):
        return job
    folder = f"{output.key}/{name}" if output.key else name
    uri = S3Location(output.bucket, f"{folder}/checkpoint").uri
    return {**job, "CheckpointConfig": {"S3Uri": uri}}


def _training_job(pipeline: Pipeline, image: str) -> dict[str, Any]:
    stopping = {"MaxRuntimeInSeconds": int(value(pipeline, "max_runtime_per_job"))}
    if spot(pipeline):
        stopping["MaxWaitTimeInSeconds"] = int(value(pipeline, "max_wait_time_spot_instances"))
    channels = [_channel(pipeline, "train", pipeline.get("training_data"))]
    if pipeline.get("validation_data") is not None:
        channels.append(_channel(pipeline, "validation", pipeline.get("validation_data")))
    return {
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": value(pipeline, "data_input_mode"),
        },
        "HyperParameters": {
            str(k): _text(v) for k, v in dict(pipeline.get("algo_hyperparamaters")).items()
        },
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": _output(pipeline).uri},
        "ResourceConfig": {
            "InstanceType": value(pipeline, "instance_type"),
            "InstanceCount": int(value(pipeline, "instance_count")),
            "VolumeSizeInGB": int(value(pipeline, "instance_volume_size")),
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot(pipeline),
        "EnableInterContainerTrafficEncryption": bool(value(pipeline, "encrypt_inner_traffic")),
    }


def _output(pipeline: Pipeline) -> S3Location:
    location: S3Location = pipeline.get("job_output_location")
    return location


def _text(item: Any) -> str:
    """The SDK sends every hyperparameter as Python's `str` of it (True, 0.3, 400)."""
    return str(item)


def _channel(pipeline: Pipeline, name: str, location: S3Location) -> dict[str, Any]:
    source: dict[str, Any] = {
        "S3DataType": value(pipeline, "s3_data_type"),
        "S3Uri": location.uri,
        "S3DataDistributionType": value(pipeline, "data_distribution"),
    }
    names = pipeline.get("attribute_names")
    if names:
        source["AttributeNames"] = list(names)
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": source},
        "ContentType": value(pipeline, "content_type"),
        "CompressionType": pipeline.get("compression_type") or "None",
        "RecordWrapperType": pipeline.get("data_record_wrapping") or "None",
    }


def _tuning(configs: Any, ranges: dict[str, Any]) -> dict[str, Any]:
    """`tuner_configs` as the SDK's HyperparameterTuner would send them (its defaults)."""
    parameter_ranges: dict[str, list[dict[str, Any]]] = {v: [] for v in RANGE_TYPES.values()}
    for name, (kind, bounds) in ranges.items():
        if kind == "categorical":
            entry: dict[str, Any] = {"Name": name, "Values": [str(b) for b in bounds]}
        else:
            low, high = bounds
            entry = {"Name": name, "MinValue": str(low), "MaxValue": str(high)}
            entry["ScalingType"] = "Auto"
        parameter_ranges[RANGE_TYPES[kind]].append(entry)
    return {
        "Strategy": configs.get("strategy", "Bayesian"),
        "HyperParameterTuningJobObjective": {
            "Type": configs.get("objective_type", "Maximize"),
            "MetricName": configs["objective_metric_name"],
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": int(configs.get("max_jobs", 1)),
            "MaxParallelTrainingJobs": int(configs.get("max_parallel_jobs", 1)),
        },
        "ParameterRanges": parameter_ranges,
        "TrainingJobEarlyStoppingType": configs.get("early_stopping_type", "Off"),
    }


def _automl(pipeline: Pipeline) -> dict[str, Any]:
    source = {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": pipeline.get("training_data").uri}
    }
    channel: dict[str, Any] = {
        "DataSource": source,
        "TargetAttributeName": str(pipeline.get("target_attribute")),
    }
    if pipeline.get("compression_type") == "Gzip":
        channel["CompressionType"] = "Gzip"
    found: dict[str, Any] = {
        "InputDataConfig": [channel],
        "OutputDataConfig": {"S3OutputPath": _output(pipeline).uri},
        "AutoMLJobConfig": {
            "CompletionCriteria": {
                "MaxCandidates": int(value(pipeline, "job_max_candidates")),
                "MaxRuntimePerTrainingJobInSeconds": int(value(pipeline, "max_runtime_per_job")),
                "MaxAutoMLJobRuntimeInSeconds": int(value(pipeline, "total_max_runtime")),
            },
            "SecurityConfig": {
                "EnableInterContainerTrafficEncryption": bool(
                    value(pipeline, "encrypt_inner_traffic")
                )
            },
        },
        "GenerateCandidateDefinitionsOnly": bool(value(pipeline, "generate_definition_only")),
    }
    if pipeline.get("job_objective") is not None:
        found["AutoMLJobObjective"] = {"MetricName": str(pipeline.get("job_objective"))}
    return found


def as_text(found: dict[str, Any]) -> str:
    """The request as the stack parameter carries it."""
    return json.dumps(found, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
