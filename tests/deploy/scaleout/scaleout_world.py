"""The ECS world the scale-out tests share: its region, its planted secret values and its handles.

A module of its own (not conftest.py) so test modules can import it while the whole suite, with a
conftest.py in every folder, is collected together.
"""

from dataclasses import dataclass
from typing import Any

REGION = "us-east-2"  # the region of every shipped environment (config/*.yaml)
SECRET_VALUES = {
    "aws_access_key_id": "AKIAOBJECTSTORE00001",
    "aws_secret_access_key": "objectstore/secret+value",
}


@dataclass(frozen=True)
class EcsWorld:
    session: Any
    cluster: str
    subnet: str
    security_group: str
    log_group: str
    secret_id: str
    secret_arn: str
    execution_role_arn: str = "arn:aws:iam::123456789012:role/sn46-ecs-execution"
    task_role_arn: str = "arn:aws:iam::123456789012:role/sn46-training"

    def client(self, service: str):
        return self.session.client(service)

    def launcher_environ(self, **extra: str) -> dict[str, str]:
        """SN46_* variables of an ECS training deployment in this world (memory fits moto's instance)."""
        return {
            "SN46_TRAINING_LAUNCHER": "ecs",
            "SN46_IMAGE": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sn46-pipelines:cuda",
            "SN46_ECS_CLUSTER": self.cluster,
            "SN46_ECS_SUBNETS": self.subnet,
            "SN46_ECS_SECURITY_GROUPS": self.security_group,
            "SN46_ECS_EXECUTION_ROLE_ARN": self.execution_role_arn,
            "SN46_ECS_TASK_ROLE_ARN": self.task_role_arn,
            "SN46_ECS_LOG_GROUP": self.log_group,
            "SN46_ECS_SECRET": self.secret_id,
            "SN46_TRAINING_CPU": "2",
            "SN46_TRAINING_MEMORY_GIB": "4",
            **extra,
        }
