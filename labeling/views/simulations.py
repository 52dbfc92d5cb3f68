"""The recorded active-learning simulations and their learning curves."""

from django.shortcuts import get_object_or_404, render

from labeling.models import Simulation
from labeling.views.access import expert_required


@expert_required
def simulation_list(request):
    return render(request, "labeling/simulation_list.html", {
        "simulations": Simulation.objects.select_related("dataset", "feature_set__model_version").order_by(
            "-created_at", "-pk")[:200],
    })


@expert_required
def simulation_detail(request, simulation_id: int):
    from mlcore.active.query import DEFAULT_STRATEGY

    simulation = get_object_or_404(Simulation.objects.select_related("dataset"), pk=simulation_id)
    verdict = simulation.savings if isinstance(simulation.savings.get("per_strategy"), dict) else {}
    rows = verdict.get("per_strategy", {})
    # Runs recorded before the verdict over seeds have a per-strategy count instead of a row: shown without it.
    legacy = any(not isinstance(row, dict) for row in rows.values())
    finals = []
    for strategy, points in simulation.curves.items():
        if not points:
            continue
        last, row = points[-1], ({} if legacy else rows.get(strategy, {}))
        finals.append({"strategy": strategy, "default": strategy == DEFAULT_STRATEGY, "labels": last["labels"],
                       "balanced_accuracy": last.get("balanced_accuracy"),
                       "balanced_accuracy_sd": last.get("balanced_accuracy_sd"), "macro_f1": last.get("macro_f1"),
                       "accuracy": last.get("accuracy"), **row, "seconds": simulation.seconds.get(strategy)})
    best = verdict.get("best") if not legacy else None
    return render(request, "labeling/simulation_detail.html", {
        "simulation": simulation, "finals": finals, "verdict": None if legacy else verdict,
        "best": rows.get(best) if best else None,
        "seeds": simulation.parameters.get("seeds") or [simulation.parameters.get("seed")],
        "chart": {"curves": simulation.curves, "target": None if legacy else verdict.get("target")},
    })
