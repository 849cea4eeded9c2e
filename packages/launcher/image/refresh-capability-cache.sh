#!/bin/sh
# Makes the QEMU capability cache baked into the image (prefill-capabilities.sh) valid on the node that runs it.
# libvirt discards a cache entry when the QEMU binary's ctime, or the newest ctime among libvirtd and the driver
# modules it loads, differs from the one recorded in the entry. Unpacking an image on a node gives every file a
# new ctime although its bytes are those that were probed at build time, so without this step each launcher would
# pay the full probe (about 8 s) again. Run it before the libvirt daemon starts. If the guess of libvirt's own ctime
# is off, libvirt simply probes again: the cost is the probe, never a wrong result.
set -eu

cache=/var/cache/libvirt/qemu/capabilities
libdir=/usr/lib/x86_64-linux-gnu/libvirt

# libvirtd loads every connection driver and storage module that is installed; its "self" ctime is the newest one.
self_ctime=$(stat -c %Z /usr/sbin/libvirtd "$libdir"/*/*.so | sort -n | tail -n 1)

for entry in "$cache"/*.xml; do
  [ -e "$entry" ] || continue
  emulator=$(sed -n 's:^ *<emulator>\(.*\)</emulator> *$:\1:p' "$entry")
  if [ -z "$emulator" ] || [ ! -e "$emulator" ]; then
    continue
  fi
  qemu_ctime=$(stat -c %Z "$emulator")
  sed -i \
    -e "s:<qemuctime>[0-9]*</qemuctime>:<qemuctime>$qemu_ctime</qemuctime>:" \
    -e "s:<selfctime>[0-9]*</selfctime>:<selfctime>$self_ctime</selfctime>:" \
    "$entry"
done
