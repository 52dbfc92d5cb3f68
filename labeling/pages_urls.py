"""The browser pages, included at "/" by labeling/urls.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("datasets/", views.dataset_list, name="dataset-list"),
    path("galaxies/", views.galaxy_list, name="galaxy-list"),
    path("galaxies/<int:galaxy_id>/", views.galaxy_detail, name="galaxy-detail"),
    path("galaxies/<int:galaxy_id>/similar/", views.galaxy_similar, name="galaxy-similar"),
    path("galaxies/<int:galaxy_id>/thumbnail/", views.galaxy_thumbnail, name="galaxy-thumbnail"),
    path("clusterings/", views.clustering_list, name="clustering-list"),
    path("clusterings/<int:clustering_id>/", views.clustering_detail, name="clustering-detail"),
    path("maps/", views.map_list, name="map-list"),
    path("maps/<int:map_id>/", views.map_detail, name="map-detail"),
    path("maps/<int:map_id>/points.json", views.map_points, name="map-points"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/status.json", views.job_status, name="job-status"),
    path("jobs/start/<slug:kind>/", views.job_start, name="job-start"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel_view, name="job-cancel"),
    path("jobs/<int:job_id>/rerun/", views.job_rerun_view, name="job-rerun"),
    path("label/", views.label_home, name="label-home"),
    path("label/<slug:dataset>/<slug:schema>/", views.label_page, name="label-page"),
    path("agreement/", views.agreement, name="agreement"),
    path("review/", views.review, name="review"),
    path("review/<int:galaxy_id>/resolve/", views.review_resolve, name="review-resolve"),
    path("simulations/", views.simulation_list, name="simulation-list"),
    path("simulations/<int:simulation_id>/", views.simulation_detail, name="simulation-detail"),
    path("training/", views.training_page, name="training"),
    path("training/cycles/start/", views.training_start, name="training-start"),
    path("training/pretrain/start/", views.training_pretrain, name="training-pretrain"),
    path("training/versions/<int:version_id>/activate/", views.training_activate, name="training-activate"),
    path("training/<slug:dataset>/", views.training_curve, name="training-curve"),
    path("training/<slug:dataset>/rollback/", views.training_rollback, name="training-rollback"),
    path("classify/", views.classify_home, name="classify-home"),
    path("classify/<slug:dataset>/", views.classify_page, name="classify-page"),
    path("classify/<slug:dataset>/next/", views.classify_next_view, name="classify-next"),
    path("classify/<slug:dataset>/image/<int:galaxy_id>/", views.classify_image_view, name="classify-image"),
    path("classify/<slug:dataset>/submit/", views.classify_submit_view, name="classify-submit"),
    path("trees/", views.tree_list, name="tree-list"),
    path("trees/<slug:name>/", views.tree_detail, name="tree-detail"),
]
