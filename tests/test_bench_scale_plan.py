"""bench/scale_plan.py's arithmetic on fixture figures: no benchmark runs, no database."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import scale_plan  # noqa: E402
from scale_plan import Assumptions, PlanError, build_plan, describe, extrapolate, load_results  # noqa: E402

N = 1_000_000
PIXEL_RATIO = 424**2 / 65536


def figures(gpu: bool = False) -> dict:
    cpu_row = {"backbone": "resnet18", "image_size": 224, "device": "cpu", "images_per_s": 40.0, "ms_per_image": 25.0,
               "feature_dim": 512, "threads": 2, "loader_workers": 0, "decode_ms_per_image": 1.0,
               "peak_rss_mb": 900.0}
    block = {"rows_per_s": 100.0, "check_share": 0.5, "peak_rss_mb": 300.0, "chunk_rows": 10_000,
             "db_bytes_per_row": 800.0}
    return {
        "extract_cpu": {"machine": "fixture CPU", "measured_at": "2026-01-01T00:00:00+00:00",
                        "source_images": {"distinct": 205, "mean_pixels": 65536.0, "jpeg_count": 193,
                                          "jpeg_mean_bytes": 14_550.0, "jpeg_bytes_per_pixel": 0.25},
                        "rows": [cpu_row]},
        "extract_cuda": {"machine": "fixture GPU", "rows": [{**cpu_row, "device": "cuda", "images_per_s": 5000.0,
                                                             "ms_per_image": 0.2, "loader_workers": 8,
                                                             "peak_gpu_mb": 2000.0}]} if gpu else None,
        "import": {"backends": [{"backend": "PostgreSQL", "baseline_rss_mb": 100.0,
                                 "catalogue": {**block, "thumbnail_bytes_per_row": 4000.0, "thumbnail_size_px": 128},
                                 "votes": {**block, "rows_per_s": 1000.0, "db_bytes_per_row": 10_000.0}}]},
        "index": {"dim": 512, "rows": [
            {"kind": "ivfpq", "n": 100_000, "build_s": 10.0, "bytes_per_vector": 72.0, "peak_rss_mb": 500.0,
             "query_p50_ms": 1.0, "query_p95_ms": 2.0, "recall_at_20": 0.9},
            {"kind": "ivfpq", "n": 1_000_000, "build_s": 100.0, "bytes_per_vector": 70.0, "peak_rss_mb": 1400.0,
             "query_p50_ms": 2.0, "query_p95_ms": 4.0, "recall_at_20": 0.88},
            {"kind": "hnsw", "n": 100_000, "build_s": 27.0, "bytes_per_vector": 2300.0, "peak_rss_mb": 700.0,
             "query_p50_ms": 0.7, "query_p95_ms": 1.0, "recall_at_20": 0.999},
        ]},
    }


def plan_for(n: int = N, gpu: bool = False, **assumptions):
    return build_plan(figures(gpu), Assumptions(n=n, **assumptions))


def test_doubling_the_catalogue_doubles_every_per_galaxy_time_and_disk():
    single, double = plan_for(N), plan_for(2 * N)

    for name in ("features: 1 CPU worker (2 cores)", "features: 8 CPU workers (16 cores)",
                 "votes import: GZ2 table, 11 summaries per galaxy", "PCA to 50 components", "k-means, k=20"):
        assert double.stage(name).seconds == pytest.approx(2 * single.stage(name).seconds)
    for name in ("feature store, float16", "image files (424 px JPEG)", "thumbnails (128 px JPEG)",
                 "votes import: GZ2 table, 11 summaries per galaxy", "IVF-PQ index: build"):
        assert double.stage(name).disk_bytes == pytest.approx(2 * single.stage(name).disk_bytes)


def test_extraction_time_is_galaxies_over_the_rate_with_decoding_scaled_by_pixels():
    plan = plan_for()

    per_image_ms = 25.0 + 1.0 * (PIXEL_RATIO - 1)
    assert plan.stage("features: 1 CPU worker (2 cores)").seconds == pytest.approx(N * per_image_ms / 1e3)
    assert plan.stage("features: 8 CPU workers (16 cores)").seconds == pytest.approx(N * per_image_ms / 1e3 / 8)


def test_the_float16_store_holds_half_the_vector_bytes_of_float32():
    plan = plan_for()

    half = plan.stage("feature store, float16").disk_bytes - 8 * N
    full = plan.stage("feature store, float32 (contrast)").disk_bytes - 8 * N
    assert half == 512 * 2 * N
    assert full == 2 * half


def test_catalogue_import_scales_only_its_checking_pass_by_pixels():
    plan = plan_for()

    # Half the measured time checks (decodes) the 256 px files, so only that half grows with a 424 px file.
    assert plan.stage("catalogue import: rows, image copies, thumbnails").seconds == \
        pytest.approx(N * (0.5 * PIXEL_RATIO + 0.5) / 100.0)


def test_image_files_use_the_bundled_bytes_per_pixel_unless_a_size_is_given():
    assert plan_for().stage("image files (424 px JPEG)").disk_bytes == pytest.approx(N * 0.25 * 424**2)
    assert plan_for(jpeg_kb=30).stage("image files (424 px JPEG)").disk_bytes == pytest.approx(N * 30_000)


def test_index_build_follows_the_power_law_of_the_two_largest_sizes():
    plan = plan_for(10_000_000)

    assert plan.stage("IVF-PQ index: build").seconds == pytest.approx(1000.0)
    assert plan.stage("IVF-PQ index: build").disk_bytes == pytest.approx(70.0 * 10_000_000)
    # Latency doubled from 100k to 1M, so it doubles again at 10M.
    assert plan.stage("IVF-PQ index: one query (p50)").seconds == pytest.approx(4.0 / 1e3)
    # One HNSW size only: build scales linearly, latency is kept as measured.
    assert plan.stage("HNSW (contrast) index: build").seconds == pytest.approx(2700.0)
    assert plan.stage("HNSW (contrast) index: one query (p50)").seconds == pytest.approx(0.7 / 1e3)


def test_extrapolate_never_lets_build_time_grow_slower_than_linear():
    value, exponent = extrapolate([(100_000, 10.0), (1_000_000, 50.0)], 10_000_000, min_exponent=1.0)

    assert exponent == 1.0
    assert value == pytest.approx(500.0)


def test_gpu_rows_say_not_measured_without_gpu_results():
    plan = plan_for()

    assert plan.stage("features: 1 GPU").seconds is None
    assert "bench/extract_cost.py --device cuda" in plan.stage("features: 4 GPUs").how


def test_a_gpu_is_only_as_fast_as_its_loader_workers_can_decode():
    plan = plan_for(gpu=True)

    # 8 workers at 1 ms per 256 px file decode 424 px files at 8,000 / 2.74 per second, below the GPU's 5,000.
    rate = 8 * 1e3 / PIXEL_RATIO
    assert plan.stage("features: 1 GPU").seconds == pytest.approx(N / rate)
    assert plan.stage("features: 4 GPUs").seconds == pytest.approx(N / rate / 4)


@pytest.mark.parametrize(("missing", "bench"), [("extract_cost_cpu.json", "bench/extract_cost.py"),
                                                ("import_cost.json", "bench/import_cost.py"),
                                                ("index_scale.json", "bench/index_scale.py")])
def test_a_missing_results_file_names_the_bench_that_writes_it(tmp_path, missing, bench):
    data = figures()
    for name, key in (("extract_cost_cpu.json", "extract_cpu"), ("import_cost.json", "import"),
                      ("index_scale.json", "index")):
        if name != missing:
            (tmp_path / name).write_text(json.dumps(data[key]))

    with pytest.raises(PlanError, match=f"{missing} is missing: run {bench}"):
        load_results(tmp_path)


def test_an_image_size_that_was_not_measured_names_the_bench_options():
    with pytest.raises(PlanError, match="--backbones resnet50 --sizes 224"):
        plan_for(backbone="resnet50")


def test_the_page_says_it_is_generated_and_lists_every_stage():
    plan = describe(plan_for())

    page = scale_plan.render_markdown(plan, generated_at="2026-01-01 00:00 UTC", command="python bench/scale_plan.py")

    assert page.splitlines()[2].startswith("_Generated by `bench/scale_plan.py` from `bench/results/*.json` on "
                                           "2026-01-01 00:00 UTC")
    for stage in plan.stages:
        assert f"| {stage.name} |" in page
    assert "## Recommended topology" in page and "## Order of operations" in page


def test_disk_total_keeps_two_feature_sets_and_two_indexes():
    plan = plan_for()
    totals = scale_plan.totals(plan)

    store = plan.stage("feature store, float16").disk_bytes
    index = plan.stage("IVF-PQ index: build").disk_bytes
    assert totals["features_bytes"] == pytest.approx(2 * (store + index))
