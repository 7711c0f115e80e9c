"""ECS services end to end, through boto3 and the AWS CLI: botocore's waiters, tasks spread over the zones with
their group and startedBy, replacement, a rolling update within its percents, the circuit breaker with and
without rollback, forced delete to INACTIVE, kill -9 of `fargo up` in the middle of a deployment, and the errors."""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.e2e.conftest import FARGO, REPO, TEST_IMAGE, FargoProcess, free_port, import_test_image

SUBNETS = ["subnet-fargo-default-1a", "subnet-fargo-default-1b", "subnet-fargo-default-1c"]
NETWORK = {"awsvpcConfiguration": {"subnets": SUBNETS}}
FAST = {"Delay": 1, "MaxAttempts": 90}


def register(ecs, family: str, command: list[str] | None = None) -> str:  # noqa: ANN001
    container = {"name": "app", "image": TEST_IMAGE, "command": command or ["sleep", "3600"], "stopTimeout": 2}
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[container])["taskDefinition"]["taskDefinitionArn"]


def create(ecs, name: str, td: str, desired: int, **extra) -> dict:  # noqa: ANN001
    return ecs.create_service(serviceName=name, taskDefinition=td, desiredCount=desired, launchType="FARGATE",
                              networkConfiguration=NETWORK, **extra)["service"]


def describe(ecs, name: str) -> dict:  # noqa: ANN001
    return ecs.describe_services(services=[name])["services"][0]


def service_tasks(ecs, name: str, desired: str = "RUNNING") -> list[dict]:  # noqa: ANN001
    arns = ecs.list_tasks(serviceName=name, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def wait_stable(ecs, *names: str) -> None:  # noqa: ANN001
    ecs.get_waiter("services_stable").wait(services=list(names), WaiterConfig=FAST)


def wait_completed(ecs, name: str) -> dict:  # noqa: ANN001
    """services_stable holds once the counts match; the deployment completes when its tasks are healthy."""
    return wait_until(lambda: (s := describe(ecs, name))["deployments"][0]["rolloutState"] == "COMPLETED" and s,
                      what=f"{name}'s deployment completed")


def messages(ecs, name: str) -> list[str]:  # noqa: ANN001
    return [e["message"] for e in describe(ecs, name)["events"]]


def wait_until(check, timeout: float = 60, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached in {timeout} s")


@pytest.fixture(scope="module")
def ecs(runner_fargo: FargoProcess):  # noqa: ANN201
    return runner_fargo.client("ecs")


def test_a_service_keeps_its_tasks_running_and_rolls_out_a_new_definition(ecs) -> None:  # noqa: ANN001
    td1, td2 = register(ecs, "svc-web"), register(ecs, "svc-web")
    created = create(ecs, "web", td1, 3, tags=[{"key": "team", "value": "a"}], propagateTags="SERVICE",
                     enableECSManagedTags=True)
    first = created["deployments"][0]["id"]
    wait_stable(ecs, "web")
    tasks = service_tasks(ecs, "web")
    assert len(tasks) == 3 and {t["lastStatus"] for t in tasks} == {"RUNNING"}
    assert sorted(t["availabilityZone"] for t in tasks) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert {t["group"] for t in tasks} == {"service:web"} and {t["startedBy"] for t in tasks} == {first}
    ecs.get_waiter("tasks_running").wait(tasks=[t["taskArn"] for t in tasks], WaiterConfig=FAST)
    tags = ecs.list_tags_for_resource(resourceArn=tasks[0]["taskArn"])["tags"]
    assert {t["key"] for t in tags} == {"team", "aws:ecs:clusterName", "aws:ecs:serviceName"}
    s = wait_completed(ecs, "web")
    assert s["runningCount"] == 3
    assert messages(ecs, "web")[:2] == ["(service web) has reached a steady state.",
                                        f"(service web) (deployment {first}) deployment completed."]

    # a task that stops is replaced
    victim = tasks[0]["taskArn"]
    ecs.stop_task(task=victim)
    ecs.get_waiter("tasks_stopped").wait(tasks=[victim], WaiterConfig=FAST)
    wait_until(lambda: len(service_tasks(ecs, "web")) == 3 and victim not in
               {t["taskArn"] for t in service_tasks(ecs, "web")}, what="a replacement")
    wait_stable(ecs, "web")

    # a rolling update: never more than 200 % PENDING or RUNNING, never fewer than 100 % healthy RUNNING
    old = {t["taskArn"] for t in service_tasks(ecs, "web")}
    updated = ecs.update_service(service="web", taskDefinition=td2)["service"]
    second = updated["deployments"][0]["id"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    peak, floor = 0, 3
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, floor
        while not done.is_set():
            live = [t for t in service_tasks(ecs, "web") if t["lastStatus"] != "STOPPED"]
            peak = max(peak, len(live))
            floor = min(floor, sum(1 for t in live if t["lastStatus"] == "RUNNING"))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_stable(ecs, "web")
    finally:
        done.set()
        sampler.join()
    assert peak <= 6 and floor >= 3
    tasks = service_tasks(ecs, "web")
    assert len(tasks) == 3 and {t["startedBy"] for t in tasks} == {second} and not old & {t["taskArn"] for t in tasks}
    stopped = ecs.describe_tasks(tasks=sorted(old))["tasks"]
    assert {t["stopCode"] for t in stopped} == {"ServiceSchedulerInitiated"}
    assert {t["stoppedReason"] for t in stopped} == {f"Scaling activity initiated by (deployment {second})"}
    s = wait_completed(ecs, "web")
    assert [d["id"] for d in s["deployments"]] == [second] and s["taskDefinition"] == td2
    events = messages(ecs, "web")
    assert events[:2] == ["(service web) has reached a steady state.",
                          f"(service web) (deployment {second}) deployment completed."]
    assert any(m.startswith("(service web) has stopped ") for m in events)
    assert sum(m.count("(task ") for m in events if m.startswith("(service web) has started ")) == 7

    # delete: refused while scaled above 0, then DRAINING, then INACTIVE and still describable
    with pytest.raises(ClientError) as e:
        ecs.delete_service(service="web")
    assert e.value.response["Error"] == {"Code": "InvalidParameterException",
                                         "Message": "The service cannot be stopped while it is scaled above 0."}
    assert ecs.delete_service(service="web", force=True)["service"]["status"] == "DRAINING"
    assert "web" not in " ".join(ecs.list_services()["serviceArns"])
    with pytest.raises(WaiterError):  # services_stable fails at once on DRAINING
        ecs.get_waiter("services_stable").wait(services=["web"], WaiterConfig=FAST)
    ecs.get_waiter("services_inactive").wait(services=["web"], WaiterConfig=FAST)
    assert describe(ecs, "web")["status"] == "INACTIVE"
    ecs.get_waiter("tasks_stopped").wait(tasks=[t["taskArn"] for t in tasks], WaiterConfig=FAST)


def test_the_circuit_breaker_fails_a_deployment_and_rolls_back_to_the_last_completed(ecs) -> None:  # noqa: ANN001
    good, bad = register(ecs, "svc-cb"), register(ecs, "svc-cb", ["/no/such/binary"])
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    completed = create(ecs, "cb", good, 3, deploymentConfiguration=breaker)["deployments"][0]["id"]
    # and one without rollback, failing from the start
    failing = create(ecs, "cb-stuck", bad, 3, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": False}})["deployments"][0]["id"]
    wait_stable(ecs, "cb")
    wait_completed(ecs, "cb")
    failed = ecs.update_service(service="cb", taskDefinition=bad)["service"]["deployments"][0]["id"]
    wait_until(lambda: f"(service cb) rolling back to deployment {completed}." in messages(ecs, "cb"), 90,
               "the rollback")
    events = messages(ecs, "cb")
    assert f"(service cb) (deployment {failed}) deployment failed: tasks failed to start." in events
    wait_stable(ecs, "cb")
    s = wait_completed(ecs, "cb")
    assert [d["id"] for d in s["deployments"]] == [completed] and s["taskDefinition"] == good
    assert s["deployments"][0]["rolloutState"] == "COMPLETED" and s["runningCount"] == 3

    stuck = wait_until(lambda: (d := describe(ecs, "cb-stuck")["deployments"][0])["rolloutState"] == "FAILED" and d,
                       90, "FAILED")
    assert stuck["id"] == failing and stuck["failedTasks"] >= 3
    assert stuck["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert f"(service cb-stuck) (deployment {failing}) deployment failed: tasks failed to start." in \
        messages(ecs, "cb-stuck")
    time.sleep(1.5)
    assert service_tasks(ecs, "cb-stuck") == []  # a FAILED deployment launches no more tasks
    for name in ("cb", "cb-stuck"):
        ecs.delete_service(service=name, force=True)
    ecs.get_waiter("services_inactive").wait(services=["cb", "cb-stuck"], WaiterConfig=FAST)


def test_tasks_that_keep_failing_to_start_are_throttled(ecs) -> None:  # noqa: ANN001
    bad = register(ecs, "svc-throttled", ["/no/such/binary"])
    create(ecs, "throttled", bad, 1)  # no circuit breaker: it retries for ever, ever more slowly
    unable = ("(service throttled) is unable to consistently start tasks successfully. For more information, see "
              "the Troubleshooting section of the Amazon ECS Developer Guide.")
    wait_until(lambda: unable in messages(ecs, "throttled"), 60, "the throttle event")
    started = len(ecs.list_tasks(serviceName="throttled", desiredStatus="STOPPED")["taskArns"])
    assert started >= 2  # the first failures are retried at once; then the scheduler waits (30 s, doubling)
    time.sleep(5)
    # At most the start that was already due when the event came; no stream of retries.
    assert len(ecs.list_tasks(serviceName="throttled", desiredStatus="STOPPED")["taskArns"]) <= started + 1
    assert describe(ecs, "throttled")["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    ecs.delete_service(service="throttled", force=True)


def test_the_aws_cli_drives_a_service_and_its_waiters(runner_fargo: FargoProcess, ecs) -> None:  # noqa: ANN001
    td = register(ecs, "svc-cli")
    f = runner_fargo
    out = f.aws_json("ecs", "create-service", "--service-name", "cli", "--task-definition", td, "--desired-count", "2",
                     "--launch-type", "FARGATE", "--network-configuration",
                     "awsvpcConfiguration={subnets=[subnet-fargo-default-1a,subnet-fargo-default-1b]}",
                     "--client-token", "cli-token-1")
    assert out["service"]["status"] == "ACTIVE" and out["service"]["platformVersion"] == "LATEST"
    assert out["service"]["deployments"][0]["platformVersion"] == "1.4.0"
    f.aws_cli("ecs", "wait", "services-stable", "--services", "cli")
    s = f.aws_json("ecs", "describe-services", "--services", "cli")["services"][0]
    assert s["runningCount"] == 2 and len(s["deployments"]) == 1
    assert any(a.endswith("/cli") for a in f.aws_json("ecs", "list-services")["serviceArns"])
    tasks = f.aws_json("ecs", "list-tasks", "--service-name", "cli")["taskArns"]
    assert len(tasks) == 2
    f.aws_cli("ecs", "wait", "tasks-running", "--tasks", *tasks)
    f.aws_json("ecs", "update-service", "--service", "cli", "--desired-count", "0")
    f.aws_json("ecs", "delete-service", "--service", "cli")
    f.aws_cli("ecs", "wait", "services-inactive", "--services", "cli")
    f.aws_cli("ecs", "wait", "tasks-stopped", "--tasks", *tasks)
    err = f.aws_cli("ecs", "update-service", "--service", "nope", "--desired-count", "1", check=False).stderr
    assert "An error occurred (ServiceNotFoundException) when calling the UpdateService operation: " \
           "Service not found." in err


def test_a_rolling_update_waits_for_healthy_tasks_and_replaces_unhealthy_ones(ecs) -> None:  # noqa: ANN001
    def definition(check: str) -> str:
        container = {"name": "app", "image": TEST_IMAGE, "command": ["sleep", "3600"], "stopTimeout": 2,
                     "healthCheck": {"command": ["CMD-SHELL", check], "interval": 5, "timeout": 2, "retries": 1}}
        return ecs.register_task_definition(
            family="svc-checked", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
            memory="512", containerDefinitions=[container])["taskDefinition"]["taskDefinitionArn"]

    healthy, sick = definition("true"), definition("exit 1")
    first = create(ecs, "checked", healthy, 2)["deployments"][0]["id"]
    s = wait_completed(ecs, "checked")  # completes only once its tasks are HEALTHY
    assert {t["healthStatus"] for t in service_tasks(ecs, "checked")} == {"HEALTHY"}
    assert s["deployments"][0]["id"] == first
    old = {t["taskArn"] for t in service_tasks(ecs, "checked")}
    ecs.update_service(service="checked", taskDefinition=sick)
    # The new tasks fail their checks: they are replaced, and the healthy old ones stay (minimum 100 %).
    wait_until(lambda: any("failed container health checks." in m for m in messages(ecs, "checked")),
               timeout=90, what="a health-check failure event")
    assert old <= {t["taskArn"] for t in service_tasks(ecs, "checked")}
    assert describe(ecs, "checked")["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    replaced = [t for t in ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="checked", desiredStatus="STOPPED")
                                              ["taskArns"])["tasks"]]
    assert replaced and {t["stoppedReason"] for t in replaced} == {"Task failed container health checks"}
    ecs.update_service(service="checked", desiredCount=0)
    ecs.delete_service(service="checked")


def test_a_service_replaces_its_interrupted_spot_tasks(runner_fargo: FargoProcess, ecs) -> None:  # noqa: ANN001
    ecs.create_cluster(clusterName="svc-spot", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    td = register(ecs, "svc-spot")
    service = ecs.create_service(cluster="svc-spot", serviceName="spotty", taskDefinition=td, desiredCount=2,
                                 capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                                 networkConfiguration=NETWORK)["service"]
    assert "launchType" not in service and service["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    ecs.get_waiter("services_stable").wait(cluster="svc-spot", services=["spotty"], WaiterConfig=FAST)
    assert ecs.describe_clusters(clusters=["svc-spot"])["clusters"][0]["activeServicesCount"] == 1
    with pytest.raises(ClientError) as refused:
        ecs.delete_cluster(cluster="svc-spot")
    assert refused.value.response["Error"] == {"Code": "ClusterContainsServicesException",
                                               "Message": "The Cluster cannot be deleted while Services are active."}
    before = set(ecs.list_tasks(cluster="svc-spot", serviceName="spotty")["taskArns"])
    out = subprocess.run([*FARGO, "spot", "interrupt", "--cluster", "svc-spot", "--service", "spotty", "--count", "1",
                          "--endpoint", runner_fargo.endpoint], capture_output=True, text=True, cwd=REPO, check=True)
    interrupted = [arn for arn in before if arn.rsplit("/", 1)[-1] in out.stdout]
    assert len(interrupted) == 1
    stopped = ecs.get_waiter("tasks_stopped").wait(cluster="svc-spot", tasks=interrupted, WaiterConfig=FAST)
    assert stopped is None
    task = ecs.describe_tasks(cluster="svc-spot", tasks=interrupted)["tasks"][0]
    assert (task["stopCode"], task["stoppedReason"]) == ("SpotInterruption", "Your Spot Task was interrupted.")
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    # The service starts a replacement, on Spot again.
    wait_until(lambda: len(set(ecs.list_tasks(cluster="svc-spot", serviceName="spotty")["taskArns"]) - before) == 1,
               what="a replacement task")
    ecs.get_waiter("services_stable").wait(cluster="svc-spot", services=["spotty"], WaiterConfig=FAST)
    ecs.delete_service(cluster="svc-spot", service="spotty", force=True)
    ecs.get_waiter("services_inactive").wait(cluster="svc-spot", services=["spotty"], WaiterConfig=FAST)


def test_every_service_error_has_aws_code_and_text(ecs) -> None:  # noqa: ANN001
    td = register(ecs, "svc-err")
    create(ecs, "err", td, 0, clientToken="tok")
    assert create(ecs, "err", td, 0, clientToken="tok")["serviceName"] == "err"  # a retry: same service

    def error(call, **params) -> tuple[str, str]:  # noqa: ANN001
        with pytest.raises(ClientError) as e:
            call(**params)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    not_idempotent = ("InvalidParameterException", "Creation of service was not idempotent.")
    assert error(create, ecs=ecs, name="err", td=td, desired=1, clientToken="tok") == not_idempotent
    assert error(create, ecs=ecs, name="err", td=td, desired=0) == not_idempotent
    assert error(ecs.update_service, service="nope", desiredCount=1) == ("ServiceNotFoundException",
                                                                        "Service not found.")
    assert error(ecs.delete_service, service="nope") == ("ServiceNotFoundException", "Service not found.")
    assert error(ecs.list_tasks, serviceName="nope") == ("ServiceNotFoundException", "Service not found.")
    assert error(ecs.describe_services, cluster="nope", services=["err"]) == ("ClusterNotFoundException",
                                                                             "Cluster not found.")
    out = ecs.describe_services(services=["err", "nope"], include=["TAGS"])
    assert out["failures"] == [{"arn": "arn:aws:ecs:us-east-1:000000000000:service/default/nope", "reason": "MISSING"}]
    with pytest.raises(WaiterError) as w:  # services_stable fails on MISSING
        ecs.get_waiter("services_stable").wait(services=["nope"], WaiterConfig=FAST)
    assert "MISSING" in str(w.value) or "failure" in str(w.value)
    ecs.delete_service(service="err")  # desired 0: no force needed
    assert error(ecs.update_service, service="err", desiredCount=1) == ("ServiceNotActiveException",
                                                                       "Service was not ACTIVE.")
    assert error(ecs.delete_service, service="err") == ("ServiceNotActiveException", "Service was not ACTIVE.")
    arn = "arn:aws:ecs:us-east-1:000000000000:service/default/err"
    ecs.get_waiter("services_inactive").wait(services=["err"], WaiterConfig=FAST)
    assert create(ecs, "err", td, 0)["status"] == "ACTIVE"  # an INACTIVE name may be used again
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": "v"}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["k"])
    assert ecs.describe_services(services=["err"], include=["TAGS"])["services"][0]["tags"] == []
    ecs.delete_service(service="err")


@pytest.fixture
def own_fargo(fresh_fargo_dir: Path) -> Iterator[FargoProcess]:
    f = FargoProcess(fresh_fargo_dir, free_port()).start()
    try:
        import_test_image(f)
        f.client("ecs").create_cluster()
        yield f
    finally:
        f.stop(signal.SIGKILL)


def test_kill_9_in_the_middle_of_a_deployment_resumes_it_without_losing_or_doubling_tasks(
        own_fargo: FargoProcess) -> None:
    f = own_fargo
    ecs = f.client("ecs")
    td1, td2 = register(ecs, "svc-crash"), register(ecs, "svc-crash")
    create(ecs, "crash", td1, 4, deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50})
    wait_stable(ecs, "crash")
    wait_completed(ecs, "crash")
    new = ecs.update_service(service="crash", taskDefinition=td2)["service"]["deployments"][0]["id"]
    # in the middle: some of the new deployment's tasks started, old ones still there
    wait_until(lambda: any(t["startedBy"] == new for t in service_tasks(ecs, "crash")), 30, "the first new task")
    f.stop(signal.SIGKILL)
    f.start()
    ecs = f.client("ecs")
    wait_stable(ecs, "crash")
    running = service_tasks(ecs, "crash")
    assert len(running) == 4 and {t["startedBy"] for t in running} == {new}
    assert {t["lastStatus"] for t in running} == {"RUNNING"}
    everything = running + service_tasks(ecs, "crash", "STOPPED")
    assert len({t["taskArn"] for t in everything}) == len(everything)
    started_new = [t for t in everything if t["startedBy"] == new]
    assert len(started_new) == 4, [(t["lastStatus"], t.get("stoppedReason")) for t in started_new]
    s = describe(ecs, "crash")
    assert s["runningCount"] == 4 and [d["id"] for d in s["deployments"]] == [new]
