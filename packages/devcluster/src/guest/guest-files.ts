// The files inside the test guest's initramfs: its init, its boot script and the small configuration busybox's
// daemons read. Kept apart from the build steps so that their content, which decides what the guest does, is also
// what versions the cache (a change here rebuilds the guest).

/** The kernel modules the guest loads, by module name; their dependencies are added in load order at build time. */
export const GUEST_MODULES = [
  // Input: acpid reads the ACPI power button through evdev.
  'evdev',
  'button',
  // Disks: virtio-blk and virtio-scsi, SATA (AHCI) disks and cdroms, and the NoCloud ISO's filesystem.
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'ahci',
  'sd_mod',
  'sr_mod',
  'isofs',
  // The guest-agent channel, the rng and the balloon libvirt adds, and virtio-net for the networking issue.
  'virtio_console',
  'virtio_rng',
  'virtio_balloon',
  'virtio_net',
  // The ISA pvpanic device (`<panic model='isa'/>`) is driven by pvpanic-mmio, which needs pvpanic.
  'pvpanic_mmio',
] as const;

/** The agent's virtio-serial port name, which libvirt's guest-agent channel targets. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

/** The line the guest prints on its console when its boot script has finished. */
export const GUEST_READY_LINE = 'kubevirt-ts-guest: ready';

export function osRelease(version: string): string {
  return [
    'NAME="kubevirt-ts test guest"',
    'ID=kubevirt-ts-guest',
    'ID_LIKE=debian',
    `VERSION_ID="${version}"`,
    `VERSION="${version}"`,
    `PRETTY_NAME="kubevirt-ts test guest ${version} (Debian kernel, busybox)"`,
    '',
  ].join('\n');
}

// PID 1 mounts the kernel's filesystems and hands over to busybox init, which reaps orphans, runs the boot script
// and keeps a shell on the console.
export const INIT = `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec /sbin/init
`;

export const INITTAB = `::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
::ctrlaltdel:/sbin/poweroff -f
`;

// acpid maps the power button to a script; the script path is relative to acpid's -c directory, and a command
// with arguments in the map is not run, hence the one-line script.
export const ACPID_MAP = 'PWRF power.sh\n';
export const ACPI_POWER_SCRIPT = `#!/bin/sh
echo "kubevirt-ts-guest: ACPI power button, powering off"
/sbin/poweroff -f
`;

// The boot script. Messages start with "kubevirt-ts-guest:" so they stand out in the serial log; the user-data
// marker is printed alone on its line. Directives are documented in README.md next to this file.
export const RCS = `#!/bin/sh
say() { echo "kubevirt-ts-guest: $*"; }

while read -r mod; do
  insmod "/lib/modules/$mod" 2>/tmp/insmod.err || say "module $mod did not load: $(cat /tmp/insmod.err)"
done < /etc/modules.order

# ACPI shutdown, first: a power-button press before acpid listens is lost. acpid only sees the button once the
# button driver registered it, and logs to a file (its default folder does not exist here).
i=0
while [ $i -lt 50 ] && ! grep -q "Power Button" /proc/bus/input/devices 2>/dev/null; do
  sleep 0.1
  i=$((i + 1))
done
if grep -q "Power Button" /proc/bus/input/devices 2>/dev/null; then
  acpid -c /etc/acpi -a /etc/acpid.conf -l /run/acpid.log
else
  say "no ACPI power button; ACPI shutdown will not work"
fi

# NoCloud: a filesystem labelled cidata (ISO 9660 or FAT), on a cdrom or a disk. SATA ports are probed
# asynchronously, so look for it for a few seconds before deciding there is none.
cidata=
i=0
while [ $i -lt 30 ]; do
  cidata=$(findfs LABEL=cidata 2>/dev/null || findfs LABEL=CIDATA 2>/dev/null || true)
  [ -n "$cidata" ] && break
  sleep 0.1
  i=$((i + 1))
done
userdata=
if [ -n "$cidata" ]; then
  mkdir -p /run/cidata
  if mount -o ro "$cidata" /run/cidata 2>/dev/null; then
    say "cloud-init NoCloud data found on $cidata"
    [ -f /run/cidata/user-data ] && userdata=/run/cidata/user-data
  else
    say "could not mount cloud-init data on $cidata"
  fi
else
  say "no cloud-init NoCloud data (no filesystem labelled cidata)"
fi

# The value of a top-level "key: value" line of the user-data or meta-data, without quotes.
value() {
  [ -f "$2" ] || return 0
  sed -n "s/^$1:[[:space:]]*//p" "$2" | head -n 1 | sed -e 's/[[:space:]]*$//' -e 's/^"\\(.*\\)"$/\\1/' -e "s/^'\\(.*\\)'$/\\1/"
}

# The items of a top-level block list ("key:" then "  - item" lines) of the user-data, one a line, without quotes.
items() {
  [ -f "$2" ] || return 0
  awk -v key="$1:" '
    $0 ~ "^" key "[[:space:]]*$" { inlist = 1; next }
    inlist && /^[[:space:]]*-[[:space:]]/ { sub(/^[[:space:]]*-[[:space:]]+/, ""); print; next }
    inlist && /^[^[:space:]#]/ { inlist = 0 }
  ' "$2" | sed -e 's/[[:space:]]*$//' -e 's/^"\\(.*\\)"$/\\1/' -e "s/^'\\(.*\\)'$/\\1/"
}

name=$(value hostname "$userdata")
[ -n "$name" ] || name=$(value local-hostname /run/cidata/meta-data)
[ -n "$name" ] || name=testguest
hostname "$name"
echo "$name" > /etc/hostname

if [ -n "$userdata" ]; then
  marker=$(value marker "$userdata")
  [ -n "$marker" ] && echo "$marker"
fi

# The network: the first NIC takes its address by DHCP (the launcher's server, for a masquerade interface), then
# two tiny web servers answer on ports 80 and 8080 with the guest's name, so a test can tell a port the pod forwards
# from one it does not.
if [ -e /sys/class/net/eth0 ]; then
  ip link set lo up
  ip link set eth0 up
  if udhcpc -i eth0 -s /etc/udhcpc.script -t 10 -T 2 -A 1 -n -q >/tmp/udhcpc.log 2>&1; then
    say "eth0 $(ip -4 -o addr show dev eth0 | awk '{print $4}') via $(ip route | awk '/^default/ {print $3}')"
  else
    say "eth0 got no DHCP lease: $(tail -n 3 /tmp/udhcpc.log)"
  fi
  mkdir -p /run/www
  echo "kubevirt-ts-guest $(hostname)" > /run/www/index.html
  httpd -p 80 -h /run/www && httpd -p 8080 -h /run/www && say "http servers on ports 80 and 8080"
  # SSH: dropbear on port 22, root by key only (-s: no passwords), the keys from the user-data's
  # ssh_authorized_keys list. The host key is made here, at boot, so no two guests share one. In the background:
  # both programs wait for the kernel's random pool, which takes about a second after boot without an rng device,
  # and the rest of the boot need not wait with them.
  mkdir -p /etc/dropbear /root/.ssh
  items ssh_authorized_keys "$userdata" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
  (
    key=/etc/dropbear/dropbear_ed25519_host_key
    if dropbearkey -t ed25519 -f $key >/run/dropbearkey.log 2>&1; then
      # In the foreground (-F) of this background job, so that its log (-E) goes to a file, not a missing syslog.
      dropbear -F -E -s -p 22 -r $key >/run/dropbear.log 2>&1 &
      i=0
      listening() { grep -q ':0016 0*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
      while [ $i -lt 100 ] && ! listening; do
        sleep 0.1
        i=$((i + 1))
      done
      if listening; then
        say "ssh server on port 22: root, by key only ($(grep -c . /root/.ssh/authorized_keys) authorized keys)"
      else
        say "no ssh server: dropbear is not listening: $(tail -n 3 /run/dropbear.log)"
      fi
    else
      say "no ssh server: dropbearkey failed: $(tail -n 3 /run/dropbearkey.log)"
    fi
  ) &
else
  say "no network interface"
fi

# The guest agent, on the virtio-serial port libvirt names ${GUEST_AGENT_PORT} (no udev here to make the
# /dev/virtio-ports link, so find the port through sysfs).
port=
i=0
while [ $i -lt 30 ] && [ -z "$port" ]; do
  for p in /sys/class/virtio-ports/vport*; do
    [ -f "$p/name" ] && [ "$(cat "$p/name")" = "${GUEST_AGENT_PORT}" ] && port=/dev/\${p##*/}
  done
  [ -n "$port" ] && break
  # Ports register as soon as virtio_console binds; their names follow shortly. No port at all: no channel.
  [ $i -ge 5 ] && ! ls /sys/class/virtio-ports 2>/dev/null | grep -q vport && break
  sleep 0.1
  i=$((i + 1))
done
if [ -n "$port" ]; then
  qemu-ga -m virtio-serial -p "$port" -f /run/qemu-ga.pid -t /run -d && say "guest agent listening on $port"
else
  say "no guest-agent channel"
fi

if [ -n "$userdata" ]; then
  if head -n 1 "$userdata" | grep -q '^#!'; then
    say "running the user-data script"
    cp "$userdata" /run/user-data.sh && chmod +x /run/user-data.sh && (/run/user-data.sh &)
  fi
  delay=$(value poweroff_after "$userdata")
  if [ -n "$delay" ]; then
    say "powering off in $delay s (user-data poweroff_after)"
    (sleep "$delay"; say "powering off (user-data poweroff_after)"; poweroff -f) &
  fi
  delay=$(value panic_after "$userdata")
  if [ -n "$delay" ]; then
    say "panicking in $delay s (user-data panic_after)"
    (sleep "$delay"; say "panicking (user-data panic_after)"; echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger) &
  fi
fi

echo "${GUEST_READY_LINE}"
`;

// busybox udhcpc hands the lease to this script ($mask is the prefix length, $search the option-119 domains).
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" \${broadcast:+broadcast "$broadcast"} dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    [ -n "$search" ] && echo "search $search" >> /etc/resolv.conf
    [ -z "$search" ] && [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
`;

export function syslinuxConfig(kernelArgs: string): string {
  return [
    'DEFAULT guest',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL guest',
    '  KERNEL vmlinuz',
    '  INITRD initrd.img',
    `  APPEND ${kernelArgs}`,
    '',
  ].join('\n');
}
