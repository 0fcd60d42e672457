"""Where ``price_model``'s training process runs: a local child process, a GPU pod or an ECS task.

The choice is per deployment (``SN46_TRAINING_LAUNCHER`` and the variables
in :mod:`sn46_pipelines.deploy.settings`), read when a training run starts,
so one code location serves a laptop, a Kubernetes cluster and ECS, and
loading it never needs a cluster. The pod spec and the task definition are
built by :mod:`sn46_pipelines.deploy`; this resource only hands them to the
matching Dagster Pipes client. Whichever runs it, the child is the same
``sn46_pipelines.pricemodel.pipes_train`` and reports back through Pipes.
"""

import os
import sys
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from ...config import ConfigError, Settings, load_settings
from ...deploy import ecs, k8s
from ...deploy.settings import LaunchSettings, resolve_launch_settings
from ...deploy.training import CONTAINER_NAME, container_environment, require_remote_stores

if TYPE_CHECKING:  # dagster-aws's Pipes module takes seconds to import: only ECS training pays for it
    from dagster_aws.pipes import PipesCloudWatchMessageReader

#: The child process of the ``subprocess`` launcher: this interpreter, the Pipes entry point.
LOCAL_TRAIN_COMMAND = [sys.executable, "-m", "sn46_pipelines.pricemodel.pipes_train"]


class TrainingLauncher(dg.ConfigurableResource):
    """Launches the training process and returns its Pipes results.

    ``overrides`` sets launcher settings by name (``{"launcher": "k8s",
    "gpu_count": "2"}``); anything not given comes from its ``SN46_*``
    variable, then the default (``subprocess``).
    """

    overrides: dict[str, str] = Field(
        default={},
        description="Launcher settings by name (launcher, image, gpu_count, k8s_namespace, ecs_cluster...); "
        "unset ones come from SN46_TRAINING_LAUNCHER, SN46_IMAGE, SN46_GPU_COUNT... (docs/scale-out.md).",
    )

    def launch_settings(self) -> LaunchSettings:
        """The settings a run started now would use."""
        return resolve_launch_settings(self.overrides, os.environ)

    def run(
        self, context: dg.AssetExecutionContext, *, data_store: str, model_store: str, config: dict[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        """Train on ``data_store``, commit to ``model_store``; ``config`` is the training config."""
        launch, env = self.launch_settings(), load_settings()
        extras = {"data_store": data_store, "model_store": model_store, "config": config}
        try:
            if launch.launcher == "subprocess":
                return dg.PipesSubprocessClient().run(
                    context=context, command=LOCAL_TRAIN_COMMAND, extras=extras
                )
            require_remote_stores(launch.launcher, {"data_store": data_store, "model_store": model_store})
            run = _run_in_pod if launch.launcher == "k8s" else _run_in_ecs_task
            return run(context, launch, env, extras)
        except Exception:  # each Pipes client raises its own type for "the process failed"
            cause = training_failure(context)
            if cause is None:
                raise
            # The Pipes client's own error only says "exit code 1": the child's exception replaces it.
            raise dg.Failure(description=f"training failed: {cause}") from None


def training_failure(context: dg.AssetExecutionContext) -> str | None:
    """The exception the training process reported through Pipes before it exited, as one line.

    A Pipes client only says that the process exited non-zero; the process's
    own exception (``too few listings to train: 0 rows``) arrives in the run's
    event log as the error of the engine event that closed the Pipes session.
    """
    records = context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for record in reversed(records):
        event = record.dagster_event
        error = event.engine_event_data.error if event and event.engine_event_data else None
        if error is not None and "pipes closed with exception" in (event.message or ""):
            return error.message.strip()  # "ValueError: epochs must be at least 1, not 0"
    return None


def _run_in_pod(
    context: dg.AssetExecutionContext, launch: LaunchSettings, env: Settings, extras: dict[str, Any]
) -> dg.PipesClientCompletedInvocation:
    launch.require("image")
    try:
        from dagster_k8s import PipesK8sClient
    except ImportError:
        raise ConfigError(
            "the k8s training launcher needs dagster-k8s: pip install 'sn46-pipelines[deploy]'"
        ) from None
    environment = container_environment(
        env.env, env.region, env.endpoint_url, injected_credentials=bool(launch.k8s_secret)
    )
    spec = k8s.training_pod_spec(launch, environment)
    context.log.info(f"training in a pod of image {launch.image} with {launch.gpu_count} GPU(s)")
    return PipesK8sClient().run(
        context=context,
        extras=extras,
        namespace=launch.k8s_namespace or None,
        base_pod_meta=k8s.training_pod_metadata(env.env),
        base_pod_spec=spec,
    )


def _run_in_ecs_task(
    context: dg.AssetExecutionContext, launch: LaunchSettings, env: Settings, extras: dict[str, Any]
) -> dg.PipesClientCompletedInvocation:
    launch.require("image", "ecs_cluster", "ecs_subnets", "ecs_execution_role_arn")
    import boto3
    from dagster_aws.pipes import PipesECSClient

    session = boto3.session.Session(region_name=env.region)
    ecs_client = session.client("ecs")
    secret_id = launch.ecs_secret_id(env.env)
    definition = ecs.training_task_definition(
        launch,
        container_environment(env.env, env.region, env.endpoint_url, injected_credentials=bool(secret_id)),
        region=env.region,
        secret_arn=ecs.secret_arn(session.client("secretsmanager"), secret_id) if secret_id else None,
    )
    task_definition = ecs.ensure_task_definition(ecs_client, definition)
    context.log.info(f"training in ECS task definition {task_definition} on cluster {launch.ecs_cluster}")
    client = PipesECSClient(client=ecs_client, message_reader=_cloudwatch_messages(session.client("logs")))
    return client.run(
        context=context,
        run_task_params=ecs.training_run_task_params(launch, task_definition, env=env.env),
        extras=extras,
        pipes_container_name=CONTAINER_NAME,
    )


def _cloudwatch_messages(logs_client: Any) -> "PipesCloudWatchMessageReader":
    """A reader of the task's Pipes messages from CloudWatch that does not also tail its other output.

    dagster-aws 0.29 attaches a log tailer per container that calls
    GetLogEvents in a loop with no pause while the stream is quiet, and only
    notices the end of the session when new events arrive: it would spend the
    account's CloudWatch Logs request rate (shared with the message reader)
    for the whole training run and outlive it. The container's full output
    stays in the task's log group; training's own progress arrives as Pipes
    log messages.
    """
    from dagster_aws.pipes import PipesCloudWatchMessageReader

    class MessagesOnly(PipesCloudWatchMessageReader):
        def add_log_reader(self, log_reader: Any) -> None:
            """Decline the log tailer (see above)."""

    return MessagesOnly(client=logs_client)
