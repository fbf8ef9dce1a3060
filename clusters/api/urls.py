from django.urls import path

from clusters.api import views as v
from clusters.api.base import route

app_name = "api"

# Every route here is described in clusters/api/schema.py; tests/test_api_schema.py checks both
# ways, method by method.
urlpatterns = [
    path("schema/", route(GET=v.schema_view), name="schema"),
    path(
        "credentials/",
        route(GET=v.credential_list, POST=v.credential_create),
        name="credentials",
    ),
    path("clusters/", route(GET=v.cluster_list, POST=v.cluster_create), name="clusters"),
    path(
        "clusters/<int:cluster_id>/",
        route(GET=v.cluster_detail, PATCH=v.cluster_update, DELETE=v.cluster_delete),
        name="cluster",
    ),
    path(
        "clusters/<int:cluster_id>/nodes/",
        route(GET=v.node_list, POST=v.node_create),
        name="cluster-nodes",
    ),
    path(
        "clusters/<int:cluster_id>/vips/",
        route(GET=v.vip_list, POST=v.vip_create),
        name="cluster-vips",
    ),
    path(
        "clusters/<int:cluster_id>/pushes/",
        route(GET=v.push_list, POST=v.push_create),
        name="cluster-pushes",
    ),
    path("clusters/<int:cluster_id>/preview/", route(GET=v.cluster_preview), name="preview"),
    path("clusters/<int:cluster_id>/status/", route(GET=v.cluster_status), name="status"),
    path("clusters/<int:cluster_id>/refresh/", route(POST=v.cluster_refresh), name="refresh"),
    path(
        "clusters/<int:cluster_id>/failovers/",
        route(GET=v.cluster_failovers),
        name="failovers",
    ),
    path(
        "nodes/<int:node_id>/",
        route(GET=v.node_detail, PATCH=v.node_update, DELETE=v.node_delete),
        name="node",
    ),
    path("nodes/<int:node_id>/repin/", route(POST=v.node_repin), name="node-repin"),
    path("vips/<int:vip_id>/", route(GET=v.vip_detail, DELETE=v.vip_delete), name="vip"),
    path("pushes/<int:push_id>/", route(GET=v.push_detail), name="push"),
    path("pushes/<int:push_id>/resume/", route(POST=v.push_resume), name="push-resume"),
]
