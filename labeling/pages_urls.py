"""The browser pages, included at "/" by labeling/urls.py."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from labeling import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dataset-list", permanent=False)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("datasets/", views.dataset_list, name="dataset-list"),
    path("galaxies/", views.galaxy_list, name="galaxy-list"),
    path("galaxies/<int:galaxy_id>/", views.galaxy_detail, name="galaxy-detail"),
    path("trees/", views.tree_list, name="tree-list"),
    path("trees/<slug:name>/", views.tree_detail, name="tree-detail"),
]
