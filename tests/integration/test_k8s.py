"""
test_k8s.py - deploy/k8s (issue 14, point 4) and the image it runs:

* `kubectl kustomize` renders the base and overlays/local;
* tools/it/k8s_check.mjs checks every object against the Kubernetes OpenAPI
  schema (npm's kubernetes-models) and sheaf's rules (non-root, read-only
  root, requests = SHEAF_WORKERS x SHEAF_MEMORY_MB + 128 MiB, grace period
  above SHEAF_GRACE_S, probes, PDBs, references); broken copies of the
  render must fail it, each for its reason;
* docker/Dockerfile (docker cannot run here, so it is read): multi-stage,
  no build tools in the runtime stage, runs as the numeric non-root user
  the manifests run as.
"""

import copy
import re
import shutil
import subprocess

import pytest
import yaml

from harness import REPO
from s3fixture import ensure_tools

K8S = REPO / "deploy" / "k8s"
CHECK = REPO / "tools" / "it" / "k8s_check.mjs"


def kustomize(path):
    if shutil.which("kubectl") is None:
        pytest.fail("no kubectl (scripts/deps.sh installs kubernetes-client)",
                    pytrace=False)
    p = subprocess.run(["kubectl", "kustomize", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def check(text, *flags):
    ensure_tools()
    p = subprocess.run(["node", str(CHECK), *flags, "-"], input=text,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope="module")
def local_docs():
    return list(yaml.safe_load_all(kustomize(K8S / "overlays" / "local")))


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind}/{name}")


def test_base_and_local_render_and_pass(local_docs):
    rc, out = check(kustomize(K8S / "base"))
    assert rc == 0, out
    rc, out = check(yaml.safe_dump_all(local_docs))
    assert rc == 0, out
    kinds = sorted({d["kind"] for d in local_docs})
    assert kinds == ["ConfigMap", "Deployment", "Namespace",
                     "PersistentVolumeClaim", "PodDisruptionBudget",
                     "Secret", "Service", "StatefulSet"]
    assert all(d["metadata"].get("namespace") == "sheaf"
               for d in local_docs if d["kind"] != "Namespace")
    api = find(local_docs, "Deployment", "sheaf-api")
    c = api["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "sheaf:dev"
    db = find(local_docs, "Secret", "sheaf-db")
    assert "sheaf-postgres:5432" in db["stringData"]["DATABASE_URL"]


def test_hpa_example_passes():
    text = (K8S / "examples" / "hpa-workers.yaml").read_text()
    rc, out = check(text, "--partial")
    assert rc == 0, out
    hpa = yaml.safe_load(text)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sheaf-worker"


def worker(docs):
    return find(docs, "Deployment", "sheaf-worker")


def api_c(docs):
    return find(docs, "Deployment", "sheaf-api")["spec"]["template"][
        "spec"]["containers"][0]


BREAKS = [
    ("schema: replicas a string",
     lambda d: worker(d)["spec"].__setitem__("replicas", "two"),
     "schema: data/spec/replicas must be integer"),
    ("root file system writable",
     lambda d: api_c(d)["securityContext"].__setitem__(
         "readOnlyRootFilesystem", False),
     "readOnlyRootFilesystem is not true"),
    ("runs as root",
     lambda d: worker(d)["spec"]["template"]["spec"]["securityContext"]
     .__setitem__("runAsUser", 0),
     "no numeric non-root runAsUser"),
    ("memory not workers x budget",
     lambda d: [e.__setitem__("value", "4") for e in worker(d)["spec"][
         "template"]["spec"]["containers"][0]["env"]
         if e["name"] == "SHEAF_WORKERS"],
     "is not SHEAF_WORKERS x SHEAF_MEMORY_MB + 128Mi"),
    ("grace too short",
     lambda d: worker(d)["spec"]["template"]["spec"].__setitem__(
         "terminationGracePeriodSeconds", 20),
     "terminationGracePeriodSeconds 20 leaves less than"),
    ("no readiness probe",
     lambda d: api_c(d).pop("readinessProbe"),
     "no readiness probe /readyz"),
    ("no PDB",
     lambda d: d.remove(find(d, "PodDisruptionBudget", "sheaf-worker")),
     "Deployment/sheaf-worker: no PodDisruptionBudget selects it"),
    ("missing secret",
     lambda d: d.remove(find(d, "Secret", "sheaf-s3")),
     "no Secret sheaf-s3"),
    ("no limits",
     lambda d: api_c(d)["resources"].pop("limits"),
     "no memory in resources.limits"),
]


@pytest.mark.parametrize("what,brk,words", BREAKS,
                         ids=[b[0] for b in BREAKS])
def test_broken_manifests_fail(local_docs, what, brk, words):
    docs = copy.deepcopy(local_docs)
    brk(docs)
    rc, out = check(yaml.safe_dump_all(docs))
    assert rc == 1, f"{what}: passed\n{out}"
    assert words in out, out


def dockerfile_stages():
    text = (REPO / "docker" / "Dockerfile").read_text()
    # Join continuation lines, drop comments.
    text = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    stages = []
    for ln in lines:
        if ln.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(ln)
    return stages


def test_dockerfile_multistage_nonroot(local_docs):
    stages = dockerfile_stages()
    assert len(stages) >= 2, "not multi-stage"
    runtime = " ".join(stages[-1])
    for tool in ["build-essential", "pkg-config", "-dev ", "gcc", "make "]:
        assert tool not in runtime, f"{tool} in the runtime stage"
    assert "COPY --from=" in runtime
    users = [ln.split()[1] for ln in stages[-1]
             if ln.upper().startswith("USER ")]
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: not numeric"
    pod_uid = worker(local_docs)["spec"]["template"]["spec"][
        "securityContext"]["runAsUser"]
    assert int(uid) == pod_uid
    # The entry point is sheafd, so the manifests' args are its flags.
    assert 'ENTRYPOINT ["/usr/local/bin/sheafd"]' in runtime
