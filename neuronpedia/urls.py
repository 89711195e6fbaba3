from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from autointerp.urls import feature_urlpatterns as autointerp_feature_pages
from features.urls import urlpatterns as features_pages
from inference.urls import feature_urlpatterns as inference_feature_pages
from neuronpedia.accounts.throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm
from neuronpedia.jobs.urls import feature_urlpatterns as job_actions

admin.site.login_form = ThrottledAdminAuthenticationForm  # sign-in throttling for the admin too

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("autointerp.urls")),
    path("accounts/", include("neuronpedia.accounts.urls")),
    path("api/graph/", include("graphs.api_urls")),
    path("api/", include("neuronpedia.api.urls")),
    path("jobs/", include("neuronpedia.jobs.urls")),
    path("", include("graphs.urls")),
    path("", include("steering.urls")),
    # one `features:` namespace: autointerp's and inference's pages about features, staff job actions,
    # then the catalog's (its catch-alls last)
    path("", include((autointerp_feature_pages + inference_feature_pages + job_actions + features_pages,
                      "features"))),
]

# one error path: JSON under /api, the site's pages elsewhere (neuronpedia/errors.py)
handler400 = "neuronpedia.errors.bad_request"
handler403 = "neuronpedia.errors.permission_denied"
handler404 = "neuronpedia.errors.page_not_found"
handler500 = "neuronpedia.errors.server_error"
