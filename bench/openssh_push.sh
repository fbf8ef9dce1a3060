#!/bin/bash
# A rolling push with the plain OpenSSH client, one node at a time, as an operator would script
# it: the same files vipanel renders, the same steps, the same settle criterion.
#
#   openssh_push.sh WORKDIR
#
# WORKDIR holds: hosts (name address priority, in push order), vips (anchor first, comma
# separated), ssh_opts (options pinning the lab key and host keys), NAME.conf and NAME.rules.
# Per node: one scp (config and rules to temp names beside the live file), one ssh that tests
# the config with keepalived -t, keeps a backup, renames it over the live file, tests and
# applies the iptables chain, adds the INPUT jump, reloads keepalived and checks it runs; then
# settle_check.py waits for VRRP like vipanel does. After the last node, the final settle.
set -euo pipefail
work=$1
here=$(cd "$(dirname "$0")" && pwd)
read -r -a opts < "$work/ssh_opts" || true  # no trailing newline
vips=$(cat "$work/vips")
while read -r name address priority; do
  [ -n "$name" ] || continue
  scp -q "${opts[@]}" "$work/$name.conf" "root@$address:/etc/keepalived/.keepalived.conf.new"
  scp -q "${opts[@]}" "$work/$name.rules" "root@$address:/etc/keepalived/.vipanel.rules.new"
  ssh -n "${opts[@]}" "root@$address" '
    set -e
    cd /etc/keepalived
    test -s .keepalived.conf.new && keepalived -t -f .keepalived.conf.new
    cp -p keepalived.conf keepalived.conf.bak
    mv -f .keepalived.conf.new keepalived.conf
    iptables-restore -w --noflush --test < .vipanel.rules.new
    iptables-restore -w --noflush < .vipanel.rules.new
    rm -f .vipanel.rules.new
    iptables -w -C INPUT -j VIPANEL-VRRP 2>/dev/null || iptables -w -I INPUT 1 -j VIPANEL-VRRP
    kill -HUP "$(cat /run/keepalived.pid 2>/dev/null)" 2>/dev/null || keepalived
    pidof keepalived >/dev/null'
  # PLAIN=1: the script an operator writes, no checks in between (the push bench's baseline).
  [ "${PLAIN:-0}" = 1 ] || python3 "$here/settle_check.py" --hosts "$work/hosts" --vips "$vips" \
    --node "$name" --log "$work/settle.log" --ssh-opts "${opts[*]}" </dev/null
done < "$work/hosts"
[ "${PLAIN:-0}" = 1 ] || python3 "$here/settle_check.py" --hosts "$work/hosts" --vips "$vips" --final \
  --log "$work/settle.log" --ssh-opts "${opts[*]}"
