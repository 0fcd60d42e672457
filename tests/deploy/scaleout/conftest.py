"""An ECS world on the moto server (a cluster with one registered EC2 instance in a VPC, a log group and
the object-store secret, reached over HTTP through boto3 like a real account) and a database on the
session's PostgreSQL server for the production instance's storage."""

import json
import uuid

import boto3
import pytest

from tests.deploy.scaleout.scaleout_world import REGION, SECRET_VALUES, EcsWorld


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
        cluster=name,
        instanceIdentityDocument=json.dumps({"instanceId": instance["Instances"][0]["InstanceId"]}),
    )
    log_group = f"/ecs/{name}"
    session.client("logs").create_log_group(logGroupName=log_group)
    secret_id = f"sn46/{name}/object-store"
    arn = session.client("secretsmanager").create_secret(
        Name=secret_id, SecretString=json.dumps(SECRET_VALUES)
    )["ARN"]
    return EcsWorld(session, name, subnet, group, log_group, secret_id, arn)


@pytest.fixture
def dagster_pg_env(postgres) -> dict[str, str]:
    """The DAGSTER_PG_* variables of a fresh database and login role on the session's PostgreSQL server."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    postgres.create_database(name, owner=name, password=password)
    return {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": name,
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_DB": name,
    }
