#!/bin/sh
# Entry point of the virt-launcher image: make the baked-in QEMU capability cache valid on this node, then hand
# over to virt-launcher (exec, so it receives the pod's SIGTERM directly from tini).
set -eu
# The cache only saves time: if refreshing it fails, libvirt probes QEMU itself (slower, still correct).
/usr/local/lib/kubevirt-ts/refresh-capability-cache.sh ||
  echo "virt-launcher entrypoint: could not refresh the QEMU capability cache; libvirt will probe QEMU (about 8 s)" >&2
# node's flags come from node-flags (one a line, # comments), the file devcluster and the tests read too.
# shellcheck disable=SC2046 # one word per flag, intended
exec node $(grep -v '^[[:space:]]*#' /usr/local/lib/kubevirt-ts/node-flags) /app/dist/main.js "$@"
