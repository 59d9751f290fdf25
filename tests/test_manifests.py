"""Kubernetes manifests: valid against the bundled Kubernetes schemas, and safe to run."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import typer
import yaml

from bot.cli import app as cli_app
from bot.metrics import METRICS_PATH

MANIFESTS = sorted(
    (Path(__file__).resolve().parent.parent / "manifests" / "kubernetes").glob("*.yaml")
)
RESOURCES = {
    path.name: doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc
}


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_strictly_valid(name: str) -> None:
    kubernetes_validate.validate(RESOURCES[name], kubernetes_validate.latest_version(), strict=True)


def test_deployment_is_replicated_probed_limited_and_unprivileged() -> None:
    deployment = RESOURCES["deployment.yaml"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["tcpSocket"]["port"] == "http"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sources = {
        ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]
    }
    assert sources == {
        RESOURCES["configmap.yaml"]["metadata"]["name"],
        RESOURCES["secret.example.yaml"]["metadata"]["name"],
    }


def test_service_selects_the_deployment_pods() -> None:
    labels = RESOURCES["deployment.yaml"]["spec"]["template"]["metadata"]["labels"]
    selector = RESOURCES["service.yaml"]["spec"]["selector"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("name", ["secret.example.yaml", "agent-secret.example.yaml"])
def test_secret_template_holds_no_real_secret(name: str) -> None:
    values = RESOURCES[name]["stringData"].values()
    assert all(value == "" or "CHANGE-ME" in value for value in values)


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container["env"]}


def test_agent_runs_on_gpu_nodes_unprivileged_without_taking_a_gpu() -> None:
    daemonset = RESOURCES["agent-daemonset.yaml"]
    assert daemonset["kind"] == "DaemonSet"
    pod = daemonset["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" in " ".join(pod["nodeSelector"])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["securityContext"]["runAsNonRoot"] is True and not pod.get("hostPID")
    (container,) = pod["containers"]
    assert container["args"][0] == "agent"
    assert (
        container["image"]
        == RESOURCES["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["memory"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert env_of(container)["NVIDIA_DRIVER_CAPABILITIES"]["value"] == "utility"


def test_agent_arguments_and_variables_are_the_ones_spendbot_agent_reads() -> None:
    (container,) = RESOURCES["agent-daemonset.yaml"]["spec"]["template"]["spec"]["containers"]
    command = typer.main.get_command(cli_app).commands[container["args"][0]]
    options = {name for param in command.params for name in param.opts}
    envvars = {param.envvar for param in command.params if param.envvar}
    flags = [arg for arg in container["args"][1:] if arg.startswith("--")]
    assert flags and set(flags) <= options
    env = env_of(container)
    assert {name for name in env if name.startswith("SPENDBOT_")} <= envvars
    assert {"SPENDBOT_AGENT_URL", "SPENDBOT_AGENT_TOKEN"} <= set(env)
    # The host name is the node's, through Kubernetes' $(VAR) expansion of an env variable.
    host = container["args"][container["args"].index("--host") + 1]
    assert env[host.strip("$()")]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_agent_pushes_to_the_service_with_the_token_the_bot_accepts() -> None:
    (agent,) = RESOURCES["agent-daemonset.yaml"]["spec"]["template"]["spec"]["containers"]
    (bot,) = RESOURCES["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    service = RESOURCES["service.yaml"]
    url = urlsplit(env_of(agent)["SPENDBOT_AGENT_URL"]["value"])
    assert url.hostname == service["metadata"]["name"] and url.path == "/api/gpu-metrics"
    (port,) = service["spec"]["ports"]
    assert (url.port or 80) == port["port"]
    assert port["targetPort"] in {p["name"] for p in bot["ports"]}
    pushed = env_of(agent)["SPENDBOT_AGENT_TOKEN"]["valueFrom"]["secretKeyRef"]
    accepted = env_of(bot)["SPENDBOT_AGENT_TOKENS"]["valueFrom"]["secretKeyRef"]
    secret = RESOURCES["agent-secret.example.yaml"]
    assert pushed["name"] == accepted["name"] == secret["metadata"]["name"]
    assert pushed["key"] == accepted["key"] and pushed["key"] in secret["stringData"]


def test_bot_pods_are_annotated_for_prometheus() -> None:
    template = RESOURCES["deployment.yaml"]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    (container,) = template["spec"]["containers"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
