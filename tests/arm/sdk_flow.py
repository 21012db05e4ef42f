"""Drive a live gantry with the real Azure SDK for Container Instances.

Unmodified SDK, no policy tweaks: the base URL points at gantry's HTTPS
listener (its dev certificate authority trusted through REQUESTS_CA_BUNDLE),
and the credential hands out a gantry token.

Environment: GANTRY_URL, GANTRY_TOKEN, TEST_IMAGE, REQUESTS_CA_BUNDLE. Prints one `ok <step>`
line per step; any failed expectation raises.
"""

import os
import time

from polling import wait_for

from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerPort,
    EnvironmentVariable,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
)

SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "gantry-sdk-rg"
IMAGE = os.environ["TEST_IMAGE"]


class StaticToken:
    """A credential that hands out the token gantry minted for the test."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(os.environ["GANTRY_TOKEN"], int(time.time()) + 3600)


def step(name):
    print("ok", name, flush=True)


def container(name, script, cpu=0.5, memory=0.25, ports=(), env=()):
    return Container(
        name=name,
        image=IMAGE,
        command=["sh", "-c", script],
        resources=ResourceRequirements(requests=ResourceRequests(cpu=cpu, memory_in_gb=memory)),
        ports=[ContainerPort(port=p, protocol="TCP") for p in ports],
        environment_variables=list(env),
    )


def main():
    client = ContainerInstanceManagementClient(
        credential=StaticToken(),
        subscription_id=SUB,
        base_url=os.environ["GANTRY_URL"],
    )
    groups = client.container_groups

    # One container, with a plain and a secure environment variable.
    single = ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="Always",
        tags={"team": "edge"},
        containers=[
            container(
                "app",
                'echo "hello-from-aci $GREETING"; echo "secret-length ${#TOKEN}"; '
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
                env=[
                    EnvironmentVariable(name="GREETING", value="bonjour"),
                    EnvironmentVariable(name="TOKEN", secure_value="s3cr3t-value"),
                ],
            )
        ],
    )
    created = groups.begin_create_or_update(RG, "sdk-single", single).result()
    assert created.provisioning_state == "Succeeded", created.provisioning_state
    assert created.id == (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        "Microsoft.ContainerInstance/containerGroups/sdk-single"
    ), created.id
    step("create one-container group")

    # Two containers sharing one network namespace: `web` serves on
    # 127.0.0.1:8080, `probe` fetches from it over loopback.
    pair = ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="OnFailure",
        ip_address=IpAddress(type="Private", ports=[Port(port=8080, protocol="TCP")]),
        containers=[
            container(
                "web",
                "mkdir -p /www && echo shared-netns-ok > /www/index.html && httpd -f -p 8080 -h /www",
                ports=[8080],
            ),
            container(
                "probe",
                "while true; do wget -qO- http://127.0.0.1:8080/ || echo fetch-failed; sleep 1; done",
            ),
        ],
    )
    created = groups.begin_create_or_update(RG, "sdk-pair", pair).result()
    assert created.provisioning_state == "Succeeded", created.provisioning_state
    assert [c.name for c in created.containers] == ["web", "probe"]
    step("create two-container group")

    got = groups.get(RG, "sdk-single")
    assert got.instance_view.state == "Running", got.instance_view.state
    app = got.containers[0]
    assert app.instance_view.current_state.state == "Running", app.instance_view.current_state
    assert app.instance_view.current_state.start_time is not None
    env = {e.name: (e.value, e.secure_value) for e in app.environment_variables}
    assert env == {"GREETING": ("bonjour", None), "TOKEN": (None, None)}, env
    assert got.tags == {"team": "edge"}, got.tags
    assert got.restart_policy == "Always"
    assert app.resources.requests.cpu == 0.5 and app.resources.requests.memory_in_gb == 0.25
    step("get with instanceView Running, secure value withheld")

    in_rg = sorted(g.name for g in groups.list_by_resource_group(RG))
    assert in_rg == ["sdk-pair", "sdk-single"], in_rg
    everywhere = sorted(g.name for g in groups.list())
    assert {"sdk-pair", "sdk-single"} <= set(everywhere), everywhere
    step("list and list_by_resource_group")

    def logs_contain(group, name, text):
        def probe():
            content = client.containers.list_logs(RG, group, name).content
            return content if text in content else None

        return wait_for(f"{text!r} in {group}/{name} logs", probe)

    logs_contain("sdk-single", "app", "hello-from-aci bonjour")
    logs_contain("sdk-single", "app", "secret-length 12")
    logs_contain("sdk-pair", "probe", "shared-netns-ok")
    tail = client.containers.list_logs(RG, "sdk-single", "app", tail=1).content
    assert tail.count("\n") == 1, repr(tail)
    stamped = client.containers.list_logs(RG, "sdk-single", "app", tail=2, timestamps=True).content
    assert all(line[:4].isdigit() and "T" in line.split(" ")[0] for line in stamped.splitlines()), stamped
    step("containers.list_logs (tail, timestamps, shared network namespace)")

    before = groups.get(RG, "sdk-single").containers[0].instance_view.current_state.start_time
    time.sleep(1.1)
    groups.begin_restart(RG, "sdk-single").result()
    after = groups.get(RG, "sdk-single")
    assert after.instance_view.state == "Running", after.instance_view.state
    assert after.containers[0].instance_view.current_state.start_time > before
    step("begin_restart")

    groups.stop(RG, "sdk-single")
    stopped = groups.get(RG, "sdk-single")
    assert stopped.instance_view.state == "Stopped", stopped.instance_view.state
    assert stopped.containers[0].instance_view.current_state.state == "Terminated"
    step("stop")

    groups.begin_start(RG, "sdk-single").result()
    started = groups.get(RG, "sdk-single")
    assert started.instance_view.state == "Running", started.instance_view.state
    step("begin_start")

    # A changed definition is a new revision, deployed (200).
    single.containers[0].command = ["sh", "-c", "echo second-revision; sleep 3600"]
    updated = groups.begin_create_or_update(RG, "sdk-single", single).result()
    assert updated.provisioning_state == "Succeeded"
    logs_contain("sdk-single", "app", "second-revision")
    step("begin_create_or_update on an existing group updates it")

    for name in ["sdk-single", "sdk-pair"]:
        groups.begin_delete(RG, name).result()
        try:
            groups.get(RG, name)
            raise AssertionError(f"{name} still exists after delete")
        except ResourceNotFoundError:
            pass
    step("begin_delete, then get raises ResourceNotFoundError")

    try:
        groups.get(RG, "never-created")
        raise AssertionError("get of a missing group succeeded")
    except ResourceNotFoundError as e:
        assert e.error.code == "ResourceNotFound", e.error.code
    step("get on a missing group raises ResourceNotFoundError")


if __name__ == "__main__":
    main()
