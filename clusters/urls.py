from django.urls import path

from clusters.hooks import notify
from clusters.web import (
    audit,
    clusters,
    credentials,
    dashboard,
    history,
    instances,
    nodes,
    pushes,
    users,
    vips,
)

app_name = "clusters"

# Pages answer GET; every change is a POST to its own URL (no page changes anything on GET).
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("clusters/new/", clusters.cluster_new, name="cluster-new"),
    path("clusters/create/", clusters.cluster_create, name="cluster-create"),
    path("clusters/<int:pk>/", clusters.cluster_detail, name="cluster"),
    path("clusters/<int:pk>/status/", clusters.cluster_status, name="cluster-status"),
    path("clusters/<int:pk>/edit/", clusters.cluster_edit, name="cluster-edit"),
    path("clusters/<int:pk>/update/", clusters.cluster_update, name="cluster-update"),
    path("clusters/<int:pk>/nodes/add/", nodes.node_add, name="node-add"),
    path("clusters/<int:pk>/vips/add/", vips.vip_add, name="vip-add"),
    path("clusters/<int:pk>/preview/", pushes.push_preview, name="push-preview"),
    path("clusters/<int:pk>/push/", pushes.push_start, name="push-start"),
    path("clusters/<int:pk>/drill/", pushes.cluster_drill, name="drill"),
    path("clusters/<int:pk>/history/", history.cluster_history, name="history"),
    path("nodes/<int:pk>/edit/", nodes.node_edit, name="node-edit"),
    path("nodes/<int:pk>/update/", nodes.node_update, name="node-update"),
    path("nodes/<int:pk>/delete/", nodes.node_delete, name="node-delete"),
    path("nodes/<int:pk>/maintenance/", nodes.node_maintenance, name="node-maintenance"),
    path("nodes/<int:pk>/host-key/", nodes.node_host_key, name="node-host-key"),
    path("nodes/<int:pk>/repin/", nodes.node_repin, name="node-repin"),
    path(
        "nodes/<int:pk>/vips/<int:vip_pk>/remove-stale/",
        nodes.node_remove_stale,
        name="node-remove-stale",
    ),
    path("vips/<int:pk>/delete/", vips.vip_delete, name="vip-delete"),
    path("clusters/<int:pk>/instances/add/", instances.instance_add, name="instance-add"),
    path("clusters/<int:pk>/active-active/", instances.active_active, name="active-active"),
    path("instances/<int:pk>/edit/", instances.instance_edit, name="instance-edit"),
    path("instances/<int:pk>/update/", instances.instance_update, name="instance-update"),
    path("instances/<int:pk>/delete/", instances.instance_delete, name="instance-delete"),
    path(
        "instances/<int:pk>/priority/<int:node_pk>/",
        instances.instance_priority,
        name="instance-priority",
    ),
    path("pushes/<int:pk>/", pushes.push_detail, name="push"),
    path("pushes/<int:pk>/resume/", pushes.push_resume, name="push-resume"),
    path("audit/", audit.audit_log, name="audit"),
    path("credentials/", credentials.credential_list, name="credentials"),
    path("credentials/new/", credentials.credential_new, name="credential-new"),
    path("credentials/create/", credentials.credential_create, name="credential-create"),
    path("credentials/<int:pk>/edit/", credentials.credential_edit, name="credential-edit"),
    path("credentials/<int:pk>/update/", credentials.credential_update, name="credential-update"),
    path("users/", users.user_list, name="users"),
    path("users/new/", users.user_new, name="user-new"),
    path("users/create/", users.user_create, name="user-create"),
    path("users/<int:pk>/role/", users.user_role, name="user-role"),
    path("notify/<int:cluster_id>/", notify.notify_report, name="notify"),
]
