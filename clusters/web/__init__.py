"""The panel's pages, by area (dashboard, clusters, nodes, vips, pushes, history, audit,
credentials, users). Reading needs the viewer role, changing and pushing the operator role,
credentials and users the admin role (clusters.roles); login itself is enforced for every page
by LoginRequiredMiddleware. Every view that changes something takes POST only and calls one
service (clusters.services), which checks the role again, validates and audits. Preview is a
POST too: it connects to every node.

Pages work without JavaScript: forms post and are redirected; htmx asks the same URLs for
fragments (clusters.web.htmx decides which). presenters.py holds what a page shows and its
CSS classes, forms.py the panel's own forms. keepalived's notify endpoint is not a page:
clusters.hooks.notify.
"""
