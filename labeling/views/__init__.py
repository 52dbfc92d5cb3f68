"""Browser pages, one module per area. Each view parses its input, calls a selector or a service, and renders."""

from labeling.views.access import home
from labeling.views.agreement import agreement, review, review_resolve
from labeling.views.catalogue import dataset_list, galaxy_detail, galaxy_list, tree_detail, tree_list
from labeling.views.classify import (
    classify_home,
    classify_image_view,
    classify_next_view,
    classify_page,
    classify_submit_view,
)
from labeling.views.clusters import clustering_detail, clustering_list, map_detail, map_list, map_points
from labeling.views.jobs import job_cancel_view, job_list, job_rerun_view, job_start, job_status
from labeling.views.labelling import label_home, label_page
from labeling.views.similarity import galaxy_similar, galaxy_thumbnail
from labeling.views.simulations import simulation_detail, simulation_list
from labeling.views.training import (
    training_activate,
    training_curve,
    training_page,
    training_pretrain,
    training_rollback,
    training_start,
)
from labeling.views.volunteers import volunteer_exclude_view, volunteer_include_view, volunteer_list

__all__ = [
    "agreement", "classify_home", "classify_image_view", "home", "classify_next_view", "classify_page",
    "classify_submit_view", "review", "review_resolve", "simulation_detail", "simulation_list",
    "clustering_detail", "clustering_list", "dataset_list", "galaxy_detail", "galaxy_list", "galaxy_similar",
    "galaxy_thumbnail", "job_cancel_view", "job_list", "job_rerun_view", "job_start", "job_status", "label_home",
    "label_page", "map_detail", "map_list", "map_points", "tree_detail", "tree_list",
    "training_activate", "training_curve", "training_page", "training_pretrain", "training_rollback",
    "training_start", "volunteer_exclude_view", "volunteer_include_view", "volunteer_list",
]
