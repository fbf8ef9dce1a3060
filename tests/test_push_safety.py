"""Issue 15's push findings, each reproduced against the real lab (and the database), so they
stay fixed: backups per push and node, a node that had no file, the notify script."""

import pytest

from clusters import notify
from clusters.models import ConfigPush, PushStep
from clusters.push import run_push
from clusters.services.pushes import queue_push as start_push
from clusters.services.pushes import requeue_push as resume_push
from tests.lab_cluster import lab_vip, make_lab_cluster, place_configs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

# Kills the SSH session running the push's script (walks up from the script's shell to sshd):
# the link drops right after the rename, as when the worker's host dies mid-step.
KILL_OWN_SESSION = (
    'p=$$; while [ "$p" -gt 1 ]; do case "$(cat /proc/$p/comm)" in sshd*) kill -9 $p; '
    "exit 0;; esac; p=$(cut -d' ' -f4 /proc/$p/stat); done"
)


def push_here(cluster):
    push = start_push(cluster, queue=False)
    run_push(push.pk)
    push.refresh_from_db()
    return push


def live(node, path):
    result = node.exec(f"cat {path}", check=False)
    return result.stdout if result.returncode == 0 else None


def test_a_resume_never_overwrites_the_backup_with_the_new_file(clean_lab):
    # Reproduction: a step that got past the rename is applied again by the resume, which used
    # to copy the live file (already the new one) over the backup; the restore then put the
    # new config back and the known-good one existed nowhere.
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    first = clean_lab[0]
    original = live(first, cluster.config_path)
    cluster.vips.create(address=lab_vip(clean_lab, offset=110))
    cluster.reload_command = KILL_OWN_SESSION
    cluster.save()
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED, push.detail
    step = push.steps.get(position=1)
    assert step.state == PushStep.State.FAILED
    # The link died after the rename: the new file is live, the saved original kept.
    assert lab_vip(clean_lab, offset=110) in live(first, cluster.config_path)
    assert live(first, f"/etc/keepalived/.vipanel-bak-{push.pk}/config") == original
    # The resume's reload fails: the restore must bring back the original, not the new file.
    cluster.reload_command = "echo reload refused >&2; exit 3"
    cluster.save()
    resume_push(push)
    run_push(push.pk)
    push.refresh_from_db()
    assert push.state == ConfigPush.State.FAILED
    assert push.steps.get(position=1).exit_code == 3
    assert live(first, cluster.config_path) == original
    assert "vipanel-bak" not in first.exec("ls -a /etc/keepalived").stdout


def test_a_node_that_had_no_file_is_returned_to_no_file_and_keepalived_stopped(clean_lab):
    # Reproduction: restore() removed the new file of a node that had none but left the
    # keepalived the push had started running with the new config.
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    bare = clean_lab[0]
    bare.kill_keepalived()
    bare.exec(f"rm -f {cluster.config_path}")
    cluster.reload_command = f"{bare.reload_command}; echo started, then refused >&2; exit 4"
    cluster.save()
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    step = push.steps.get(node_name=bare.name)
    assert step.exit_code == 4 and "refused" in step.output, (step.output, push.log)
    assert live(bare, cluster.config_path) is None
    assert not bare.keepalived_running()
    # The others were not touched and still serve.
    assert all(n.keepalived_running() for n in clean_lab[1:])


@pytest.fixture
def notify_on(settings):
    settings.VIPANEL_NOTIFY_URL = "http://127.0.0.1:9/notify"
    assert notify.enabled()


def test_the_notify_script_is_tested_before_it_replaces_the_live_one(clean_lab, notify_on):
    # Reproduction: the notify script was put in place before keepalived -t ran, and a failed
    # push never put the old one back.
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    for node in clean_lab:
        node.exec(
            f"printf '#!/bin/sh\\n# old\\nexit 0\\n' > {notify.SCRIPT_PATH} && "
            f"chmod 700 {notify.SCRIPT_PATH}"
        )
    second = cluster.nodes.get(name=clean_lab[1].name)
    second.interface = "eth9"  # keepalived -t fails on the second node in push order
    second.save()
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    assert push.steps.get(node_name=clean_lab[1].name).state == PushStep.State.FAILED
    # The first node took the new script with its config; the failed and untouched ones kept
    # the old script byte for byte.
    assert "# old" not in live(clean_lab[0], notify.SCRIPT_PATH)
    assert live(clean_lab[1], notify.SCRIPT_PATH) == "#!/bin/sh\n# old\nexit 0\n"
    assert live(clean_lab[2], notify.SCRIPT_PATH) == "#!/bin/sh\n# old\nexit 0\n"


def test_a_failed_reload_puts_the_old_notify_script_back(clean_lab, notify_on):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    first = clean_lab[0]
    first.exec(f"printf '#!/bin/sh\\n# old\\nexit 0\\n' > {notify.SCRIPT_PATH}")
    cluster.reload_command = "exit 3"
    cluster.save()
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    assert live(first, notify.SCRIPT_PATH) == "#!/bin/sh\n# old\nexit 0\n"


def test_an_unreachable_node_stops_the_push_before_any_node_is_touched(clean_lab):
    cluster = place_configs(clean_lab, make_lab_cluster(clean_lab))
    before = [live(n, cluster.config_path) for n in clean_lab]
    second = cluster.nodes.get(name=clean_lab[1].name)
    second.ssh_port = 2  # nothing listens there
    second.save()
    cluster.vips.create(address=lab_vip(clean_lab, offset=111))
    push = push_here(cluster)
    assert push.state == ConfigPush.State.FAILED
    name = clean_lab[1].name
    assert push.detail == (
        f"{name} could not be reached, so no node was changed. Resume skipping {name} to push "
        "the others, or resume once it is back."
    )
    step = push.steps.get(node_name=name)
    assert step.state == PushStep.State.FAILED and step.detail.startswith("connection refused")
    others = push.steps.exclude(node_name=name)
    assert set(others.values_list("state", flat=True)) == {PushStep.State.PENDING}
    assert [live(n, cluster.config_path) for n in clean_lab] == before
