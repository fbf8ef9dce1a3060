"""The use cases, each written once: the panel, the API, the admin and the management commands
call these and nothing else to change something.

Every function is `verb_noun(user, obj_or_parent, data=None, ...)`. It checks the role
(errors.Forbidden), validates with full_clean (django ValidationError keyed by field), refuses a
busy cluster (errors.Busy), writes in one transaction together with its audit entry, and hands
Celery work over on commit. `user=None` is the system itself (a management command run by
someone who already holds the database): no role applies and the audit says "system".

Modules by area: clusters, nodes, vips, credentials, pushes (start, resume, preview),
maintenance, drills, hostkeys, users.

An action that moves traffic or deletes (push, resume, maintenance, drill, delete) takes
`confirm`: from a person, the cluster's name (the panel's confirmation page posts it); EXPLICIT
from a caller whose request is itself the explicit act (the API, the admin). Each such action
has a preview beside it saying what it will do (clusters.impact).
"""

from clusters.services._rules import EXPLICIT

__all__ = ["EXPLICIT"]
