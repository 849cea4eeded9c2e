#!/usr/bin/env bash
# Installs what the launcher and the test guest need on a Debian machine: QEMU, libvirt's daemons and client,
# libvirt's schema validator, passt, and the tools the guest image builder uses; also nftables, for devcluster's
# kube-proxy, and OpenSSH's client, for `virtctl ssh`. Idempotent: a package already installed is skipped, and a
# machine that has everything costs one dpkg-query. Also creates the `kvm` group and the `libvirt-qemu` user and
# group that libvirt's QEMU driver looks up at start (Debian's libvirt-daemon-system would create them, but it also
# installs and starts system daemons, which the launcher must not share).
# Usage: scripts/install-hypervisor.sh        (as root, or through sudo when it is available)
set -euo pipefail

say() { echo "install-hypervisor: $*" >&2; }

PACKAGES=(
  # The hypervisor and libvirt (libvirtd + virtlogd + virsh), as the launcher runs them.
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  # UEFI firmware (OVMF, with a Secure Boot build) for VMIs with firmware.bootloader.efi, as the launcher image has.
  ovmf
  # virt-xml-validate needs xmllint; genisoimage builds cloud-init NoCloud ISOs.
  libxml2-utils genisoimage
  # The test guest builder: busybox initramfs, module dependencies, a syslinux-bootable FAT disk.
  busybox-static cpio kmod dosfstools mtools syslinux syslinux-common fdisk
  # devcluster's kube-proxy (nftables mode) programs each node's Services with the `nft` command.
  nftables
  # `virtctl ssh`/`scp` run the local OpenSSH client; the e2e suite also makes its test keys with ssh-keygen.
  openssh-client
  # The passtBinding interface binding: the launcher runs passt (user-mode networking, no privileges) for QEMU.
  passt
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else
    say "run this as root (or install sudo): it installs Debian packages and creates system users"; exit 1
  fi
fi

command -v dpkg-query >/dev/null && command -v apt-get >/dev/null || {
  say "this script needs a Debian-based system (dpkg and apt-get); install the equivalents of: ${PACKAGES[*]}"; exit 1
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package lists may be absent or stale on a fresh machine: refresh them once and retry before giving up.
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    say "install failed; refreshing the package lists and retrying"
    "${SUDO[@]}" apt-get update -q >&2
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
fi

# Users and groups libvirt's QEMU driver resolves when it loads, even though our qemu.conf runs QEMU as root.
getent group kvm >/dev/null || "${SUDO[@]}" groupadd --system kvm
getent group libvirt-qemu >/dev/null || "${SUDO[@]}" groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
  "${SUDO[@]}" useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt --no-create-home \
    --shell /usr/sbin/nologin libvirt-qemu

say "ready: $(qemu-system-x86_64 --version | head -n1), libvirt $(libvirtd --version | awk '{print $NF}')"
