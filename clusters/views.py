from django.shortcuts import render

from clusters.models import Cluster


def dashboard(request):
    clusters = Cluster.objects.prefetch_related("nodes", "vips")
    return render(request, "clusters/dashboard.html", {"clusters": clusters})
