from django.urls import path

from clusters.api import views as v

app_name = "api"

# The schema at schema/ is generated from these views (drf-spectacular); docs/ renders it.
urlpatterns = [
    path("schema/", v.SchemaView.as_view(), name="schema"),
    path("docs/", v.DocsView.as_view(), name="docs"),
    path("credentials/", v.CredentialList.as_view(), name="credentials"),
    path("clusters/", v.ClusterList.as_view(), name="clusters"),
    path("adopt/keys/", v.AdoptKeys.as_view(), name="adopt-keys"),
    path("adopt/read/", v.AdoptRead.as_view(), name="adopt-read"),
    path("adopt/", v.Adopt.as_view(), name="adopt"),
    path("clusters/<int:cluster_id>/", v.ClusterDetail.as_view(), name="cluster"),
    path("clusters/<int:cluster_id>/nodes/", v.NodeList.as_view(), name="cluster-nodes"),
    path("clusters/<int:cluster_id>/vips/", v.VipList.as_view(), name="cluster-vips"),
    path("clusters/<int:cluster_id>/pushes/", v.PushList.as_view(), name="cluster-pushes"),
    path("clusters/<int:cluster_id>/preview/", v.ClusterPreview.as_view(), name="preview"),
    path("clusters/<int:cluster_id>/impact/", v.ClusterImpact.as_view(), name="impact"),
    path("clusters/<int:cluster_id>/status/", v.ClusterStatus.as_view(), name="status"),
    path("clusters/<int:cluster_id>/refresh/", v.ClusterRefresh.as_view(), name="refresh"),
    path("clusters/<int:cluster_id>/failovers/", v.ClusterFailovers.as_view(), name="failovers"),
    path("nodes/<int:node_id>/", v.NodeDetail.as_view(), name="node"),
    path("nodes/<int:node_id>/repin/", v.NodeRepin.as_view(), name="node-repin"),
    path("vips/<int:vip_id>/", v.VipDetail.as_view(), name="vip"),
    path(
        "clusters/<int:cluster_id>/instances/",
        v.InstanceList.as_view(),
        name="cluster-instances",
    ),
    path("instances/<int:instance_id>/", v.InstanceDetail.as_view(), name="instance"),
    path(
        "instances/<int:instance_id>/priorities/",
        v.InstancePriority.as_view(),
        name="instance-priorities",
    ),
    path("clusters/<int:cluster_id>/sync-groups/", v.SyncGroupList.as_view(), name="sync-groups"),
    path("sync-groups/<int:group_id>/", v.SyncGroupDetail.as_view(), name="sync-group"),
    path("pushes/<int:push_id>/", v.PushDetail.as_view(), name="push"),
    path("pushes/<int:push_id>/resume/", v.PushResume.as_view(), name="push-resume"),
]
