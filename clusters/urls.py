from django.urls import path

from clusters import views

app_name = "clusters"

# Pages answer GET; every change is a POST to its own URL (no page changes anything on GET).
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("clusters/new/", views.cluster_new, name="cluster-new"),
    path("clusters/create/", views.cluster_create, name="cluster-create"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster"),
    path("clusters/<int:pk>/status/", views.cluster_status, name="cluster-status"),
    path("clusters/<int:pk>/edit/", views.cluster_edit, name="cluster-edit"),
    path("clusters/<int:pk>/update/", views.cluster_update, name="cluster-update"),
    path("clusters/<int:pk>/nodes/add/", views.node_add, name="node-add"),
    path("clusters/<int:pk>/vips/add/", views.vip_add, name="vip-add"),
    path("clusters/<int:pk>/preview/", views.push_preview, name="push-preview"),
    path("clusters/<int:pk>/push/", views.push_start, name="push-start"),
    path("clusters/<int:pk>/drill/", views.cluster_drill, name="drill"),
    path("clusters/<int:pk>/history/", views.cluster_history, name="history"),
    path("nodes/<int:pk>/edit/", views.node_edit, name="node-edit"),
    path("nodes/<int:pk>/update/", views.node_update, name="node-update"),
    path("nodes/<int:pk>/delete/", views.node_delete, name="node-delete"),
    path("nodes/<int:pk>/maintenance/", views.node_maintenance, name="node-maintenance"),
    path("nodes/<int:pk>/host-key/", views.node_host_key, name="node-host-key"),
    path("nodes/<int:pk>/repin/", views.node_repin, name="node-repin"),
    path("vips/<int:pk>/delete/", views.vip_delete, name="vip-delete"),
    path("pushes/<int:pk>/", views.push_detail, name="push"),
    path("pushes/<int:pk>/resume/", views.push_resume, name="push-resume"),
    path("audit/", views.audit_log, name="audit"),
    path("credentials/", views.credential_list, name="credentials"),
    path("credentials/new/", views.credential_new, name="credential-new"),
    path("credentials/create/", views.credential_create, name="credential-create"),
    path("credentials/<int:pk>/edit/", views.credential_edit, name="credential-edit"),
    path("credentials/<int:pk>/update/", views.credential_update, name="credential-update"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_new, name="user-new"),
    path("users/create/", views.user_create, name="user-create"),
    path("users/<int:pk>/role/", views.user_role, name="user-role"),
    path("notify/<int:cluster_id>/", views.notify_report, name="notify"),
    path(
        "nodes/<int:pk>/vips/<int:vip_pk>/remove-stale/",
        views.node_remove_stale,
        name="node-remove-stale",
    ),
]
