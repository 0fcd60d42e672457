"""What ECS's container agent does for a task, done on this machine for tasks started on moto's ECS.

moto records ``run_task`` but starts nothing. This agent watches the cluster
over the same HTTP API and, for each new task, does what ECS and its awslogs
driver do: it builds the container's environment from the task definition,
the run's container overrides and the ``secrets`` (read from Secrets
Manager with the ``arn:...:json-key::`` selector), runs the container's
command (``python`` being this interpreter, whose environment has the
project installed as the image does), ships every output line to the log
stream ``<prefix>/<container>/<task id>`` and stops the task when the
process exits. So a test can follow a launch from ``run_task`` through
CloudWatch back to Dagster with nothing in between replaced.
"""

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskRun:
    """One task the agent ran: its ARN, the environment the process got, and its exit code."""

    task_arn: str
    environment: dict[str, str]
    exit_code: int | None = None


@dataclass
class EcsAgent:
    session: Any
    cluster: str
    poll_seconds: float = 0.2
    runs: list[TaskRun] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "EcsAgent":
        self._thread = threading.Thread(target=self._watch, name="ecs-agent", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _watch(self) -> None:
        ecs = self.session.client("ecs")
        seen: set[str] = set()
        while not self._stop.is_set():
            for arn in ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING")["taskArns"]:
                if arn not in seen:
                    seen.add(arn)
                    self._run(ecs, arn)
            self._stop.wait(self.poll_seconds)

    def _run(self, ecs: Any, task_arn: str) -> None:
        (task,) = ecs.describe_tasks(cluster=self.cluster, tasks=[task_arn])["tasks"]
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        override = next(
            (
                o
                for o in task.get("overrides", {}).get("containerOverrides", [])
                if o["name"] == container["name"]
            ),
            {},
        )
        environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
        environment.update({e["name"]: e["value"] for e in container.get("environment", [])})
        environment.update({e["name"]: e["value"] for e in override.get("environment", [])})
        environment.update({s["name"]: self._secret(s["valueFrom"]) for s in container.get("secrets", [])})
        command = list(override.get("command") or container["command"])
        if command[0] == "python":
            command[0] = sys.executable
        run = TaskRun(task_arn, environment)
        self.runs.append(run)
        options = container["logConfiguration"]["options"]
        stream = f"{options['awslogs-stream-prefix']}/{container['name']}/{task_arn.rsplit('/', 1)[-1]}"
        logs = self.session.client("logs")
        logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            logs.put_log_events(
                logGroupName=options["awslogs-group"],
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": line.rstrip("\n")}],
            )
        run.exit_code = process.wait()
        ecs.stop_task(
            cluster=self.cluster, task=task_arn, reason=f"Essential container exited ({run.exit_code})"
        )

    def _secret(self, value_from: str) -> str:
        """Resolve ``arn:aws:secretsmanager:...:secret:NAME-abcdef:json-key:version-stage:version-id``."""
        arn, json_key, _stage, _version = value_from.rsplit(":", 3)
        secret = self.session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        return json.loads(secret)[json_key] if json_key else secret
