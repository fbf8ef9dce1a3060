from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The alerts app's API, on the same token, roles, errors and schema (alerts/api.py).
    path("api/v1/alerts/", include("alerts.api_urls")),
    path("api/v1/", include("clusters.api.urls")),
    path("", include("clusters.metrics")),  # /metrics
    path("alerts/", include("alerts.urls")),
    path("", include("clusters.urls")),
]

# JSON under /api/ (a URL no route matches, an unexpected error), the usual pages elsewhere.
handler400 = "clusters.api.errors.bad_request"
handler403 = "clusters.api.errors.permission_denied"
handler404 = "clusters.api.errors.not_found"
handler500 = "clusters.api.errors.server_error"
