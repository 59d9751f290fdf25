"""Kubernetes manifests: valid against the bundled Kubernetes schemas, and safe to run."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

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


def test_secret_template_holds_no_real_secret() -> None:
    values = RESOURCES["secret.example.yaml"]["stringData"].values()
    assert all(value == "" or "CHANGE-ME" in value for value in values)
