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
    simulation = get_object_or_404(Simulation.objects.select_related("dataset"), pk=simulation_id)
    finals = [{"strategy": strategy, "labels": points[-1]["labels"], "accuracy": points[-1]["accuracy"],
               "balanced_accuracy": points[-1]["balanced_accuracy"],
               "needed": simulation.savings.get("per_strategy", {}).get(strategy),
               "seconds": simulation.seconds.get(strategy)} for strategy, points in simulation.curves.items() if points]
    return render(request, "labeling/simulation_detail.html", {
        "simulation": simulation, "finals": finals,
        "chart": {"curves": simulation.curves, "baseline": simulation.savings.get("baseline_final_accuracy")},
    })
