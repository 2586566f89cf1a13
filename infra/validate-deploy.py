"""The checks of infra/validate-deploy that no ready-made validator does (run in its venv).

- infra/k8s: each manifest against the Kubernetes API schemas (kubernetes-validate, strict), or,
  for the kinds of the CRDs vendored in infra/schemas (SpinApp, SpinAppExecutor, CloudNativePG's
  Cluster and ScheduledBackup), against the CRD's openAPIV3Schema with unknown fields refused, as the API
  server's strict field validation would (the CEL rules, `x-kubernetes-validations`, are not
  evaluated). A kind with neither schema is an error, not a warning. Then the references:
  every Secret and key a manifest names exists in the manifests, every namespaced object is in
  the namespace the manifests create, kustomization.yaml lists every file.
- infra/compose.yaml (its schema is checked by check-jsonschema before): depends_on names
  services, a service of the default set does not wait for one of a profile, the stores that
  infra/stores starts by name exist in no profile, the bind-mounted files exist.
- the observability files parse; the metrics helper's dashboard and rules only if present.

Usage: python validate-deploy.py <repository root>. Exit status 1 with every error listed.
"""

import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
CRD_FILES = [
    "core.spinkube.dev_spinapps.yaml",
    "core.spinkube.dev_spinappexecutors.yaml",
    "postgresql.cnpg.io_clusters.yaml",
    "postgresql.cnpg.io_scheduledbackups.yaml",
]
# infra/stores starts these by name (`docker compose up redis postgres`).
STORE_SERVICES = ["redis", "postgres"]

errors = []


def error(where, message):
    errors.append(f"{where}: {message}")


def strict(schema):
    """The CRD schema with `additionalProperties: false` on every object that lists its
    properties and does not keep unknown fields: a misspelt field is an error."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_validators(schemas):
    validators = {}
    for name in CRD_FILES:
        crd = yaml.safe_load((schemas / name).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


def describe(doc):
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def path_of(err):
    return ".".join(str(p) for p in err.absolute_path) or "(top)"


def secret_references(node, found):
    """Every (Secret name, key or None) a manifest refers to."""
    if isinstance(node, dict):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict):
            found.append((ref.get("name"), ref.get("key")))
        for field in ("passwordSecret", "superuserSecret"):
            if isinstance(node.get(field), dict):
                found.append((node[field].get("name"), None))
        if isinstance(node.get("s3Credentials"), dict):
            for ref in node["s3Credentials"].values():
                if isinstance(ref, dict):
                    found.append((ref.get("name"), ref.get("key")))
        for value in node.values():
            secret_references(value, found)
    elif isinstance(node, list):
        for value in node:
            secret_references(value, found)


def check_kubernetes(root):
    k8s = root / "infra/k8s"
    validators = crd_validators(root / "infra/schemas")
    docs = []  # (file name, doc)
    for file in sorted(k8s.glob("*.yaml")):
        if file.name == "kustomization.yaml":
            continue
        try:
            loaded = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except yaml.YAMLError as e:
            error(file.name, f"not YAML: {e}")
            continue
        if not loaded:
            error(file.name, "holds no manifest")
        docs += [(file.name, d) for d in loaded]

    for name, doc in docs:
        where = f"infra/k8s/{name} {describe(doc)}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in validators:
            for err in sorted(validators[key].iter_errors(doc), key=lambda e: list(e.absolute_path)):
                error(where, f"{path_of(err)}: {err.message}")
            if not (doc.get("metadata") or {}).get("name"):
                error(where, "metadata.name missing")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            error(where, f"no schema for {key[0]} {key[1]} (Kubernetes {KUBERNETES_VERSION} or infra/schemas)")
        except kubernetes_validate.ValidationError as e:
            error(where, f"{path_of(e)}: {e.message}")

    # References between the manifests.
    namespaces = {d["metadata"]["name"] for _, d in docs if d.get("kind") == "Namespace"}
    if len(namespaces) != 1:
        error("infra/k8s", f"expected one Namespace, found {sorted(namespaces)}")
    secrets = {}
    for _, d in docs:
        if d.get("kind") == "Secret":
            secrets[d["metadata"]["name"]] = set(d.get("stringData") or {}) | set(d.get("data") or {})
    for name, doc in docs:
        where = f"infra/k8s/{name} {describe(doc)}"
        if doc.get("kind") not in ("Namespace",) and (doc.get("metadata") or {}).get("namespace") not in namespaces:
            error(where, f"metadata.namespace should be one of {sorted(namespaces)}")
        refs = []
        secret_references(doc.get("spec"), refs)
        for secret, key in refs:
            if secret not in secrets:
                error(where, f"refers to Secret {secret!r}, which no manifest defines")
            elif key is not None and key not in secrets[secret]:
                error(where, f"refers to key {key!r} of Secret {secret!r}, which it does not have")
        if doc.get("kind") == "Secret" and doc.get("type") == "kubernetes.io/basic-auth":
            if not {"username", "password"} <= secrets[doc["metadata"]["name"]]:
                error(where, "a basic-auth Secret needs username and password")

    kustomization = k8s / "kustomization.yaml"
    listed = set(yaml.safe_load(kustomization.read_text()).get("resources") or [])
    present = {f.name for f in k8s.glob("*.yaml")} - {"kustomization.yaml"}
    for missing in sorted(present - listed):
        error("infra/k8s/kustomization.yaml", f"does not list {missing}")
    for gone in sorted(listed - present):
        error("infra/k8s/kustomization.yaml", f"lists {gone}, which does not exist")
    return len(docs)


def check_compose(root):
    infra = root / "infra"
    compose = yaml.safe_load((infra / "compose.yaml").read_text())
    services = compose.get("services") or {}
    for store in STORE_SERVICES:
        s = services.get(store)
        if s is None:
            error("infra/compose.yaml", f"no service {store!r} (infra/stores starts it by name)")
        elif s.get("profiles") or s.get("depends_on"):
            error("infra/compose.yaml", f"{store!r} must be in no profile and wait for nothing (infra/stores starts it alone)")
    for name, s in services.items():
        where = f"infra/compose.yaml service {name}"
        depends = s.get("depends_on") or {}
        for other in depends if isinstance(depends, (dict, list)) else []:
            if other not in services:
                error(where, f"depends on {other!r}, which is not a service")
            elif not s.get("profiles") and services[other].get("profiles"):
                error(where, f"is in the default set but waits for {other!r}, which is only in profiles {services[other]['profiles']}")
        for volume in s.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith((".", "/")):
                continue  # a named volume
            path = (infra / source).resolve()
            # The built components appear with the build; the rest is in the repository.
            if path.is_relative_to(root / "target"):
                continue
            if not path.exists():
                error(where, f"mounts {source}, which does not exist")
    return len(services)


def check_observability(root):
    checked = []
    for rel in [
        "infra/prometheus/prometheus.yml",
        "infra/otel/collector.yaml",
        *sorted(str(p.relative_to(root)) for p in (root / "infra/grafana/provisioning").rglob("*.yml")),
        *sorted(str(p.relative_to(root)) for p in (root / "infra/prometheus").glob("alerts*.yml")),
    ]:
        try:
            if not isinstance(yaml.safe_load((root / rel).read_text()), dict):
                error(rel, "is not a YAML mapping")
        except (OSError, yaml.YAMLError) as e:
            error(rel, str(e))
        checked.append(rel)
    for dashboard in sorted((root / "infra/grafana/dashboards").glob("*.json")):
        rel = str(dashboard.relative_to(root))
        try:
            if "panels" not in json.loads(dashboard.read_text()):
                error(rel, "a Grafana dashboard has `panels`")
        except ValueError as e:
            error(rel, f"not JSON: {e}")
        checked.append(rel)
    return len(checked)


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    manifests = check_kubernetes(root)
    services = check_compose(root)
    files = check_observability(root)
    if errors:
        for line in errors:
            print(f"validate-deploy: {line}", file=sys.stderr)
        print(f"validate-deploy: {len(errors)} error(s)", file=sys.stderr)
        sys.exit(1)
    print(
        f"validate-deploy: {manifests} Kubernetes manifests (Kubernetes {KUBERNETES_VERSION} and CRD schemas), "
        f"{services} compose services, {files} observability files: ok",
        file=sys.stderr,
    )


main()
