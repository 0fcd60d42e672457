"""An ECS world on the moto server: a cluster with one registered EC2 instance in a VPC, a log group and
the object-store secret, reached over HTTP through boto3 like a real account."""

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

REGION = "us-east-2"  # the region of every shipped environment (config/*.yaml)
SECRET_VALUES = {"aws_access_key_id": "AKIAOBJECTSTORE00001", "aws_secret_access_key": "objectstore/secret+value"}


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


@pytest.fixture(scope="session")
def ecs_world(moto_endpoint) -> EcsWorld:
    """One world for the session (moto's EC2 takes seconds to set up); tests that count task-definition
    revisions use a family of their own."""
    session = boto3.session.Session(region_name=REGION)
    ec2, ecs = session.client("ec2"), session.client("ecs")
    name = f"sn46-{uuid.uuid4().hex[:8]}"
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # Real ECS VPCs resolve private DNS names; moto's task ENIs need the attribute to be created at all.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="sn46 training", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=name)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="g5.xlarge")
    ecs.register_container_instance(
        cluster=name, instanceIdentityDocument=json.dumps({"instanceId": instance["Instances"][0]["InstanceId"]}))
    log_group = f"/ecs/{name}"
    session.client("logs").create_log_group(logGroupName=log_group)
    secret_id = f"sn46/{name}/object-store"
    arn = session.client("secretsmanager").create_secret(Name=secret_id, SecretString=json.dumps(SECRET_VALUES))["ARN"]
    return EcsWorld(session, name, subnet, group, log_group, secret_id, arn)
