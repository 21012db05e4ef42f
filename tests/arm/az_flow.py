"""Drive a live gantry with the real Azure CLI (`az`, azure-cli 2.66.0).

The CLI is unmodified and runs offline: a private AZURE_CONFIG_DIR, no
telemetry, survey, upgrade check or extension install; a registered cloud
whose resource manager is gantry's HTTPS listener (its dev certificate
authority trusted through REQUESTS_CA_BUNDLE); and a managed-identity token
endpoint served by this script on 127.0.0.1 (MSI_ENDPOINT) that hands out the
gantry token. Every az command runs with --debug and every HTTP request it
makes is checked to go to gantry or to that token endpoint.

Environment: AZ (the az executable), GANTRY_URL (https://127.0.0.1:PORT),
GANTRY_TOKEN (whose `tid` claim names the tenant), TEST_IMAGE,
REQUESTS_CA_BUNDLE; optional GANTRY_INGRESS_PORT and GANTRY_INGRESS_TLS_PORT
(gantry's HTTP and HTTPS ports, where container URLs are served: the group's
FQDN is fetched there, over HTTPS with that name's certificate checked
against REQUESTS_CA_BUNDLE). Prints one `ok <step>` line per step; any
failed expectation raises.
"""

import base64
import http.client
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import polling

SUB = "11111111-2222-3333-4444-555555555555"
RG = "Test-RG"
GROUP = "az-web"
LABEL = "gantry-az-web"
CLOUD = "GantryCloud"
# Identifiers the cloud needs but nothing reaches: the token audience and the
# login/graph endpoints of a registered cloud. `.invalid` never resolves.
AAD = "https://login.gantry.invalid"
AUDIENCE = "https://management.gantry.invalid/"
GRAPH = "https://graph.gantry.invalid/"
TENANT = "00000000-0000-0000-0000-00000000a2e0"
SCRIPT = (
    "mkdir -p /www && echo hello-from-az > /www/index.html && echo az-flow-serving"
    " && httpd -f -v -p 80 -h /www"
)

AZ_EXE = os.environ["AZ"]
ARM = os.environ["GANTRY_URL"].rstrip("/")
TOKEN = os.environ["GANTRY_TOKEN"]
IMAGE = os.environ["TEST_IMAGE"]
INGRESS_PORT = os.environ.get("GANTRY_INGRESS_PORT")
INGRESS_TLS_PORT = os.environ.get("GANTRY_INGRESS_TLS_PORT")


def step(name):
    print("ok", name, flush=True)


def token_expiry(token):
    """The token's `exp` claim, or an hour from now."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return int(json.loads(base64.urlsafe_b64decode(payload))["exp"])
    except (IndexError, ValueError, KeyError):
        return int(time.time()) + 3600


class TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """A managed-identity endpoint as msrestazure (azure-cli 2.66's `az login
    --identity`) calls it when MSI_ENDPOINT is set: POST form `resource=...`
    with `Metadata: true`; answers the IMDS token shape."""

    calls = []

    def answer(self, resource):
        TokenEndpoint.calls.append((self.command, self.path, resource))
        exp = token_expiry(TOKEN)
        body = json.dumps(
            {
                "access_token": TOKEN,
                "client_id": "gantry-az-flow",
                "expires_in": str(max(exp - int(time.time()), 0)),
                "expires_on": str(exp),
                "ext_expires_in": str(max(exp - int(time.time()), 0)),
                "not_before": str(int(time.time()) - 60),
                "resource": resource,
                "token_type": "Bearer",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self.answer(form.get("resource", [""])[0])

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.answer(query.get("resource", [""])[0])

    def log_message(self, *args):
        pass


def start_token_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/msi/token"


class Az:
    """Runs az with a private config dir and an environment that keeps it offline."""

    def __init__(self, config_dir, msi_endpoint):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "ARM_"))
            and k not in ("APPSETTING_WEBSITE_SITE_NAME", "ACC_CLOUD", "AZ")
        }
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        env.update(
            {
                "AZURE_CONFIG_DIR": config_dir,
                "AZURE_CORE_COLLECT_TELEMETRY": "false",
                "AZURE_CORE_SURVEY_MESSAGE": "false",
                "AZURE_CORE_NO_COLOR": "true",
                "AZURE_CORE_OUTPUT": "json",
                "AZURE_CORE_DISABLE_CONFIRM_PROMPT": "true",
                "AZURE_CORE_LOGIN_EXPERIENCE_V2": "false",
                "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
                "AZURE_AUTO_UPGRADE_ENABLE": "no",
                # `az login --identity` and every later command get their
                # token here instead of IMDS (169.254.169.254).
                "MSI_ENDPOINT": msi_endpoint,
                "NO_PROXY": no_proxy,
                "no_proxy": no_proxy,
            }
        )
        self.env = env
        self.allowed = [urllib.parse.urlsplit(u).netloc for u in (ARM, msi_endpoint)]
        self.requests = []

    def run(self, *args, check=True):
        """Run `az ARGS --debug`: (exit code, stdout, stderr)."""
        cmd = [AZ_EXE, *args, "--debug"]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=300)
        # urllib3's debug lines: every request az sent (msrestazure's to the
        # token endpoint included), and every connection it opened.
        sent = [
            f"{method} {origin}{target} -> {status}"
            for origin, method, target, status in re.findall(
                r'(https?://\S+) "([A-Z]+) (\S+) HTTP/[\d.]+" (\d+)', p.stderr
            )
        ]
        hosts = re.findall(r"Starting new HTTPS? connection \(\d+\): (\S+)", p.stderr)
        self.requests.append((args, sent))
        outside = [h for h in hosts if h not in self.allowed]
        assert not outside, f"az {' '.join(args)} reached outside the test: {outside}"
        if check and p.returncode != 0:
            raise AssertionError(
                f"az {' '.join(args)} exited {p.returncode}\nrequests: {sent}\n"
                f"stdout: {p.stdout}\nstderr (tail): {p.stderr[-6000:]}"
            )
        return p.returncode, p.stdout, p.stderr

    def json(self, *args):
        _, out, _ = self.run(*args)
        return json.loads(out) if out.strip() else None


def wait_for(what, probe, timeout=60):
    # Each probe runs az (a subprocess of a second or more): once a second.
    return polling.wait_for(what, probe, timeout, every=1)


class ResolvedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 for a name DNS would resolve there: SNI and the
    certificate check are for the name, as `curl --resolve` does."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_via_ingress(fqdn, port, tls=False):
    """GET https?://fqdn:port/ with fqdn resolved to 127.0.0.1: (status, body)."""
    if tls:
        context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
        c = ResolvedHTTPSConnection(fqdn, int(port), timeout=5, context=context)
    else:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    try:
        c.request("GET", "/", headers={"Host": f"{fqdn}:{port}"})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def main():
    server, msi_endpoint = start_token_endpoint()
    with tempfile.TemporaryDirectory(prefix="az-flow-") as config_dir:
        az = Az(config_dir, msi_endpoint)
        try:
            flow(az)
        except BaseException:
            print("az requests so far:", file=sys.stderr)
            for args, sent in az.requests:
                print(f"  az {' '.join(args)}: {sent}", file=sys.stderr)
            raise
        finally:
            server.shutdown()


def flow(az):
    version = az.json("version")
    assert version["azure-cli"] == "2.66.0", version
    step("az version 2.66.0, private config dir, offline")

    # All four endpoints az requires are given, so it fetches no
    # `<arm>/metadata/endpoints` to fill them in.
    az.run(
        "cloud", "register", "--name", CLOUD,
        "--endpoint-resource-manager", ARM,
        "--endpoint-management", AUDIENCE,
        "--endpoint-active-directory", AAD,
        "--endpoint-active-directory-resource-id", AUDIENCE,
        "--endpoint-active-directory-graph-resource-id", GRAPH,
    )
    az.run("cloud", "set", "--name", CLOUD)
    cloud = az.json("cloud", "show")
    assert cloud["name"] == CLOUD and cloud["isActive"], cloud
    assert cloud["endpoints"]["resourceManager"] == ARM, cloud["endpoints"]
    step("cloud register and set (resource manager is gantry)")

    # az reads the tenant from the token's `tid` and lists the subscriptions
    # (`GET /subscriptions`) gantry answers for this caller.
    login = az.json("login", "--identity")
    assert [a["id"] for a in login] == [SUB], login
    assert login[0]["tenantId"] == TENANT, login
    account = az.json("account", "show")
    assert account["id"] == SUB, account
    assert account["environmentName"] == CLOUD, account
    assert account["user"] == {
        "name": "systemAssignedIdentity",
        "type": "servicePrincipal",
        "assignedIdentityInfo": "MSI",
    }, account["user"]
    got = az.json("account", "get-access-token")
    assert got["accessToken"] == TOKEN, "az does not hand out the token of the MSI endpoint"
    assert got["subscription"] == SUB, got
    assert TokenEndpoint.calls, "the managed-identity endpoint was never asked"
    step("az login --identity (tenant from the token, subscription from gantry)")

    created = az.json(
        "container", "create",
        "--resource-group", RG, "--name", GROUP,
        "--image", IMAGE,
        "--os-type", "Linux", "--location", "westeurope",
        "--cpu", "0.5", "--memory", "0.5",
        "--ports", "80", "--dns-name-label", LABEL,
        "--command-line", f"sh -c '{SCRIPT}'",
    )
    group_id = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        f"Microsoft.ContainerInstance/containerGroups/{GROUP}"
    )
    assert created["id"] == group_id, created["id"]
    assert created["name"] == GROUP, created
    assert created["provisioningState"] == "Succeeded", created["provisioningState"]
    assert created["location"] == "westeurope", created["location"]
    assert created["osType"] == "Linux", created["osType"]
    ip = created["ipAddress"]
    assert ip["type"] == "Public", ip
    assert ip["dnsNameLabel"] == LABEL, ip
    assert [(p["port"], p["protocol"]) for p in ip["ports"]] == [(80, "TCP")], ip["ports"]
    (c,) = created["containers"]
    assert c["name"] == GROUP and c["image"] == IMAGE, c
    assert c["command"] == ["sh", "-c", SCRIPT], c["command"]
    assert [(p["port"], p["protocol"]) for p in c["ports"]] == [(80, "TCP")], c["ports"]
    req = c["resources"]["requests"]
    assert (req["cpu"], req["memoryInGb"]) == (0.5, 0.5), req
    sent = az.requests[-1][1]
    assert any(r.startswith(f"PUT {ARM}{group_id}?api-version=2023-05-01 ") for r in sent), sent
    step("container create (public IP, DNS label, port 80)")

    # Resource groups are implicit in gantry: where their groups are.
    rg = az.json("group", "show", "--name", RG)
    assert rg["name"] == RG and rg["location"] == "westeurope", rg
    assert rg["id"] == f"/subscriptions/{SUB}/resourceGroups/{RG}", rg
    assert az.json("group", "exists", "--name", RG) is True
    step("group show and exists")

    def show():
        return az.json("container", "show", "--resource-group", RG, "--name", GROUP)

    def running():
        g = show()
        ok = g["instanceView"]["state"] == "Running" and (
            g["containers"][0]["instanceView"]["currentState"]["state"] == "Running"
        )
        return g if ok else None

    shown = wait_for("the group to run", running)
    assert shown["id"] == group_id and shown["provisioningState"] == "Succeeded", shown
    assert shown["ipAddress"]["dnsNameLabel"] == LABEL, shown["ipAddress"]
    fqdn = shown["ipAddress"].get("fqdn")
    assert fqdn and fqdn.startswith(f"{LABEL}.westeurope."), shown["ipAddress"]
    step(f"container show: Running, fqdn {fqdn}")

    for port, tls in ((INGRESS_PORT, False), (INGRESS_TLS_PORT, True)):
        if not port:
            continue
        assert fqdn, f"no ipAddress.fqdn to reach: {shown['ipAddress']}"
        scheme = "https" if tls else "http"
        last = []

        def served():
            try:
                status, body = fetch_via_ingress(fqdn, port, tls)
            except OSError as e:
                last[:] = [repr(e)]
                return None
            last[:] = [status, body]
            return status == 200 and body.strip() == "hello-from-az"

        try:
            wait_for(f"{scheme}://{fqdn}:{port}/", served, timeout=20)
        except AssertionError as e:
            raise AssertionError(f"{e}: {last}") from None
        step(f"GET {scheme}://{fqdn}:{port}/ answers hello-from-az")

    in_rg = az.json("container", "list", "--resource-group", RG)
    assert [g["name"] for g in in_rg] == [GROUP], in_rg
    everywhere = az.json("container", "list")
    assert GROUP in [g["name"] for g in everywhere], everywhere
    step("container list (resource group and subscription)")

    def logs():
        _, out, _ = az.run("container", "logs", "--resource-group", RG, "--name", GROUP)
        return out if "az-flow-serving" in out else None

    wait_for("az-flow-serving in the logs", logs)
    step("container logs")

    started = shown["containers"][0]["instanceView"]["currentState"]["startTime"]
    time.sleep(1.1)
    out = az.json("container", "restart", "--resource-group", RG, "--name", GROUP)
    assert out is None, out
    after = wait_for("the group to run again", running)
    again = after["containers"][0]["instanceView"]["currentState"]["startTime"]
    assert again > started, (started, again)
    step("container restart (a later startTime)")

    out = az.json("container", "stop", "--resource-group", RG, "--name", GROUP)
    assert out is None, out
    stopped = show()
    assert stopped["instanceView"]["state"] == "Stopped", stopped["instanceView"]
    step("container stop: Stopped")

    out = az.json("container", "start", "--resource-group", RG, "--name", GROUP)
    assert out is None, out
    wait_for("the group to run after start", running)
    step("container start: Running")

    deleted = az.json("container", "delete", "--resource-group", RG, "--name", GROUP, "--yes")
    # az prints the long-running delete's result: the group (as Azure answers
    # a delete), or, when the DELETE announced an Azure-AsyncOperation, the
    # SDK's reading of the final operation status as a ContainerGroup.
    if deleted is not None and deleted.get("name") != GROUP:
        assert deleted.get("status") == "Succeeded", deleted
        assert "/operations/" in deleted["id"], deleted
        print("note: az container delete printed the operation status, not the group", flush=True)
    code, out, err = az.run("container", "show", "--resource-group", RG, "--name", GROUP, check=False)
    assert code != 0, out
    assert "ResourceNotFound" in err, err[-3000:]
    assert az.json("container", "list", "--resource-group", RG) == []
    step("container delete --yes, then show fails with ResourceNotFound")


if __name__ == "__main__":
    main()
