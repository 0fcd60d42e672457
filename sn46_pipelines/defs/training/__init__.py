"""The training domain: the price model trained through Pipes, and the inference pin it may move."""

import dagster as dg

from .assets import inference_pin, price_model
from .jobs import GPU_TAG, deploy_job, train_job
from .launcher import TrainingLauncher

__all__ = [
    "GPU_TAG",
    "TrainingLauncher",
    "build_defs",
    "deploy_job",
    "inference_pin",
    "price_model",
    "train_job",
]


def build_defs() -> dg.Definitions:
    """The domain's assets and hand-launched jobs; ``training_launcher`` says where training runs."""
    return dg.Definitions(
        assets=[price_model, inference_pin],
        jobs=[train_job, deploy_job],
        resources={"training_launcher": TrainingLauncher()},
    )
