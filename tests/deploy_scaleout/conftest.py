"""An ECS world on the moto server (a cluster with one registered EC2 instance in a VPC, a log group and
the object-store secret, reached over HTTP through boto3 like a real account) and a PostgreSQL server on
loopback for the production instance's storage."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from scaleout_world import REGION, SECRET_VALUES, EcsWorld


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL 15 server on loopback for this session, as the DAGSTER_PG_* variables that reach it.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres`` account.
    """
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (scripts/test.sh installs them)")
    # Not under pytest's temporary folder: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="sn46-postgres-"))
    data, password_file = root / "data", root / "password"
    password_file.write_text("sn46-test-password\n")
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(password_file, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_owner, str(bindir / "initdb"), "-D", str(data), "-U", "dagster", "--auth=scram-sha-256",
                    f"--pwfile={password_file}"], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
    # The server's output goes to a file: a pipe would stay open in the server and hang the call.
    subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
                    "-w", "start"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_USER": "dagster",
               "DAGSTER_PG_PASSWORD": "sn46-test-password", "DAGSTER_PG_DB": "postgres"}
    finally:
        subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
