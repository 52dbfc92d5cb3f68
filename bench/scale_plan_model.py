"""The arithmetic of bench/scale_plan.py: measured per-unit costs (bench/results/*.json) -> time, disk and memory
of every stage at N galaxies. Pure functions on plain dicts, so tests can feed them fixture figures.

Scaling rules, each stated again in the plan's assumptions:

- per-galaxy stages (imports, extraction, stores, image files) are linear in N; extraction is linear in the number
  of workers or GPUs (no shared bottleneck assumed: each reads its own share of the files);
- index build time and query latency follow a power law through the two largest sizes measured (build at least
  linear), memory an affine fit; a single size is scaled linearly (build) or kept (latency);
- clustering time comes from the figures for bench/clustering.py in docs/benchmarks.md, linear in N and k.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

# file -> the command that makes it; the GPU file is optional (no GPU, no GPU rows).
REQUIRED = {
    "extract_cost_cpu.json": "bench/extract_cost.py",
    "import_cost.json": "bench/import_cost.py",
    "index_scale.json": "bench/index_scale.py",
}
OPTIONAL = {"extract_cost_cuda.json": "bench/extract_cost.py --device cuda (on a GPU machine)"}
KEYS = {"extract_cost_cpu.json": "extract_cpu", "extract_cost_cuda.json": "extract_cuda",
        "import_cost.json": "import", "index_scale.json": "index"}

# bench/clustering.py as quoted in docs/benchmarks.md (2 cores, 23 Nov 2026): k-means (k=20) of 100k
# PCA-reduced rows 0.4 s; PCA of 100k x 512 to 50 components 3.5 s (spectral "2.3 s (5.8 s with the PCA)").
# That bench writes no JSON, so its figures are quoted here; re-running it means updating these three numbers.
CLUSTERING_REFERENCE = {"n": 100_000, "k": 20, "dim": 512, "pca_s": 3.5, "kmeans_s": 0.4}
KEY_BYTES = 8  # int64 galaxy id per stored vector (mlcore/features/store.py keys.bin)
STORE_MEMORY_PER_VECTOR = 16  # FeatureStore keeps sorted keys and their rows in memory (int64 each)
# The folder importer loads every image hash already in the dataset into a dict (SeenBefore): a 64-character str
# (113 B), the id str (~60 B) and a dict slot (~100 B with its share of the table). Estimated, not measured.
HASH_MEMORY_PER_GALAXY = 270


class PlanError(Exception):
    """A results file is missing or lacks a figure the plan needs; the message says which bench to run."""


@dataclass(frozen=True)
class Assumptions:
    n: int = 8_700_000
    backbone: str = "resnet18"
    image_size: int = 224
    cpu_workers: int = 8
    gpus: int = 4
    image_px: int = 424  # GZ DECaLS cut-outs are 424 x 424 JPEGs
    jpeg_kb: float | None = None  # None: bundled JPEGs' bytes per pixel x image_px^2
    import_chunk: int = 250_000
    deadline_hours: float = 24.0
    kmeans_k: int = 20
    pca_components: int = 50
    db_backend: str = "PostgreSQL"


@dataclass
class Stage:
    name: str
    when: str  # "once", "per retrain cycle", "per query", "kept"
    seconds: float | None
    disk_bytes: float | None
    memory_bytes: float | None
    how: str
    memory_prefix: str = ""


@dataclass
class Plan:
    """The stages, the assumptions and figures they were computed from, and the prose the page adds."""

    n: int
    stages: list[Stage]
    assumptions_used: Assumptions = field(default_factory=Assumptions)
    figures_used: dict = field(default_factory=dict)
    totals: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    topology: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


def load_results(folder: Path) -> dict:
    """The benchmarks' JSON files under ``folder`` as {"extract_cpu", "extract_cuda" (or None), "import", "index"}.

    Raises:
        PlanError: a required file is missing or unreadable; the message names the bench that makes it.
    """
    figures = {}
    for name, command in {**REQUIRED, **OPTIONAL}.items():
        path = Path(folder) / name
        if not path.exists():
            if name in OPTIONAL:
                figures[KEYS[name]] = None
                continue
            raise PlanError(f"{path} is missing: run {command} first (it writes this file)")
        try:
            figures[KEYS[name]] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PlanError(f"{path} cannot be read ({exc}): run {command} again") from None
    return figures


def extrapolate(points: list[tuple[float, float]], n: float, *, min_exponent: float = 0.0,
                single_exponent: float = 1.0) -> tuple[float, float]:
    """Value at ``n`` from measured (size, value) points: a power law through the two largest sizes, its exponent
    at least ``min_exponent``; with one point, value * (n / size) ** single_exponent.

    Returns:
        (value at n, exponent used).
    """
    points = sorted(points)
    if not points:
        raise ValueError("no measured points")
    (n1, v1), (n2, v2) = (points[-1], points[-1]) if len(points) == 1 else points[-2:]
    exponent = single_exponent if n1 == n2 or v1 <= 0 or v2 <= 0 else math.log(v2 / v1) / math.log(n2 / n1)
    exponent = max(exponent, min_exponent)
    return v2 * (n / n2) ** exponent, exponent


def affine(points: list[tuple[float, float]], n: float) -> float:
    """Value at ``n`` on the line through the two largest sizes (one point: proportional), never below the
    largest measured value."""
    points = sorted(points)
    if len(points) == 1 or points[-1][0] == points[-2][0]:
        return points[-1][1] * n / points[-1][0]
    (n1, v1), (n2, v2) = points[-2:]
    return max(v2, v2 + (v2 - v1) / (n2 - n1) * (n - n2))


def extraction_row(results: dict, backbone: str, image_size: int, source: str) -> dict:
    for row in results["rows"]:
        if row["backbone"] == backbone and row["image_size"] == image_size:
            return row
    measured = ", ".join(f"{r['backbone']}@{r['image_size']}" for r in results["rows"])
    raise PlanError(f"{source} has no {backbone} at {image_size} px (it has {measured}): run bench/extract_cost.py "
                    f"--backbones {backbone} --sizes {image_size}")


def import_backend(results: dict, backend: str) -> dict:
    for row in results["backends"]:
        if row["backend"] == backend:
            return row
    raise PlanError(f"import_cost.json has no {backend} figures: run bench/import_cost.py (without --sqlite-only)")


def index_figures(results: dict, kind: str, n: int) -> dict:
    """Build time, bytes per vector, memory and latency of a ``kind`` index at ``n`` vectors, from index_scale.json."""
    rows = sorted((r for r in results["rows"] if r["kind"] == kind), key=lambda r: r["n"])
    if not rows:
        raise PlanError(f"index_scale.json has no {kind!r} rows: run bench/index_scale.py")
    largest = rows[-1]
    build_s, build_exp = extrapolate([(r["n"], r["build_s"]) for r in rows], n, min_exponent=1.0)
    p50, latency_exp = extrapolate([(r["n"], r["query_p50_ms"]) for r in rows], n, single_exponent=0.0)
    p95, _ = extrapolate([(r["n"], r["query_p95_ms"]) for r in rows], n, single_exponent=0.0)
    return {"build_s": build_s, "build_exponent": build_exp, "p50_ms": p50, "p95_ms": p95,
            "latency_exponent": latency_exp, "index_bytes": largest["bytes_per_vector"] * n,
            "bytes_per_vector": largest["bytes_per_vector"],
            # The anonymous peak leaves out the store's file pages the fit read through its memory map (the kernel
            # reclaims those): it is the memory a build needs. Older results only have the whole peak.
            "build_peak_bytes": affine([(r["n"], r.get("peak_anonymous_rss_mb", r["peak_rss_mb"]) * 2**20)
                                        for r in rows], n),
            "build_peak_is_anonymous": "peak_anonymous_rss_mb" in largest,
            "recall": largest["recall_at_20"], "codes_only_recall": largest.get("recall_at_20_codes_only"),
            "measured_n": largest["n"], "largest_build_s": largest["build_s"], "sizes": [r["n"] for r in rows]}


def rate_for_files(row: dict, pixel_ratio: float) -> float:
    """Images/s of a measured extraction row for files ``pixel_ratio`` times the pixels of the timed ones.

    Reading, decoding and transforming a file (``decode_ms_per_image``) is taken to scale with its pixels. In-process
    decoding (no loader workers) adds the difference to every image; with workers the rate is the measured one or
    what the workers can decode, whichever is lower.
    """
    decode_ms = row["decode_ms_per_image"] * pixel_ratio
    if not row["loader_workers"]:
        return 1e3 / (row["ms_per_image"] + row["decode_ms_per_image"] * (pixel_ratio - 1))
    return min(row["images_per_s"], row["loader_workers"] * 1e3 / decode_ms)


def jpeg_bytes(assumptions: Assumptions, source_images: dict) -> tuple[float, str]:
    """Bytes per catalogue JPEG and how that figure was reached."""
    if assumptions.jpeg_kb is not None:
        return assumptions.jpeg_kb * 1e3, f"{assumptions.jpeg_kb:g} kB per JPEG (given)"
    per_pixel = source_images["jpeg_bytes_per_pixel"]
    value = per_pixel * assumptions.image_px ** 2
    return value, (f"{value / 1e3:.0f} kB per {assumptions.image_px} px JPEG: the {source_images['jpeg_count']} "
                   f"bundled real JPEGs average {source_images['jpeg_mean_bytes'] / 1e3:.1f} kB at 256 x 256, "
                   f"{per_pixel:.3f} bytes per pixel, scaled to {assumptions.image_px} x {assumptions.image_px}")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1e3:.2g} ms" if seconds < 0.01 else f"{seconds * 1e3:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def build_plan(figures: dict, a: Assumptions) -> Plan:
    """Every stage at ``a.n`` galaxies from the measured figures (as load_results returns them).

    Raises:
        PlanError: a figure the plan needs is not in the results (the message names the bench to run).
    """
    n = a.n
    cpu_json, gpu_json = figures["extract_cpu"], figures.get("extract_cuda")
    cpu = extraction_row(cpu_json, a.backbone, a.image_size, "extract_cost_cpu.json")
    gpu = extraction_row(gpu_json, a.backbone, a.image_size, "extract_cost_cuda.json") if gpu_json else None
    imported = import_backend(figures["import"], a.db_backend)
    catalogue, votes = imported["catalogue"], imported["votes"]
    ivf, hnsw = index_figures(figures["index"], "ivfpq", n), index_figures(figures["index"], "hnsw", n)
    dim = cpu["feature_dim"]
    images = cpu_json["source_images"]
    image_bytes, image_how = jpeg_bytes(a, images)
    pixel_ratio = a.image_px ** 2 / images["mean_pixels"]
    model = f"{a.backbone} @ {a.image_size} px"

    cpu_rate = rate_for_files(cpu, pixel_ratio)
    gpu_rate = rate_for_files(gpu, pixel_ratio) if gpu else None
    # Catalogue import: the checking pass decodes every file in full, so its share scales with the pixels.
    check = catalogue["check_share"] or 0.0
    catalogue_row_s = (check * pixel_ratio + 1 - check) / catalogue["rows_per_s"]
    baseline = imported["baseline_rss_mb"] * 2**20

    def chunk_memory(block: dict, extra: float = 0.0) -> float:
        per_row = max(0.0, block["peak_rss_mb"] * 2**20 - baseline) / block["chunk_rows"]
        return baseline + per_row * min(a.import_chunk, n) + extra

    stages = [
        Stage("catalogue import: rows, image copies, thumbnails", "once", n * catalogue_row_s,
              catalogue["db_bytes_per_row"] * n,
              chunk_memory(catalogue, HASH_MEMORY_PER_GALAXY * max(0, n - a.import_chunk)),
              f"{catalogue['rows_per_s']:,.0f} galaxies/s on {a.db_backend} (256 px files), checking pass "
              f"({check:.0%}) x{pixel_ratio:.2f} for {a.image_px} px; disk = database"),
        Stage("votes import: GZ2 table, 11 summaries per galaxy", "once", n / votes["rows_per_s"],
              votes["db_bytes_per_row"] * n, chunk_memory(votes),
              f"{votes['rows_per_s']:,.0f} rows/s on {a.db_backend}; disk = database"),
        Stage(f"image files ({a.image_px} px JPEG)", "kept", None, image_bytes * n, None,
              f"{image_bytes / 1e3:.0f} kB each (see assumptions); copied during the catalogue import"),
        Stage(f"thumbnails ({catalogue['thumbnail_size_px']} px JPEG)", "kept", None,
              catalogue["thumbnail_bytes_per_row"] * n, None,
              f"{catalogue['thumbnail_bytes_per_row'] / 1e3:.1f} kB each, measured; made during the import"),
        Stage(f"features: 1 CPU worker ({plural(cpu['threads'], 'core')})", "per retrain cycle", n / cpu_rate,
              None, cpu["peak_rss_mb"] * 2**20, f"{model}: {cpu['images_per_s']:.1f} images/s measured, "
                                                f"{cpu_rate:.1f} with decoding x{pixel_ratio:.2f}"),
        Stage(f"features: {a.cpu_workers} CPU workers ({plural(a.cpu_workers * cpu['threads'], 'core')})",
              "per retrain cycle", n / (cpu_rate * a.cpu_workers), None,
              cpu["peak_rss_mb"] * 2**20 * a.cpu_workers, f"1 worker / {a.cpu_workers} (linear, assumed)"),
    ]
    for count in (1, a.gpus):
        name = f"features: {count} GPU{'s' if count > 1 else ''}"
        if gpu is None:
            stages.append(Stage(name, "per retrain cycle", None, None, None,
                                "not measured: run bench/extract_cost.py --device cuda on a GPU machine"))
            continue
        stages.append(Stage(name, "per retrain cycle", n / (gpu_rate * count), None,
                            gpu["peak_rss_mb"] * 2**20 * count,
                            f"{gpu['images_per_s']:.0f} images/s measured, {gpu_rate:.0f} with decoding "
                            f"x{pixel_ratio:.2f} on {gpu['loader_workers']} loader workers; "
                            f"{gpu['peak_gpu_mb']:.0f} MB GPU memory" + (" (x GPUs, linear, assumed)" if count > 1
                                                                         else "")))
    stages += [
        Stage("feature store, float16", "kept, per model version", None, n * (dim * 2 + KEY_BYTES),
              n * STORE_MEMORY_PER_VECTOR, f"{dim}-d: {dim * 2:,} B + 8 B key per galaxy; memory = key lookup"),
        Stage("feature store, float32 (contrast)", "-", None, n * (dim * 4 + KEY_BYTES),
              n * STORE_MEMORY_PER_VECTOR, f"{dim * 4:,} B + 8 B key per galaxy"),
    ]
    for label, figures_ in (("IVF-PQ", ivf), ("HNSW (contrast)", hnsw)):
        measured = f"measured up to {figures_['measured_n']:,}"
        measured_n = f"{figures_['measured_n'] / 1e6:g}M" if figures_["measured_n"] >= 1e6 else \
            f"{figures_['measured_n'] / 1e3:g}k"
        stages += [
            Stage(f"{label} index: build", "per retrain cycle", figures_["build_s"], figures_["index_bytes"],
                  figures_["build_peak_bytes"],
                  f"{figures_['largest_build_s'] / figures_['measured_n'] * 1e5:.1f} s per 100k at {measured_n}; "
                  f"{measured}, time ~ n^{figures_['build_exponent']:.2f}; memory = peak "
                  f"{'anonymous ' if figures_['build_peak_is_anonymous'] else ''}RSS, affine in n"),
            Stage(f"{label} index: one query (p50)", "per query", figures_["p50_ms"] / 1e3, None,
                  figures_["index_bytes"],
                  f"p95 {figures_['p95_ms']:.2f} ms, recall@20 {figures_['recall']:.3f}"
                  + (f" re-ranked from the store ({figures_['codes_only_recall']:.3f} from the codes alone)"
                     if figures_["codes_only_recall"] is not None else "")
                  + f"; {measured}, ~ n^{figures_['latency_exponent']:.2f}; memory = the index in each process "
                    f"that queries"),
        ]
    ref = CLUSTERING_REFERENCE
    pca_s = ref["pca_s"] * n / ref["n"] * dim / ref["dim"]
    kmeans_s = ref["kmeans_s"] * n / ref["n"] * a.kmeans_k / ref["k"]
    stages += [
        Stage(f"PCA to {a.pca_components} components", "per retrain cycle", pca_s, None, 3 * n * dim * 4,
              f"docs/benchmarks.md: {ref['pca_s']} s at {ref['n'] // 1000}k x {ref['dim']}, linear in n and d; "
              f"memory = 3 float32 copies", "~"),
        Stage(f"k-means, k={a.kmeans_k}", "per retrain cycle", kmeans_s, None, n * a.pca_components * 4 * 2,
              f"docs/benchmarks.md: {ref['kmeans_s']} s at {ref['n'] // 1000}k, k={ref['k']}; linear in n and k", "~"),
    ]
    return Plan(n=n, stages=stages, assumptions_used=a,
                figures_used={"cpu": cpu, "gpu": gpu, "cpu_rate": cpu_rate, "gpu_rate": gpu_rate,
                              "catalogue": catalogue, "votes": votes, "ivf": ivf, "hnsw": hnsw,
                              "image_bytes": image_bytes, "image_how": image_how,
                              "pixel_ratio": pixel_ratio, "dim": dim, "results": figures})


def totals(plan: Plan) -> dict:
    """Sums over the stages: disk by place, and wall time once and per retrain cycle on each extraction topology.

    Disk keeps two feature sets and two indexes (the active model version's, and the next one's while a retrain
    cycle extracts and indexes it).
    """
    def get(name: str, what: str) -> float:
        value = getattr(plan.stage(name), what)
        return 0.0 if value is None else value

    a = plan.assumptions_used
    database = get("catalogue import: rows, image copies, thumbnails", "disk_bytes") + \
        get("votes import: GZ2 table, 11 summaries per galaxy", "disk_bytes")
    media = get(f"image files ({a.image_px} px JPEG)", "disk_bytes") + sum(
        s.disk_bytes for s in plan.stages if s.name.startswith("thumbnails"))
    features = 2 * (get("feature store, float16", "disk_bytes") + get("IVF-PQ index: build", "disk_bytes"))
    once = get("catalogue import: rows, image copies, thumbnails", "seconds") + \
        get("votes import: GZ2 table, 11 summaries per galaxy", "seconds")
    rest = sum(get(s.name, "seconds") for s in plan.stages
               if s.when == "per retrain cycle" and not s.name.startswith(("features:", "HNSW")))
    cycle = {s.name.removeprefix("features: "): s.seconds + rest for s in plan.stages
             if s.name.startswith("features:") and s.seconds is not None}
    return {"database_bytes": database, "media_bytes": media, "features_bytes": features,
            "disk_bytes": database + media + features, "once_seconds": once, "cycle_seconds": cycle}
