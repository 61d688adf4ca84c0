"""`make bench`: the encoding, start-up, mining and end-to-end benchmarks, then one table of figures and targets.

Says first what `--precision auto` picks on this machine. Runs bench_encode.py, bench_precision.py, bench_compare.py,
bench_mining.py, bench_e2e.py and bench_ray.py (each writes its JSON under bench/results/), then prints the table and
writes bench/results/summary.json; bench_gpu_node.py's figures are shown too when a GPU machine wrote them there.
Ratios are taken within one run, so a busy machine slows both sides alike; absolute times are only as good as the
machine is quiet.

    .venv/bin/python bench/run_all.py [--skip encode,precision,compare,mining,e2e,ray] [--mining-sizes 10000,100000]
                                      [--e2e-sizes 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MB_PER_GIB = 1024**3 / 1e6


def run(script: str, *args: str) -> None:
    print(f"== {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(BENCH / script), *args], check=False)


def load(name: str) -> dict[str, Any] | None:
    file = RESULTS / f"{name}.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def rows() -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, target, met) for every figure in the results."""
    table: list[tuple[str, str, str, bool | None]] = []
    encode = load("encode")
    if encode:
        rates = ", ".join(f"{name} {rate:.0f}/s" for name, rate in encode["sentences_per_s"].items())
        medians = encode["speedup_medians"]  # "<encoder> / torch" and "<bf16 or int8 encoder> / <fp32 encoder>"
        int8_torch = next(value for name, value in medians.items() if name.endswith(" int8 / torch"))
        int8_fp32 = next(value for name, value in medians.items() if " int8 / " in name and name.endswith(" fp32"))
        speedups = ", ".join(f"{name} {value:.2f}x" for name, value in medians.items())
        changed = ", ".join(f"{figures['pairs_changed']}" for figures in encode["agreement_with_torch"].values())
        value = (
            f"{rates} ({speedups}), pairs changed vs torch {changed};"
            f" int8/fp32 GEMM peak here {encode['bound']['int8_over_fp32_peak']:.2f}"
        )
        met = int8_torch >= 2.5 and int8_fp32 >= 1.6
        table.append((f"encode {encode['n']} questions", value, "int8 ≥ 2.5x torch and ≥ 1.6x fp32", met))
    precision = load("precision-int8-dev")
    if precision:
        checks = ", ".join(f"{name} {'pass' if passed else 'FAIL'}" for name, passed in precision["checks"].items())
        table.append(("int8 quality guard (dev)", checks, "every check passes", precision["passed"]))
    compare = load("compare")
    if compare:
        medians = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in compare["median_seconds"].items())
        met = compare["median_seconds"]["dupfind compare"] <= 1.0
        table.append(("compare cold start", f"{medians} ({compare['speedup']:.1f}x)", "≤ 1.0 s", met))
    mining = load("mining")
    for size in mining["sizes"] if mining else []:
        for name, figure in size["methods"].items():
            value = (
                f"{figure['seconds']:.2f} s ({figure['cpu_seconds']:.1f} s cpu), {figure['peak_rss_mb']:.0f} MB peak"
                f" (+{figure['extra_rss_mb']:.0f}), {figure['pairs']} pairs, recall {figure['recall_vs_exact']:.4f}"
            )
            target, met = "", None
            if "speedup_vs_st" in figure:
                value += f", {figure['speedup_vs_st']:.1f}x st"
            if name == "dupfind ann" and size["n"] >= 100_000 and "speedup_vs_st" in figure:
                target = "≥ 5x st, ≥ 0.999 of st's pairs, ≤ 1000 MB extra"
                met = (
                    figure["speedup_vs_st"] >= 5 and figure["recall_vs_st"] >= 0.999 and figure["extra_rss_mb"] <= 1000
                )
            table.append((f"mine {size['n']}: {name}", value, target, met))
    e2e = load("e2e")
    for size in e2e["sizes"] if e2e else []:
        n = size["n"]
        for run_name in ("first", "rerun", "changed"):
            figure = size[run_name]
            value = f"{figure['seconds']:.1f} s, {figure['peak_rss_mb']:.0f} MB peak"
            target, met = "", None
            if run_name == "first" and n >= 1_000_000:
                target = "≤ 900 s, ≤ 8 GiB"
                met = figure["seconds"] <= 900 and figure["peak_rss_mb"] <= 8 * MB_PER_GIB
            if run_name == "rerun":
                value += f" ({size['rerun_speedup']:.1f}x faster than the first)"
                target, met = "≥ 20x faster", size["rerun_speedup"] >= 20
            if run_name == "changed":
                value += f", {figure['encoded']} rows encoded"
            table.append((f"dupfind mine {n}: {run_name} run", value, target, met))
    ray = load("ray")
    if ray and "timed" in ray:
        timed = ray["timed"]
        value = (
            f"local {timed['local']['seconds']:.1f} s, Ray {timed['ray']['seconds']:.1f} s"
            f" ({100 * timed['ray_overhead']:+.1f}%), re-run {timed['ray_rerun']['seconds']:.1f} s"
            f" ({timed['rerun_speedup']:.1f}x); pairs vs local {timed['pairs_vs_local']['found_share']:.4f}"
        )
        met = timed["ray_overhead"] <= 0.25 and timed["rerun_speedup"] >= 10
        table.append((f"mine --engine ray {timed['n']}", value, "overhead ≤ 25%, re-run ≥ 10x faster", met))
    if ray and "dev" in ray:
        dev = ray["dev"]
        value = f"{dev['found_share']:.5f} of {dev['reference_pairs']} exact pairs, {dev['extra']} extra"
        table.append(("mine --engine ray, dev", value, "≥ 0.999 of --index exact's pairs", dev["found_share"] >= 0.999))
    gpu = load("gpu_node")
    if gpu:
        best = max(gpu["shared_gpu"] + gpu["gpu_actor"], key=lambda figure: figure["per_second"])
        actors = best.get("actors", 1)
        value = f"{best['per_second']:.0f}/s with {actors} actor(s), {best['speedup_vs_cpu_actor']:.1f}x the CPU actor"
        table.append((f"encoder actors on a {gpu['gpu']}", value, "", None))
    return table


def auto_choice() -> str:
    """What `--precision auto` (and `--backend auto`) picks here, and why."""
    from dupfind.vectors.precision import choose, cpu_features, cuda_visible

    return choose(cpu_features(), cuda_visible()).describe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", default="", help="comma-separated: encode, precision, compare, mining, e2e, ray")
    parser.add_argument("--mining-sizes", default="10000,100000")
    parser.add_argument("--e2e-sizes", default="100000", help="add 1000000 for the 1M target (long)")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"--precision auto on this machine: {auto_choice()}", flush=True)
    if "encode" not in skip:
        run("bench_encode.py")
    if "precision" not in skip:
        run("bench_precision.py")
    if "compare" not in skip:
        run("bench_compare.py")
    if "mining" not in skip:
        run("bench_mining.py", "--sizes", args.mining_sizes)
    if "e2e" not in skip:
        run("bench_e2e.py", "--sizes", args.e2e_sizes)
    if "ray" not in skip:
        run("bench_ray.py")
    table = [("--precision auto on this machine", auto_choice(), "", None), *rows()]
    width = max((len(row[0]) for row in table), default=10)
    print(f"\n{'figure':{width}}  {'target':46}  met  value")
    for figure, value, target, met in table:
        mark = {True: "yes", False: "NO", None: ""}[met]
        print(f"{figure:{width}}  {target:46}  {mark:3}  {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = [{"figure": figure, "value": value, "target": target, "met": met} for figure, value, target, met in table]
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
