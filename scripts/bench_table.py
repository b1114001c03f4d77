#!/usr/bin/env python3
"""
bench_table.py - the one table of `make bench` (scripts/bench.sh): sheaf's
runs (bench_sheaf.py's JSON) beside the peers' (../shared/bench/run.sh's
markdown), and whether sheaf's result equals the reference peer's.

usage: bench_table.py --sheaf SHEAF.json --peers PEERS.md --out-dir DIR
                      --csv FILE [--peer-list "duckdb polars ..."]

Columns: sheaf's median wall time (POST to result downloaded), input MB/s,
peak RSS of the largest worker and of the sheafd main process; for each
peer its median wall time, peak RSS and the ratio peer time / sheaf time
(above 1: sheaf is faster); then whether sheaf's canonical output equals
the reference's (DuckDB's; pandas's or scikit-learn's when DuckDB did not
run), compared as workloads.compare does (ints and strings exactly, floats
as %.6g text, a half-way %.6g rounding of a value within 1e-9 allowed and
counted). MB = 10^6 bytes, as run.sh.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import workloads as W  # noqa: E402

ALL_PEERS = ["duckdb", "polars", "pandas", "dask", "sklearn", "awk"]


def parse_peers(md_path):
    """run.sh's table -> {(workload, peer): dict(status, wall, rss, match)}
    and the baselines {name: wall}."""
    peers, base = {}, {}
    if not md_path or not os.path.exists(md_path):
        return peers, base
    for line in Path(md_path).read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| workload") \
                or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6:
            continue
        w, p, wall, _mbs, rss, match = cells[:6]
        if w == "baseline":
            base[p] = wall
            continue
        try:
            peers[(w, p)] = {"status": "ok", "wall": float(wall),
                             "rss": int(rss), "match": match}
        except ValueError:
            peers[(w, p)] = {"status": wall, "match": match}
    return peers, base


def ref_for(w, peers, out_dir):
    """-> (label, text) of the reference: a peer that ran OK in this run,
    else a peer's output left in out_dir by an earlier run on the same file
    (labelled 'cached'), else (None, None)."""
    order = ["duckdb", "sklearn" if w == "w6" else "pandas", "polars", "dask"]
    for p in order:
        e = peers.get((w, p))
        f = Path(out_dir) / f"{p}-{w}.csv"
        if e and e["status"] == "ok" and f.is_file():
            return p, f.read_text()
    for p in order:
        f = Path(out_dir) / f"{p}-{w}.csv"
        if (w, p) not in peers and f.is_file() and f.stat().st_size > 0:
            return f"{p}, cached from an earlier run", f.read_text()
    return None, None


def match_cell(w, sheaf, peers, out_dir):
    if sheaf.get("status") != "ok":
        return "-"
    ref_peer, ref = ref_for(w, peers, out_dir)
    if ref is None:
        return "n/a (no reference peer ran)"
    body = Path(sheaf["output"]).read_bytes()
    problems, rounding = W.compare(w, body, ref)
    name = "DuckDB" if ref_peer == "duckdb" else ref_peer
    if not problems:
        extra = (f"; {rounding} floats half-way at %.6g" if rounding else "")
        return f"yes ({name}{extra})"
    first = problems[0]
    if len(first) > 120:
        first = first[:117] + "..."
    return f"**NO** vs {name}: {len(problems)} differences, first: {first}"


def fmt_s(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheaf", required=True)
    ap.add_argument("--peers")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--peer-list", default=" ".join(ALL_PEERS))
    a = ap.parse_args()

    sh = json.loads(Path(a.sheaf).read_text())
    peers, base = parse_peers(a.peers)
    peer_list = [p for p in a.peer_list.split() if p in ALL_PEERS]
    nbytes = os.path.getsize(a.csv)

    print(f"input: {a.csv} ({nbytes / 1e6:.0f} MB); sheaf: "
          f"{sh['workers']} workers, SHEAF_MEMORY_MB={sh['memory_mb']}, "
          f"partition_size {sh['partition_size']}; "
          + (f"baselines: cat {base.get('cat > /dev/null', '?')} s, "
             f"wc -l {base.get('wc -l', '?')} s" if base else "no peers run"))
    print()
    head = (["workload", "sheaf s", "sheaf MB/s",
             "sheaf peak RSS MB (largest worker / sheafd)", "sheaf spill MB"]
            + [f"{p}: s · RSS MB · {p}/sheaf" for p in peer_list]
            + ["sheaf output = reference"])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for w in W.BENCH_ALL:
        s = sh["workloads"].get(w)
        if s is None:
            continue
        row = [f"{w.upper()} {W.NAMES[w]}"]
        if s["status"] == "ok":
            row += [fmt_s(s["wall"]), f"{nbytes / 1e6 / s['wall']:.0f}",
                    f"{s['rss_worker_kb'] * 1024 / 1e6:.0f} / "
                    f"{s['rss_main_kb'] * 1024 / 1e6:.0f}",
                    f"{s.get('spill_bytes', 0) / 1e6:.0f}"]
        else:
            err = (s.get("error") or "")[:100]
            row += [f"{s['status']}: {err}", "", "", ""]
        for p in peer_list:
            e = peers.get((w, p))
            if e is None:
                row.append("—")
            elif e["status"] != "ok":
                row.append(e["status"])
            else:
                ratio = (f"{e['wall'] / s['wall']:.2f}×"
                         if s["status"] == "ok" and s["wall"] > 0 else "-")
                mark = " (≠ DuckDB)" if e["match"].startswith("NO") else ""
                row.append(f"{fmt_s(e['wall'])} · {e['rss']} · {ratio}{mark}")
        row.append(match_cell(w, s, peers, a.out_dir))
        print("| " + " | ".join(row) + " |")
    w8 = sh["workloads"].get("w8")
    if w8 and w8.get("status") == "ok":
        mib = w8["rss_worker_kb"] / 1024
        budget = int(w8.get("env", {}).get("SHEAF_MEMORY_MB",
                                           W.W8_MEMORY_MB))
        print()
        print(f"W8 ran with SHEAF_MEMORY_MB={budget}: the largest worker's "
              f"peak RSS was {mib:.0f} MiB, "
              + ("under the budget." if mib < budget
                 else "**OVER the budget**."), end="")
        joins = [st["join"] for st in w8.get("plan", {}).get("steps", [])
                 if isinstance(st, dict) and "join" in st]
        for j in joins:
            print(f" Join strategy: {j['strategy']} ({j['why']}).", end="")
        secs = w8.get("stage_seconds") or {}
        if secs:
            print(" Task seconds by stage: " + "; ".join(
                f"stage {k}: {len(v)} tasks, {sum(v):.1f} s in all, "
                f"{max(v):.1f} s the longest"
                for k, v in sorted(secs.items(), key=lambda kv: int(kv[0])))
                + ".", end="")
        lim = Path(a.out_dir) / "duckdb-w8.limit"
        if lim.is_file():
            print(f" DuckDB ran with memory_limit "
                  f"{lim.read_text().strip()} (the smallest of 64, 96, "
                  f"128, 192, 256, 512 MiB it did not run out of memory "
                  f"with).")
        else:
            print()
    print()
    print("— : the peer does not support the workload (or was not run). "
          "Ratio above 1: sheaf is faster. RSS of a peer: its largest "
          "process (run.sh); of sheaf: the largest worker process / the "
          "sheafd main process (API, scheduler). Spill: bytes the job's "
          "tasks wrote to disk past their memory budget (GET "
          "/v1/jobs/{id}/tasks, spill_bytes).")


if __name__ == "__main__":
    main()
