#!/bin/sh
# Pick the iptables backend the node uses (as upstream's iptables-wrapper does), then run
# the real kube-proxy. kubeadm's DaemonSet runs /usr/local/bin/kube-proxy, which is this.
l=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-' )
n=$( (iptables-nft-save; ip6tables-nft-save) 2>/dev/null | grep -c '^-' )
mode=legacy
[ "${n:-0}" -gt "${l:-0}" ] && mode=nft
update-alternatives --set iptables "/usr/sbin/iptables-$mode" >/dev/null 2>&1
update-alternatives --set ip6tables "/usr/sbin/ip6tables-$mode" >/dev/null 2>&1
exec /usr/local/bin/kube-proxy.real "$@"
