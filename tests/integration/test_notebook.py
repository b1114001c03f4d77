"""
test_notebook.py - examples/arxiv.ipynb runs end to end against the
session's sheafd, through the Python client (clients/python): executed
headless with nbclient (in an ipykernel, as
`jupyter nbconvert --execute` would), every cell without error, its two
plots drawn, its top word the one Python counts in the file it wrote, its
accuracy that of the job's report. The executed copy goes to the test's
tmp dir, never into the repository.
"""

import collections
import csv
import importlib.util
import re

import pytest

from harness import REPO

NOTEBOOK = REPO / "examples" / "arxiv.ipynb"


def top_words(path):
    """The notebook's word count in plain Python: non-empty abstracts,
    lowercased runs of [a-z0-9], four characters or more."""
    counts = collections.Counter()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["abstract"]:
                counts.update(w for w in re.findall(
                    r"[a-z0-9]+", row["abstract"].lower()) if len(w) >= 4)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def test_notebook_runs(sheaf, tmp_path, monkeypatch):
    nbformat = pytest.importorskip(
        "nbformat", reason="python3-nbformat missing (scripts/deps.sh)")
    nbclient = pytest.importorskip(
        "nbclient", reason="python3-nbclient missing (scripts/deps.sh)")
    pytest.importorskip("ipykernel",
                        reason="python3-ipykernel missing (scripts/deps.sh)")
    pytest.importorskip("matplotlib",
                        reason="python3-matplotlib missing (scripts/deps.sh)")

    # The notebook imports the client, installed or from ../clients/python.
    if (not (REPO / "clients" / "python" / "sheaf").is_dir()
            and importlib.util.find_spec("sheaf") is None):
        pytest.fail("the Python client (clients/python/sheaf) is not in this "
                    "tree nor importable", pytrace=False)

    source = nbformat.read(NOTEBOOK, as_version=4)
    # The committed notebook is kept small: no outputs.
    for cell in source.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None

    # The kernel inherits this environment.
    monkeypatch.setenv("SHEAF_URL", sheaf.base)
    monkeypatch.setenv("SHEAF_DATA_ROOT", str(sheaf.data))
    monkeypatch.setenv("ARXIV_ROWS", "6000")
    monkeypatch.setenv("MPLBACKEND",
                       "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.delenv("SHEAF_TOKEN", raising=False)

    client = nbclient.NotebookClient(
        source, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(source, tmp_path / "arxiv.executed.ipynb")

    outputs = [o for c in source.cells if c.cell_type == "code"
               for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert errors == [], errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, "the top words and the confusion matrix"
    text = "".join(o.get("text", "") for o in outputs
                   if o.output_type == "stream")
    # The client's progress bar, to the end of each job.
    assert len(re.findall(r"(\d+)/\1 partitions [^\n\r]* succeeded",
                          text)) >= 2, text

    # The jobs it ran, as the API tells.
    def newest(name):
        jobs = sheaf.api("GET", f"/v1/jobs?name={name.replace(' ', '%20')}"
                         f"&limit=1").body["jobs"]
        assert jobs and jobs[0]["status"] == "succeeded", jobs
        return jobs[0]

    words, nb = newest("notebook: top words"), newest("notebook: naive Bayes")

    m = re.search(r"^top word: (\S+) \(([\d,]+)\)$", text, re.M)
    assert m, text
    want = top_words(sheaf.data / "examples" / "arxiv.csv")
    assert (m.group(1), int(m.group(2).replace(",", ""))) == want[0]
    assert sheaf.result(words["id"]).decode().splitlines()[1] == (
        f"{want[0][0]},{want[0][1]}")

    m = re.search(r"^accuracy: ([\d.]+) on ([\d,]+) papers$", text, re.M)
    assert m, text
    accuracy = float(m.group(1))
    assert 0.5 <= accuracy <= 1.0, accuracy
    report = sheaf.api("GET", f"/v1/jobs/{nb['id']}/artifacts/report").body
    assert accuracy == pytest.approx(report["accuracy"], abs=5e-5)
