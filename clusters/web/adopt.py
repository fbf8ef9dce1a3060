"""Adopt a running cluster: the panel's three steps over clusters.services.adopt.

1. /clusters/adopt/: the nodes (one per line: address, optional :port, optional fingerprint),
   the credential, and for admins the config path.
2. POST keys/: each node's offered host key; the person ticks the ones they compared.
3. POST read/: the proposal, every finding side by side with what vipanel will write and why,
   each node's live file against vipanel's, the carried blocks by file:line, and the fields a
   person may edit. POST save/ adopts and lands on the new cluster's page (Preview, Push).

Nothing is kept on the server between the steps: each page carries the nodes, the trusted
fingerprints, the credential and (on the proposal) the digest of what was read in hidden fields,
and every step reads the nodes again (clusters.services.adopt says why).
"""

import re

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from clusters import constants, roles
from clusters.models import Cluster, SSHCredential
from clusters.roles import OPERATOR, require_role
from clusters.services import adopt as services
from clusters.services.errors import Forbidden, Refused
from clusters.web.htmx import UNPROCESSABLE

_BRACKETED = re.compile(r"\[(?P<address>[^\]]+)\](?::(?P<port>[0-9]{1,5}))?")
TEMPLATE = "clusters/adopt.html"
PROPOSAL_FIELDS = [
    "name",
    "network",
    "check_type",
    "check_target",
    "check_script",
    "check_weight",
    "reload_command",
]


def parse_nodes(text):
    """[{address, ssh_port, host_key_fingerprint}] from the nodes box, or ValidationError.

    A line is ADDRESS, ADDRESS:PORT or [IPv6]:PORT, then optionally the fingerprint. The
    address itself is judged by the service (clusters.services.adopt.parse_targets).
    """
    nodes, problems = [], []
    for number, line in enumerate((text or "").splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        host, port = words[0], "22"
        bracketed = _BRACKETED.fullmatch(host)
        if bracketed:
            host, port = bracketed.group("address"), bracketed.group("port") or "22"
        elif host.count(":") == 1:
            host, port = host.split(":")
        if len(words) > 2 or not port.isdigit() or not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            problems.append(
                f"Line {number}: write ADDRESS, ADDRESS:PORT or [IPv6]:PORT, then optionally "
                "the SHA256 fingerprint."
            )
            continue
        nodes.append(
            {
                "address": host,
                "ssh_port": int(port),
                "host_key_fingerprint": words[1] if len(words) > 1 else "",
            }
        )
    if problems:
        raise ValidationError(problems)
    if not nodes:
        raise ValidationError("Name at least one node.")
    return nodes


def nodes_text(nodes):
    lines = []
    for node in nodes:
        address = node["address"]
        if node["ssh_port"] != 22:
            address = (
                f"[{address}]:{node['ssh_port']}"
                if ":" in address
                else f"{address}:{node['ssh_port']}"
            )
        lines.append(f"{address} {node['host_key_fingerprint']}".strip())
    return "\n".join(lines)


class NodesForm(forms.Form):
    nodes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "192.0.2.11\n192.0.2.12:2222"}),
        help_text="One node per line: its address, optionally :PORT for SSH, optionally its "
        "SHA256 host key fingerprint (as `ssh-keygen -lf` prints it) to compare with the key it "
        "offers.",
    )
    credential = forms.ModelChoiceField(
        queryset=SSHCredential.objects.all(), help_text="The SSH credential for every node."
    )
    config_path = forms.CharField(
        initial=constants.DEFAULT_CONFIG_PATH,
        help_text="keepalived's config file on the nodes (only an admin may change it).",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not roles.can_admin(user):
            self.fields["config_path"].disabled = True

    def clean_nodes(self):
        return parse_nodes(self.cleaned_data["nodes"])


class ProposalForm(forms.Form):
    """The fields a person may change before saving (clusters.services.adopt.EDITABLE)."""

    name = forms.CharField(max_length=63, help_text="The new cluster's name in vipanel.")
    network = forms.CharField(
        max_length=43, help_text="The nodes' L2 segment; VRIDs are unique per segment."
    )
    check_type = forms.ChoiceField(choices=Cluster.CheckType.choices, required=False)
    check_target = forms.CharField(required=False, max_length=200)
    check_script = forms.CharField(
        required=False, max_length=255, help_text="With check type 'command': admin only."
    )
    check_weight = forms.IntegerField(required=False)
    reload_command = forms.CharField(
        max_length=255, help_text="Only an admin may change it: it runs as a shell command."
    )

    def __init__(self, *args, plan=None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        for node in plan.nodes if plan else []:
            self.fields[f"name_{node.key}"] = forms.CharField(
                max_length=63, initial=node.name, label=f"Name of {node.key}"
            )
            self.fields[f"priority_{node.key}"] = forms.IntegerField(
                initial=node.priority, label=f"Priority of {node.key}"
            )
        if not roles.can_admin(user):
            self.fields["reload_command"].disabled = True

    def edits(self):
        data = self.cleaned_data
        edits = {
            name: data[name]
            for name in ("name", "network", "check_type", "check_target", "check_script")
            if name in data
        }
        edits["check_weight"] = data.get("check_weight") or 0
        if not self.fields["reload_command"].disabled:
            edits["reload_command"] = data["reload_command"]
        edits["nodes"] = {
            node.key: {
                "name": data.get(f"name_{node.key}"),
                "priority": data.get(f"priority_{node.key}"),
            }
            for node in self.plan.nodes
        }
        return edits

    def node_fields(self, node):
        return self[f"name_{node.key}"], self[f"priority_{node.key}"]


def _initial(plan):
    return {
        "name": plan.name,
        "network": plan.network,
        "check_type": plan.check_type,
        "check_target": plan.check_target,
        "check_script": plan.check_script,
        "check_weight": plan.check_weight,
        "reload_command": plan.reload_command,
    }


def _nodes_form(request, data=None):
    return NodesForm(data, user=request.user)


def _trusted(request, nodes):
    """The nodes with the fingerprints the person ticked (trust_<i> = the offered key)."""
    out = []
    for index, node in enumerate(nodes):
        fingerprint = request.POST.get(f"trust_{index}", "")
        out.append({**node, "host_key_fingerprint": fingerprint})
    return out


def _back_to_nodes(request, form):
    return render(request, TEMPLATE, {"step": "nodes", "form": form}, status=UNPROCESSABLE)


@require_safe
@require_role(OPERATOR)
def adopt_start(request):
    return render(request, TEMPLATE, {"step": "nodes", "form": _nodes_form(request)})


@require_POST
@require_role(OPERATOR)
def adopt_keys(request):
    form = _nodes_form(request, request.POST)
    offers = None
    if form.is_valid():
        try:
            offers = services.scan_host_keys(
                request.user, form.cleaned_data["nodes"], form.cleaned_data["credential"]
            )
        except ValidationError as e:
            form.add_error(None, e.messages)
    if offers is None:
        return _back_to_nodes(request, form)
    return render(
        request,
        TEMPLATE,
        {"step": "keys", "form": form, "offers": offers, "nodes_text": request.POST["nodes"]},
    )


def _reading_context(request, form, nodes, proposal=None):
    """Read the nodes and build the proposal page's context; -> (context, status)."""
    data = form.cleaned_data
    reading = services.read_cluster(
        request.user,
        nodes,
        data["credential"],
        data.get("config_path") or constants.DEFAULT_CONFIG_PATH,
    )
    plan = reading.plan
    context = {
        "step": "proposal",
        "form": form,
        "reading": reading,
        "plan": plan,
        "nodes_text": nodes_text(nodes),
        "split": [
            (
                key,
                _holder_names(plan, plan.instance(key))["holders"],
                _holder_names(plan, plan.instance(key))["keeper"],
            )
            for key, _, _ in services.split_brain(plan)
        ]
        if plan
        else [],
    }
    if plan is None:
        return context, UNPROCESSABLE
    proposal = proposal or ProposalForm(initial=_initial(plan), plan=plan, user=request.user)
    proposal.plan = plan
    edits = proposal.edits() if proposal.is_bound and proposal.is_valid() else None
    diffs, errors = services.dry_run(reading, data["credential"], edits)
    context.update(
        proposal=proposal,
        proposal_fields=[proposal[name] for name in PROPOSAL_FIELDS],
        diffs=diffs,
        dry_errors=errors,
        node_rows=[
            (node, proposal.node_fields(node), reading.readings[node.key], diffs.get(node.key))
            for node in plan.nodes
        ],
        instances=[(inst, _holder_names(plan, inst)) for inst in plan.instances],
        carried=plan.carried,
    )
    return context, 200 if reading.ok and not errors else UNPROCESSABLE


def _holder_names(plan, inst):
    names = {n.key: n.name for n in plan.nodes}
    return {
        "holders": [f"{names.get(k, k)} ({k})" for k in inst.holders],
        "keeper": f"{names.get(inst.keeper, inst.keeper)} ({inst.keeper})" if inst.keeper else "",
    }


@require_POST
@require_role(OPERATOR)
def adopt_read(request):
    form = _nodes_form(request, request.POST)
    if not form.is_valid():
        return _back_to_nodes(request, form)
    nodes = _trusted(request, form.cleaned_data["nodes"])
    try:
        context, status = _reading_context(request, form, nodes)
    except (ValidationError, Forbidden) as e:
        form.add_error(None, getattr(e, "messages", None) or str(e))
        return _back_to_nodes(request, form)
    return render(request, TEMPLATE, context, status=status)


@require_POST
@require_role(OPERATOR)
def adopt_save(request):
    form = _nodes_form(request, request.POST)
    if not form.is_valid():
        return _back_to_nodes(request, form)
    nodes = form.cleaned_data["nodes"]
    data = form.cleaned_data
    config_path = data.get("config_path") or constants.DEFAULT_CONFIG_PATH
    reading = services.read_cluster(request.user, nodes, data["credential"], config_path)
    proposal = ProposalForm(
        request.POST,
        initial=_initial(reading.plan) if reading.plan else None,
        plan=reading.plan,
        user=request.user,
    )
    refusal, status = None, UNPROCESSABLE
    if reading.plan is not None and proposal.is_valid():
        try:
            cluster = services.adopt_cluster(
                request.user,
                nodes,
                data["credential"],
                request.POST.get("digest", ""),
                proposal.edits(),
                config_path,
            )
        except ValidationError as e:
            for key, messages_ in (
                e.message_dict if hasattr(e, "error_dict") else {"__all__": e.messages}
            ).items():
                field = _form_field(proposal, key)
                proposal.add_error(field, messages_)
        except Forbidden as e:
            refusal, status = str(e), 403
        except Refused as e:
            refusal, status = e.text, 409
        else:
            keepers = ", ".join(
                f"{i.key} stays on {_holder_names(reading.plan, i)['keeper']}"
                for i in reading.plan.instances
            )
            messages.success(
                request,
                f"Cluster {cluster.name} adopted from {cluster.nodes.count()} running nodes; "
                f"nothing on them has changed yet. Preview what the first push writes, then "
                f"push: {keepers}.",
            )
            return redirect("clusters:cluster", cluster.pk)
    context, _ = _reading_context(request, form, nodes, proposal)
    context["refusal"] = refusal
    return render(request, TEMPLATE, context, status=status)


def _form_field(form, key):
    if key in form.fields:
        return key
    if key.startswith("nodes."):
        rest = key[len("nodes.") :]
        for name in ("name", "priority"):
            for node in form.plan.nodes:
                if rest == f"{node.key}.{name}":
                    return f"{name}_{node.key}"
    return None
