"""The deployment plan for a large catalogue (default 8.7 million galaxies), computed from measured per-unit costs.

Reads the benchmarks' results under bench/results/ and prints, per stage, the time, disk and memory it takes at
``--galaxies`` N, with the assumptions each figure rests on, a recommended topology and the order of operations;
writes the same as Markdown to bench/SCALING.md, so the page's numbers always come from the measurements.

    .venv/bin/python bench/extract_cost.py             # -> bench/results/extract_cost_cpu.json
    .venv/bin/python bench/extract_cost.py --device cuda   # on a GPU machine -> extract_cost_cuda.json (optional)
    .venv/bin/python bench/import_cost.py              # -> bench/results/import_cost.json
    .venv/bin/python bench/index_scale.py              # -> bench/results/index_scale.json
    .venv/bin/python bench/scale_plan.py [--galaxies 8700000] [--cpu-workers 8] [--gpus 4] [--jpeg-kb 30] ...

A missing results file stops it with the command that makes it (the GPU file is optional: without it the GPU rows
say "not measured"). The arithmetic lives in bench/scale_plan_model.py; this file reads, prints and writes.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_plan_model import (  # noqa: E402,F401  (bench/ is on sys.path; re-exported for the tests)
    CLUSTERING_REFERENCE,
    HASH_MEMORY_PER_GALAXY,
    Assumptions,
    Plan,
    PlanError,
    build_plan,
    extrapolate,
    format_bytes,
    format_seconds,
    load_results,
    plural,
    totals,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
MARKDOWN = REPO_ROOT / "bench" / "SCALING.md"


def describe(plan: Plan) -> Plan:
    """Fill the plan's totals, assumptions, topology, order of operations and sources from its figures."""
    a, f, n = plan.assumptions_used, plan.figures_used, plan.n
    t = totals(plan)
    secs, size = format_seconds, format_bytes
    cpu, gpu, catalogue, votes, ivf, hnsw = (f[k] for k in ("cpu", "gpu", "catalogue", "votes", "ivf", "hnsw"))
    deadline = a.deadline_hours * 3600
    runs = math.ceil(n / a.import_chunk)
    cycle = ", ".join(f"{secs(seconds)} with {where}" for where, seconds in t["cycle_seconds"].items())
    plan.totals = [
        f"disk: {size(t['disk_bytes'])} = database {size(t['database_bytes'])} + images and thumbnails "
        f"{size(t['media_bytes'])} + two float16 feature sets and two IVF-PQ indexes {size(t['features_bytes'])} "
        f"(the active model version's and the next one's during a retrain cycle)",
        f"once: {secs(t['once_seconds'])} of imports (catalogue, then votes; one import process at a time)",
        f"per retrain cycle (extraction + IVF-PQ build + PCA + k-means; fine-tuning not included): {cycle}",
    ]
    cpu_needed = math.ceil(n / (f["cpu_rate"] * deadline))
    workers, all_cores = plural(cpu_needed, "CPU worker"), plural(cpu_needed * cpu["threads"], "core")
    pca = plan.stage(f"PCA to {a.pca_components} components")
    # RAM for the PostgreSQL host: twice the galaxy table and its indexes, at least 16 GB, in a power of two.
    pg_ram = 2 ** math.ceil(math.log2(max(16e9, 2 * plan.stages[0].disk_bytes) / 1e9)) * 1e9
    extraction = (f"{math.ceil(n / (f['gpu_rate'] * deadline))} GPU(s)" if gpu else
                  f"{workers} of {plural(cpu['threads'], 'core')} ({all_cores})")
    topology = [
        f"In short: a PostgreSQL host with {size(pg_ram)} RAM and {size(2 * t['database_bytes'])} of SSD; a media "
        f"volume of {size(t['media_bytes'])} and a feature folder of {size(t['features_bytes'])} shared by the "
        f"workers; {extraction} for extraction within {a.deadline_hours:g} h; one worker with "
        f"{size(pca.memory_bytes)} RAM for clustering; web processes with the IVF-PQ index "
        f"({size(ivf['index_bytes'])}) each.",
        f"Feature extraction is the long pole. {a.deadline_hours:g} h for all {n:,} galaxies takes {workers} like "
        f"the measured one ({all_cores} in all, {f['cpu_rate']:.1f} images/s each)"
        + (f", or {math.ceil(n / (f['gpu_rate'] * deadline))} GPU(s) at {f['gpu_rate']:.0f} images/s." if gpu
           else ". No GPU was measured; run `bench/extract_cost.py --device cuda` on one."),
    ]
    decode = (gpu or cpu)["decode_ms_per_image"] * f["pixel_ratio"]
    if gpu:
        topology.append(f"Each GPU needs about {math.ceil(f['gpu_rate'] * decode / 1e3)} CPU cores of loader "
                        f"workers: every {a.image_px} px file costs ~{decode:.1f} ms of one core to read, decode and "
                        f"transform (measured {gpu['decode_ms_per_image']:.2f} ms at 256 px, scaled by pixels).")
    else:
        topology.append(f"A GPU only helps as far as its loader workers keep up: every {a.image_px} px file costs "
                        f"~{decode:.1f} ms of one core to read, decode and transform, so 1,000 images/s needs about "
                        f"{math.ceil(decode):.0f} cores beside the GPU.")
    topology += [
        f"Several workers share one extraction by ranges of galaxy ids (the store serialises appends), so the "
        f"workers can be on several machines that see the same media volume and feature folder; they read "
        f"{size(f['image_bytes'] * f['cpu_rate'] * cpu_needed)}/s of JPEGs at {workers}.",
        f"PostgreSQL: the measured tables and indexes come to {size(t['database_bytes'])} "
        f"(galaxies {size(plan.stages[0].disk_bytes)}, vote summaries {size(plan.stages[1].disk_bytes)}); give it "
        f"at least {size(2 * t['database_bytes'])} of SSD (VACUUM, index rebuilds and WAL need room) and RAM to "
        f"keep the galaxy table and its indexes cached ({size(plan.stages[0].disk_bytes)}), e.g. {size(pg_ram)}: "
        f"shared_buffers about a quarter of it, the rest left to the OS cache. Vote summaries are read a galaxy "
        f"at a time by index and need not stay cached.",
        f"Neighbour queries: every web and worker process that answers them holds the whole index: IVF-PQ "
        f"{size(ivf['index_bytes'])} against HNSW {size(hnsw['index_bytes'])} at {n:,}. With HNSW each gunicorn "
        f"worker would need that much RAM, which is why the large catalogue uses IVF-PQ."
        + (f" IVF-PQ re-scores its best candidates from the float16 feature store "
           f"({size(plan.stage('feature store, float16').disk_bytes)}): keep the store in the web host's page "
           f"cache, or every query waits for disk reads of its candidates." if ivf["codes_only_recall"] is not None
           else ""),
        f"Media: {size(t['media_bytes'])} of images and thumbnails on one volume served by the web server "
        f"(GALAXY_SERVE_FILES=0). The importer puts a dataset's files in one folder per dataset (galaxies/<dataset>/,"
        f" thumbnails/<dataset>/), so that folder will hold {n:,} entries: use ext4 or XFS (hashed directories) and "
        f"expect listings and backups of it to be slow.",
        f"Clustering: as the code stands, `cluster` reads every vector as float32 and PCA holds about three copies, "
        f"{size(pca.memory_bytes)} on the worker that clusters. Give that one worker the RAM, or fit the PCA on a "
        f"sample (not implemented).",
        f"Imports: {runs:,} runs of `import_galaxies` and of `import_votes` with {a.import_chunk:,} rows each, one "
        f"after another (each run is one transaction; peak memory {size(plan.stages[0].memory_bytes)} for the "
        f"catalogue's last run, which loads every image hash already in the dataset, and "
        f"{size(plan.stages[1].memory_bytes)} for votes).",
    ]
    plan.topology = topology
    plan.order = [
        f"Provision PostgreSQL ({size(2 * t['database_bytes'])} SSD), Redis, the media volume "
        f"({size(t['media_bytes'])}) and the feature folder ({size(t['features_bytes'])}, GALAXY_FEATURES_ROOT) "
        f"that every worker sees.",
        "`manage.py migrate`, `load_tree`, `load_schema`.",
        f"Once: import the catalogue in {runs:,} files of {a.import_chunk:,} rows, `manage.py import_galaxies "
        f"--dataset NAME --format folder CHUNK/` one after another: {secs(plan.stages[0].seconds)}.",
        f"Once: import the votes the same way, `manage.py import_votes --dataset NAME --format gz2-table "
        f"CHUNK.csv`: {secs(plan.stages[1].seconds)}; then `compute_consensus` (not measured here).",
        f"Per model version: `manage.py extract_features --dataset NAME --backbone {a.backbone} --image-size "
        f"{a.image_size}` with the workers running: "
        + "; ".join(f"{secs(s.seconds)} on {s.name.removeprefix('features: ')}" for s in plan.stages
                    if s.name.startswith("features:") and s.seconds is not None)
        + ". A run that stops resumes where it stopped.",
        f"Per model version: `manage.py build_index --dataset NAME` (IVF-PQ at this size): "
        f"{secs(ivf['build_s'])}; then `manage.py cluster --dataset NAME --method kmeans --k {a.kmeans_k}`: "
        f"{secs(pca.seconds + plan.stage(f'k-means, k={a.kmeans_k}').seconds)} (PCA and k-means).",
        "Open the dataset to volunteers and experts; queues are built from the features and the votes.",
        "Each retrain cycle: fine-tune on the labels (its cost grows with the labelled galaxies, not with N; see "
        "the retrain figures of docs/benchmarks.md), then steps 5 and 6 for the new version while the active one "
        "keeps serving; activation switches over. Keep disk for both versions' features and indexes.",
    ]
    pixel = f"{f['pixel_ratio']:.2f}"
    plan.assumptions = [
        f"N = {n:,} galaxies, every one with one {a.image_px} x {a.image_px} JPEG; features from {a.backbone} at "
        f"{a.image_size} px ({f['dim']}-d), stored as float16.",
        f"Image size: {f['image_how']}.",
        f"Per-image work that reads pixels (decoding while importing and extracting) is scaled from the bundled "
        f"256 x 256 files by their pixel count (x{pixel}); the model's own cost does not depend on the file.",
        f"Extraction scales linearly with workers and GPUs (each reads its own share; storage bandwidth and the "
        f"store's append lock are not the bottleneck). A CPU worker is the measured configuration "
        f"({cpu['threads']} torch thread{'' if cpu['threads'] == 1 else 's'}, decoding in-process).",
        "Imports run one at a time; their rate is the last measured chunk's (into a dataset already holding the "
        "earlier chunks). Votes were measured creating their galaxies; votes for galaxies the catalogue already "
        "created update those rows instead (not measured separately).",
        f"Database size is the measured growth (tables and indexes) per row. Expert labels, consensus labels, "
        f"predictions (one row per galaxy and model version), queues and volunteer classifications are not included."
        f" The catalogue's last import run also holds ~{HASH_MEMORY_PER_GALAXY} B per galaxy already in the dataset "
        f"(its image hashes; estimated from Python object sizes, not measured).",
        f"Index build time follows a power law through the two largest sizes bench/index_scale.py measured "
        f"(IVF-PQ {', '.join(f'{x:,}' for x in ivf['sizes'])}; HNSW {', '.join(f'{x:,}' for x in hnsw['sizes'])}), "
        f"at least linear; query latency likewise (single size: kept as measured); bytes per vector and recall are "
        f"the largest size's.",
        f"Clustering: bench/clustering.py writes no results file, so the figures of docs/benchmarks.md are used "
        f"({CLUSTERING_REFERENCE['pca_s']} s PCA and {CLUSTERING_REFERENCE['kmeans_s']} s k-means at "
        f"{CLUSTERING_REFERENCE['n']:,} x {CLUSTERING_REFERENCE['dim']}, k={CLUSTERING_REFERENCE['k']}) scaled "
        f"linearly in N, dimension and k; Lloyd iterations are assumed not to grow with N.",
        "Times are wall times on the machines named below; a shared host moves them by up to half "
        "(docs/benchmarks.md).",
    ]
    benches = {"extract_cpu": "bench/extract_cost.py", "extract_cuda": "bench/extract_cost.py --device cuda",
               "import": "bench/import_cost.py", "index": "bench/index_scale.py"}
    plan.sources = [
        f"{bench}: not run" if (result := f["results"].get(key)) is None else
        f"{bench}: {result.get('machine', 'machine not recorded')}; {result.get('measured_at', 'date not recorded')}"
        for key, bench in benches.items()
    ]
    return plan


def _cell(value, formatter, prefix: str = "") -> str:
    return "-" if value is None else prefix + formatter(value)


def rows(plan: Plan) -> list[list[str]]:
    """The table's cells: stage, when, time, disk, memory, how."""
    return [[s.name, s.when, _cell(s.seconds, format_seconds), _cell(s.disk_bytes, format_bytes),
             _cell(s.memory_bytes, format_bytes, s.memory_prefix), s.how] for s in plan.stages]


HEADER = ["stage", "when", "time", "disk", "memory", "from"]


def render_text(plan: Plan) -> str:
    cells = rows(plan)
    widths = [max(len(row[i]) for row in [HEADER, *cells]) for i in range(len(HEADER) - 1)]
    lines = [f"Plan for {plan.n:,} galaxies", ""]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(HEADER, widths, strict=False)) + "  " + HEADER[-1]
    lines += [line, "-" * min(len(line) + 40, 160)]
    for row in cells:
        aligned = [f"{row[0]:<{widths[0]}}", f"{row[1]:<{widths[1]}}"] + [f"{c:>{w}}" for c, w in
                                                                          zip(row[2:5], widths[2:5], strict=True)]
        lines.append("  ".join(aligned) + "  " + row[5])
    for title, items in (("Totals", plan.totals), ("Assumptions", plan.assumptions),
                         ("Recommended topology", plan.topology), ("Order of operations", plan.order),
                         ("Measured on", plan.sources)):
        lines += ["", title + ":"] + [f"  {n}. {item}" if title == "Order of operations" else f"  - {item}"
                                      for n, item in enumerate(items, start=1)]
    return "\n".join(lines)


def render_markdown(plan: Plan, *, generated_at: str, command: str, results: str = "bench/results") -> str:
    lines = [
        f"# Scaling plan: {plan.n:,} galaxies",
        "",
        f"_Generated by `bench/scale_plan.py` from `{results}/*.json` on {generated_at}; do not edit by hand. "
        f"Re-run the benchmarks, then `{command}`._",
        "",
        "Every figure below is a measured per-unit cost (see *Measured on*) multiplied out to the catalogue's size; "
        "how each one is computed is in its row's last column and under *Assumptions*.",
        "",
        "## Stages",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(plan)]
    for title, items, numbered in (("Totals", plan.totals, False), ("Recommended topology", plan.topology, False),
                                   ("Order of operations", plan.order, True),
                                   ("Assumptions", plan.assumptions, False), ("Measured on", plan.sources, False)):
        lines += ["", f"## {title}", ""]
        lines += [f"{n}. {item}" if numbered else f"- {item}" for n, item in enumerate(items, start=1)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    defaults = Assumptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--galaxies", type=int, default=defaults.n, help="catalogue size N (default %(default)s)")
    parser.add_argument("--backbone", default=defaults.backbone)
    parser.add_argument("--image-size", type=int, default=defaults.image_size, help="extraction input px")
    parser.add_argument("--cpu-workers", type=int, default=defaults.cpu_workers,
                        help="extraction workers, each like the measured CPU machine (default %(default)s)")
    parser.add_argument("--gpus", type=int, default=defaults.gpus, help="GPUs for the 'several GPUs' row")
    parser.add_argument("--image-px", type=int, default=defaults.image_px, help="side of a catalogue JPEG")
    parser.add_argument("--jpeg-kb", type=float, help="bytes per catalogue JPEG in kB (default: the bundled "
                                                      "JPEGs' measured bytes per pixel x image-px squared)")
    parser.add_argument("--import-chunk", type=int, default=defaults.import_chunk,
                        help="rows per import_galaxies / import_votes run (default %(default)s)")
    parser.add_argument("--deadline-hours", type=float, default=defaults.deadline_hours,
                        help="wall time one extraction of every galaxy should fit in (sizes the workers)")
    parser.add_argument("--kmeans-k", type=int, default=defaults.kmeans_k)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the benchmarks' JSON files")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="where to write the page (default "
                                                                        "bench/SCALING.md)")
    args = parser.parse_args(argv)
    assumptions = Assumptions(n=args.galaxies, backbone=args.backbone, image_size=args.image_size,
                              cpu_workers=args.cpu_workers, gpus=args.gpus, image_px=args.image_px,
                              jpeg_kb=args.jpeg_kb, import_chunk=args.import_chunk,
                              deadline_hours=args.deadline_hours, kmeans_k=args.kmeans_k)
    try:
        plan = describe(build_plan(load_results(args.results), assumptions))
    except PlanError as exc:
        raise SystemExit(f"scale_plan: {exc}") from None
    print(render_text(plan))
    generated_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/scale_plan.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    results = args.results.resolve()
    shown = results.relative_to(REPO_ROOT) if results.is_relative_to(REPO_ROOT) else results
    args.markdown.write_text(render_markdown(plan, generated_at=generated_at, command=command, results=str(shown)))
    written = args.markdown.resolve()
    print(f"\nwrote {written.relative_to(REPO_ROOT) if written.is_relative_to(REPO_ROOT) else written}")


if __name__ == "__main__":
    main()
