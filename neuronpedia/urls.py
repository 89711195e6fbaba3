from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from neuronpedia.accounts.throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.login_form = ThrottledAdminAuthenticationForm  # sign-in throttling for the admin too

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("autointerp.urls")),
    path("accounts/", include("neuronpedia.accounts.urls")),
    path("api/graph/", include("graphs.api_urls")),
    path("api/", include("neuronpedia.api")),
    path("jobs/", include("neuronpedia.jobs.urls")),
    path("", include("graphs.urls")),
    path("", include("steering.urls")),
    path("", include("features.urls")),
]

# one error path: JSON under /api, the site's pages elsewhere (neuronpedia/errors.py)
handler400 = "neuronpedia.errors.bad_request"
handler403 = "neuronpedia.errors.permission_denied"
handler404 = "neuronpedia.errors.page_not_found"
handler500 = "neuronpedia.errors.server_error"
