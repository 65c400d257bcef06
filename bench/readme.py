"""The README's numbers, rendered from bench/results/*.json only (never typed by hand).

`make bench` ends by rewriting the blocks between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
in README.md and docs/ (PAGES); tests/unit/test_readme_numbers.py checks the pages still say what the
results say.

    python -m bench.readme        (part of make bench)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
# The pages that carry measured numbers (each block stands in exactly one of them).
PAGES = [README, ROOT / "docs" / "NUMBERS.md", ROOT / "docs" / "EVIDENCE.md", ROOT / "docs" / "ARCHITECTURE.md"]


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((RESULTS / f"{name}.json").read_text()))


def timers() -> str:
    r = load("timer_transitions")
    rows = ["| lifecycle path | transitions per timer | state transitions | USD per million disputes |",
            "|---|---|---|---|"]
    rows += [f"| {x['path']} | {x['per_timer']} | {x['state_transitions']} | {x['usd_per_million_disputes']} |"
             for x in r["results"]]
    return "\n".join(rows)


def numbers() -> str:
    local, first = load("local_overhead"), load("first_request")
    throughput, memory = load("evidence_throughput"), load("evidence_memory")
    m = local["machine"]
    api, bare = local["results"]["get_dispute_via_api_ms"], local["results"]["bare_getitem_ms"]
    fr = first["results"]
    bundle, sweep, soak, cost = load("bundle_import"), load("sweep_reads"), load("dev_memory"), load("cost")
    cold = first["cold_get"]
    standing = load("standing_read")
    sr = standing["results"]
    budget = load("evidence_budget")
    phone = throughput["sets"]["phone photos"]
    noisy = next(v for k, v in throughput["sets"].items() if k != "phone photos")
    return "\n".join([
        f"Measured by `make bench` on {local['date']}, {m['cores']} cores ({m['cpu']}), Python {m['python']};",
        "each figure is a ratio against a baseline measured in the same run, from `bench/results/*.json`",
        "(method, repetitions and spread are in each file):",
        f"- Local overhead: `GET /disputes/{{id}}` through `make dev` takes {api['median']:.1f} ms at p50 against "
        f"{bare['median']:.1f} ms for a bare",
        f"  DynamoDB GetItem of the same item on the same emulator ({local['repetitions']['rounds']} interleaved "
        f"reads each): a ratio of **{local['ratio_api_over_getitem_p50']}** (goal at most 2.0).",
        f"  Idle, the stack uses {local['idle_cpu_percent_of_a_core']} % of a core (over {local['idle_seconds']} s); "
        f"Ctrl-C stops all of it in {local['ctrl_c_seconds']} s (goal at most 2 s); a taken port is a one-line error",
        f"  after {max(local['taken_port_exit_seconds'].values())} s (goal at most 2 s).",
        f"- Evidence on 12 MP phone photos ({phone['mb_per_file']} MB each): **{phone['ratio_median']}x** the throughput "
        f"of Pillow's bare decode + re-encode",
        f"  of the same files (min {phone['ratio_min']}, max {phone['ratio_max']} over {throughput['repetitions']} "
        f"rounds; {phone['ours_mb_per_s']} against {phone['baseline_mb_per_s']} MB/s on one core);",
        f"  {noisy['ratio_median']}x on sensor-noise photos, the entropy decoder's worst case. What each step costs: "
        "see Evidence.",
        f"- Evidence memory: the worst of {len(memory['results'])} worst-case inputs peaks at **{memory['worst_peak_mb']} MB** "
        f"(goal {memory['goal_peak_mb']} MB, so the",
        f"  512 MB function keeps room for boto3 and the download); the slowest takes {memory['worst_seconds']} s.",
        f"- A cold container's first request: {fr['first_request_cpu_ms']['median']} ms of CPU at p50 against "
        f"{fr['warm_request_cpu_ms']['median']} ms warm",
        f"  ({first['repetitions']['fresh_processes']} fresh processes); most of it is botocore loading its "
        "endpoint data once.",
        f"- A cold container's first `GET /disputes/{{id}}` (prod configuration, wiring included, imports excluded): "
        f"{cold['first_get_cpu_ms']['median']} ms of CPU",
        f"  at p50 against {cold['baseline_cpu_ms']['median']} ms for a fresh boto3 session + DynamoDB client + one "
        f"GetItem: **{cold['ratio_p50']}x** (goal at most 1.5; it was 2.08x while every function read the Stripe",
        "  secret at start, 4.6x before that: the secret is now read when a refund or webhook first needs it).",
        f"- The Lambda bundle: the function's code {bundle['zipped_mb']['deployment.zip']} MB zipped, its dependencies "
        f"layer {bundle['zipped_mb']['layer.zip']} MB. Importing the app (which every function pays)",
        f"  from it on the runtime's Python takes **{bundle['results']['bundle']['ratio_app_over_baseline']}x** "
        f"`import chalice, boto3` there (goal at most 1.15); from source, "
        f"{bundle['results']['source']['ratio_app_over_baseline']}x.",
        f"- The escrow sweep with {sweep['repetitions']['due']:,} orders due of {sweep['repetitions']['orders']:,}: "
        f"**{sweep['results']['items_read_per_release']}** items read per release (goal at most 1.2; it was 4.55).",
        f"- `make dev` playing {soak['repetitions']['disputes']} disputes with short timers: "
        f"{soak['results']['samples'][0]['rss_mb']} MB resident at the start, then "
        f"{', '.join(f'+{g}' for g in soak['results']['growth_mb_per_100'])} MB",
        "  per hundred disputes, under 1 GB in all (goal: no growth after the first hundred beyond the items the "
        "emulator holds; before its Step Functions executions were bounded",
        "  in local/emulator.py: +32.4, +38.0, +33.6 MB per hundred; before its transactions were: +155, +417, "
        "+680 MB per fifty).",
        f"- Evidence inspection at the 512 MB function's share of a CPU ({budget['cpu_share']} of a vCPU, a duty "
        f"cycle on one core): the slowest of {len(budget['results']['rows'])}",
        f"  worst-case inputs uses {budget['results']['worst']['cpu_seconds']} s of CPU, "
        f"{budget['results']['worst']['lambda_seconds']} s at that share: **{budget['ratio_worst_over_timeout']}** "
        f"of the {budget['timeout_seconds']} s timeout (goal at most 0.5).",
        f"  Any file past the budget of {budget['budget_cpu_seconds']} s of CPU (half the timeout at that share) is "
        "refused with `INSPECTION_BUDGET_EXCEEDED`, never retried"
        + (f" ({len(budget['results']['refused_over_budget'])} of the inputs were)." if budget['results']
           ['refused_over_budget'] else " (none of the inputs was)."),
        "- AWS cost per million disputes, from the calls counted (prices in bench/prices.json): "
        + ", ".join(f"{kind.replace('_', '-')} ${r['usd_per_million_disputes_total']:,.0f}"
                    for kind, r in cost["results"].items()) + ".",
        f"- Seller standing of a seller with 10,000 orders and 1,000 disputes ({standing['date']}): "
        f"{sr['standing_long_window_ms']['median']:.1f} ms at p50 when the",
        f"  365-day window is read (3 Queries), {sr['standing_short_window_ms']['median']:.1f} ms for the 90-day "
        f"window (1 Query), against {sr['get_dispute_ms']['median']:.1f} ms for `GET /disputes/{{id}}`:",
        f"  **{standing['ratio_long_window_over_dispute_p50']}x** and "
        f"**{standing['ratio_short_window_over_dispute_p50']}x** (the emulator walks the whole partition per Query).",
    ])


def evidence() -> str:
    throughput, memory = load("evidence_throughput"), load("evidence_memory")
    m = local_machine(throughput)
    phone = throughput["sets"]["phone photos"]
    noisy = next(v for k, v in throughput["sets"].items() if k != "phone photos")
    stage = {k: round(v * 1000, 1) for k, v in phone["stage_seconds_per_file"].items()}
    return "\n".join([
        f"Memory and time, measured by `make bench` on {throughput['date'][:10]} ({m}; "
        "`bench/results/evidence_memory.json`, `bench/results/evidence_throughput.json`):",
        f"- every worst input allowed, {len(memory['results'])} in all (each format at the largest dimensions and "
        "size accepted, with and",
        "  without rotation; CMYK, grey, 1-bit, paletted, 16-bit and alpha PNG; progressive JPEG and JPEG",
        "  with its components in separate scans at their budgets, 100 scans, 500 segments; a PNG with",
        "  10 MiB of text; a 10 MB PDF of 2000 pages and one of object streams unpacking to every limit;",
        "  a 50 MB MP4 and one of 100 000 boxes; and the bombs just past each limit), each in a fresh",
        f"  process: peak resident memory at most {memory['worst_peak_mb']} MB (goal {memory['goal_peak_mb']}), "
        f"at most {memory['worst_seconds']} s each. The evidence function is sized from",
        "  this: 512 MB in every stage (`.chalice/config.json`), timeout 30 s (a sixth of the queue's",
        "  180 s visibility timeout).",
        f"- 12 MP phone photos ({phone['mb_per_file']} MB, rotated, with GPS EXIF and a Display P3 profile): "
        f"{phone['ratio_median']}x the "
        "throughput of Pillow's bare",
        f"  full decode + re-encode of the same files in the same run (min {phone['ratio_min']}, max "
        f"{phone['ratio_max']} over {throughput['repetitions']}",
        f"  rounds). On sensor noise ({noisy['mb_per_file']} MB files, the entropy decoder's worst case): "
        f"{noisy['ratio_median']}x.",
        "  What each guarantee costs, per 12 MP photo (phone set, median): decoding every byte, at half",
        "  scale because the served copy is at most 2560 px, with its Display P3 profile rewritten from its",
        f"  numbers (icc.py), {stage['decode (DCT-scaled) and profile']} ms (a full-size decode is "
        f"{stage['decode at full size (for comparison)']} ms: this is",
        f"  where the speed comes from, and why the served copy is capped); turning upright {stage['orient']} ms; the",
        f"  re-encode without metadata {stage['encode']} ms; the metadata check of our own output "
        f"{stage['metadata check']} ms; the",
        f"  thumbnail {stage['thumbnail']} ms (a box reduction then one bilinear step); SHA-256 {stage['sha256']} ms. "
        "The bomb guard is free",
        "  (read from the header).",
    ])


def console() -> str:
    r = load("console_render")
    case, health = r["results"]["case_page_ms"], r["results"]["health_ms"]
    return "\n".join([
        f"Measured by `make bench` on {r['date']} ({local_machine(r)}; `bench/results/console_render.json`): "
        f"the case page, with its",
        f"photo, style sheet and script, loads in **{case['median']:.0f} ms** at p50 over {case['n']} loads in "
        f"headless Chromium on `make dev`",
        f"(p90 {case['p90']:.0f} ms; goal 1 s: {'met' if r['results']['goal_met'] else 'NOT met'}), "
        f"{r['results']['case_page_over_health_p50']}x `GET /health` opened in the same tab "
        f"({health['median']:.0f} ms).",
    ])


def local_machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    cpu = m.get("cpu") or m.get("processor")
    cores = m.get("cores") or m.get("cpus")
    return f"{cores} cores, {cpu}, Python {m['python']}"


BLOCKS = {"timers": timers, "numbers": numbers, "evidence": evidence, "console": console}


def render(text: str, strict: bool = True) -> str:
    """``text`` with every block it holds rewritten from the results (``strict``: it must hold all)."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            if strict:
                raise SystemExit(f"no <!-- bench:{name} --> block")
            continue
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)  # noqa: B023
    return text


def main() -> int:
    for page in PAGES:
        page.write_text(render(page.read_text(), strict=False))
    print(f"{', '.join(str(p.relative_to(ROOT)) for p in PAGES)}: numbers rewritten from {RESULTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
