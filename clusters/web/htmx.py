"""One place decides whether a request gets a whole page or a fragment of one.

htmx asks for fragments (polling, inline forms); a browser without JavaScript, a boosted link or
a history restore gets the whole page. After a change, a plain form post is redirected (so a
reload does not post twice) while htmx gets the fragment that shows the change.
"""

from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

# Validation errors: a page or fragment that still shows the form, with an honest status.
# base.html tells htmx to swap 422 answers, which it would otherwise drop as errors.
UNPROCESSABLE = 422


def wants_fragment(request):
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(request, template, context, *, fragment=None, status=200):
    """The whole `template`, or only `fragment` when htmx asked for a part of the page.

    Both answers come from one URL, so caches must keep them apart (Vary: HX-Request).
    """
    name = fragment if fragment and wants_fragment(request) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def done(request, to, *, fragment=None, context=None, status=200):
    """After a successful change: the fragment for htmx, a redirect to `to` for a plain post."""
    if fragment and wants_fragment(request):
        return render(request, fragment, context or {}, status=status)
    return redirect(to)
