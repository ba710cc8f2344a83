#!/bin/bash
# The mmdebstrap hooks are single-quoted on purpose: "$1" there is the rootfs, given by mmdebstrap.
# shellcheck disable=SC2016
#
# Build a pristine, provider-like Debian cloud image for the VM tests.
#
#   tests/e2e/build-image.sh RELEASE CACHE_DIR      (RELEASE: bookworm | trixie)
#
# Result in CACHE_DIR/RELEASE/: base.img (sparse raw ext4 root), vmlinuz, initrd.img, stamp.
# The stamp holds this script's hash: a complete image from the same script version is reused as is.
# The image is assembled in a temp dir and renamed into place, so a killed build never leaves a
# directory that looks complete. Recipe and reasons: /work/shared/TESTING.md.
set -euo pipefail

usage() { echo "usage: $0 bookworm|trixie CACHE_DIR" >&2; exit 64; }
[[ $# -eq 2 ]] || usage
release=$1
cache=$2
case $release in bookworm | trixie) ;; *) usage ;; esac

# Room for docker images and a PostgreSQL cluster later; the raw file is sparse, so this costs nothing.
disk_size=${PHANES_VM_DISK_SIZE:-6G}
packages=systemd,systemd-sysv,dbus,ca-certificates,cloud-init,locales,openssh-server,sudo,curl,gnupg,iproute2,e2fsprogs,linux-image-cloud-amd64,systemd-resolved,python3

stamp_text="$(sha256sum "$0" | cut -d' ' -f1) disk=$disk_size"
final=$cache/$release
mkdir -p "$cache"
# Two test processes may ask for the same image at once: the second waits, then finds it built.
exec 9>"$cache/.lock-$release"
flock 9
if [[ -f $final/stamp && "$(cat "$final/stamp")" == "$stamp_text" ]]; then
	echo "build-image: $release image is up to date in $final"
	exit 0
fi

for tool in mmdebstrap mkfs.ext4; do
	command -v "$tool" >/dev/null || {
		echo "build-image: $tool not found; install it: apt-get install -y mmdebstrap e2fsprogs" >&2
		exit 1
	}
done
if [[ $(id -u) -ne 0 ]]; then
	echo "build-image: must run as root (mmdebstrap root mode, chroot for locale-gen)" >&2
	exit 1
fi

work=$(mktemp -d "$cache/.build-$release.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
out=$work/image
mkdir -p "$out"

t0=$SECONDS
# The customize hooks make the tree boot like a provider image (see TESTING.md for each reason).
# Like Ubuntu's minimal cloud images, packages install without docs and man pages and man-db
# does not rebuild its index: under TCG that is most of apt's time, and phanes never reads them.
# The image's own networkd DHCP is the only network config: left to itself, cloud-init (ENI
# renderer, ifupdown is in the important set) adds an ifup DHCP client on the same NIC, and on
# trixie that networking.service fails (no DHCPv6 client), leaving a failed unit in every guest.
mmdebstrap --variant=important --include="$packages" \
	--customize-hook='echo "/dev/vda / ext4 defaults 0 1" > "$1/etc/fstab"' \
	--customize-hook='printf "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/10-dhcp.network"' \
	--customize-hook='systemctl --root="$1" enable systemd-networkd.service systemd-resolved.service' \
	--customize-hook='printf "datasource_list: [ NoCloud, None ]\nnetwork: {config: disabled}\n" > "$1/etc/cloud/cloud.cfg.d/90-phanes-test-image.cfg"' \
	--customize-hook='sed -i "s/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/" "$1/etc/locale.gen" && chroot "$1" locale-gen' \
	--customize-hook='echo debian > "$1/etc/hostname"; printf "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"' \
	--customize-hook='ln -sf ../run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf"' \
	--customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
	--customize-hook='printf "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\n" > "$1/etc/dpkg/dpkg.cfg.d/90-phanes-test-image-nodoc"' \
	--customize-hook='echo "man-db man-db/auto-update boolean false" | chroot "$1" debconf-set-selections' \
	"$release" "$rootfs"
t1=$SECONDS
echo "build-image: $release rootfs in $((t1 - t0)) s"

# Resolve the kernel symlinks here: the guest is booted with -kernel/-initrd from the host side.
cp "$(find "$rootfs/boot" -name 'vmlinuz-*' | sort -V | tail -n1)" "$out/vmlinuz"
cp "$(find "$rootfs/boot" -name 'initrd.img-*' | sort -V | tail -n1)" "$out/initrd.img"
truncate -s "$disk_size" "$out/base.img"
mkfs.ext4 -q -F -L root -d "$rootfs" "$out/base.img"
t2=$SECONDS
echo "build-image: $release disk ($disk_size sparse) in $((t2 - t1)) s"

printf '%s\n' "$stamp_text" >"$out/stamp"
rm -rf "$final"
mv -T "$out" "$final"
echo "build-image: $release ready in $final after $((SECONDS - t0)) s"
