#!/bin/sh
# Builds Flint's test guest image into OUTDIR:
#   OUTDIR/vmlinuz      Debian's stock cloud kernel (from the package archive)
#   OUTDIR/initrd.img   busybox + the virtio/overlay modules; mounts vda read-only, hands over
#   OUTDIR/rootfs.ext4  busybox, the init shim (/sbin/flint-init) and the test agent (/sbin/init)
#   OUTDIR/cmdline      the kernel command line the image expects (without the network part)
#   OUTDIR/stamp        hash of everything the build depends on
# Usage: images/test/build.sh OUTDIR      (see images/test/README.md)
#
# Cached: when OUTDIR/stamp matches the hash of this script, the guest files,
# the kernel package version and busybox, nothing is rebuilt. Concurrent
# builds into the same OUTDIR serialise on OUTDIR/.lock. Outputs are renamed
# into place, so a reader never sees a half-written file.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$1
PATH=$PATH:/usr/sbin:/sbin
export PATH LC_ALL=C

die() { echo "images/test/build.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing (apt-get install $2)"; }
need busybox busybox-static
need apt-get apt
need dpkg-deb dpkg
need depmod kmod
need cpio cpio
need mkfs.ext4 e2fsprogs
need flock util-linux
busybox_bin=$(command -v busybox)
# The guest has no libc: busybox must be the static build.
busybox --list >/dev/null 2>&1 || die "busybox does not run (apt-get install busybox-static)"
if ldd "$busybox_bin" >/dev/null 2>&1; then
  die "$busybox_bin is dynamically linked; install busybox-static"
fi

# The image is read by unprivileged VMM uids (the jailer's): whatever the
# caller's umask, the directory and its files are world-readable.
umask 022
mkdir -p "$out"
chmod 0755 "$out"
exec 9>"$out/.lock"
flock 9

# The kernel: the ABI package the cloud meta-package currently depends on.
meta=linux-image-cloud-amd64
# One apt-cache call (they are slow): the meta-package pins the ABI package
# with "Depends: linux-image-<abi>-cloud-amd64 (= <version>)".
# The answer only changes when apt's package lists do, so it is remembered
# together with a fingerprint of the lists (names, sizes, mtimes).
lists_fp=$(ls -l --time-style=+%s /var/lib/apt/lists 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$out/.apt-dep" ] && [ "$(sed -n 1p "$out/.apt-dep")" = "$lists_fp" ]; then
  dep=$(sed -n 2p "$out/.apt-dep")
else
  dep=$(apt-cache show --no-all-versions "$meta" 2>/dev/null | sed -n 's/^Depends: \(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n 1)
  [ -n "$dep" ] && printf '%s\n%s\n' "$lists_fp" "$dep" >"$out/.apt-dep"
fi
kpkg=${dep%% *}
kpkgver=${dep#* }
[ -n "$dep" ] && [ -n "$kpkg" ] && [ -n "$kpkgver" ] || die "apt does not know $meta (or its Depends changed form); run apt-get update"

stamp=$( {
  cat "$0" "$here/initramfs-init" "$repo/guest/init-shim" "$repo/guest/test-agent"
  echo "$kpkg $kpkgver"
  sha256sum "$busybox_bin"
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] \
  && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && [ -f "$out/rootfs.ext4" ] && [ -f "$out/cmdline" ]; then
  echo "test image in $out is up to date"
  exit 0
fi

tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "building the test image in $out (kernel $kpkg $kpkgver)"

# --- kernel -----------------------------------------------------------------
# The kernel package is kept beside the image, so a change to the guest
# files rebuilds the image without downloading again (and works offline).
kdeb="$out/$kpkg-$kpkgver.deb"
if [ ! -s "$kdeb" ]; then
  (cd "$tmp" && apt-get download -q "$kpkg=$kpkgver" >/dev/null 2>&1) \
    || (cd "$tmp" && apt-get download "$kpkg=$kpkgver") \
    || die "apt-get download $kpkg failed: is the package archive reachable? (Inside a network namespace it is not: build the image before entering it, as scripts/test.mjs does.)"
  for old_deb in "$out"/*.deb; do [ -e "$old_deb" ] && rm -f "$old_deb"; done
  mv "$tmp"/"$kpkg"_*.deb "$kdeb.part" && mv "$kdeb.part" "$kdeb"
fi
cp "$kdeb" "$tmp/$kpkg"_kernel.deb
dpkg-deb -x "$tmp"/"$kpkg"_*.deb "$tmp/k"
kver=$(ls "$tmp/k/lib/modules")
[ -n "$kver" ] && [ -f "$tmp/k/boot/vmlinuz-$kver" ] || die "unexpected layout of $kpkg"
mods=$tmp/k/lib/modules/$kver
# The package ships no modules.dep (its postinst runs depmod); make one.
depmod -b "$tmp/k" "$kver"

# --- initramfs ----------------------------------------------------------------
# Modules needed to reach and mount the root filesystem and to run the
# guest contract: virtio-mmio transport, block, net, ext4, overlayfs.
# Built-in ones are skipped; dependencies come from modules.dep, which lists
# each module's full dependency closure (load it in reverse order).
wanted="virtio_mmio virtio_blk virtio_net ext4 overlay"
ird=$tmp/initramfs
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/lib/modules"
order=$ird/lib/modules/load-order
: >"$order"
add_module() { # $1 = path relative to $mods
  name=$(basename "$1"); name=${name%%.ko*}
  grep -qx "$name" "$order" && return 0
  case $1 in
    *.ko) cp "$mods/$1" "$ird/lib/modules/$name.ko" ;;
    *.ko.xz) xz -dc "$mods/$1" >"$ird/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$mods/$1" >"$ird/lib/modules/$name.ko" ;;
    *) die "unknown module format: $1" ;;
  esac
  echo "$name" >>"$order"
}
for m in $wanted; do
  if grep -Eq "/$m\.ko(\.xz|\.zst)?$" "$mods/modules.builtin"; then continue; fi
  line=$(grep -E "/$m\.ko(\.xz|\.zst)?:" "$mods/modules.dep" || true)
  [ -n "$line" ] || die "kernel $kver has module $m neither built in nor as a module"
  path=${line%%:*}
  deps=${line#*:}
  rev=""
  for d in $deps; do rev="$d $rev"; done
  for d in $rev; do add_module "$d"; done
  add_module "$path"
done
cp "$busybox_bin" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
install -m 0755 "$here/initramfs-init" "$ird/init"
# A console node lets the kernel give /init its stdio before devtmpfs is up.
mknod -m 0600 "$ird/dev/console" c 5 1 2>/dev/null || true
(cd "$ird" && find . | sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/initrd.img"

# --- root filesystem ----------------------------------------------------------
r=$tmp/root
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/proc" "$r/sys" "$r/dev" "$r/run" \
  "$r/etc" "$r/root" "$r/home/runner" "$r/var/log" "$r/mnt"
mkdir -m 1777 "$r/tmp" "$r/var/tmp"
cp "$busybox_bin" "$r/bin/busybox"
for applet in $(busybox --list-full); do
  [ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
done
install -m 0755 "$repo/guest/init-shim" "$r/sbin/flint-init"
install -m 0755 "$repo/guest/test-agent" "$r/usr/sbin/flint-test-agent"
rm -f "$r/sbin/init"
ln -s /usr/sbin/flint-test-agent "$r/sbin/init"
printf 'root:x:0:0:root:/root:/bin/sh\nrunner:x:1000:1000:runner:/home/runner:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\nrunner:x:1000:\n' >"$r/etc/group"
printf 'flint-test\n' >"$r/etc/hostname"
chmod -R a+rX,go-w "$r"
# Readable by the jailer's uid 123 / gid 100: the image file and every file in it.
truncate -s 32M "$tmp/rootfs.ext4"
mkfs.ext4 -q -F -L flint-test -E root_owner=0:0 -d "$r" "$tmp/rootfs.ext4"
chmod 0644 "$tmp/rootfs.ext4" "$tmp/initrd.img"

cp "$tmp/k/boot/vmlinuz-$kver" "$tmp/vmlinuz"
chmod 0644 "$tmp/vmlinuz"
# The command line the image expects; the host appends the network part
# (ip=, flint.*). panic=1 + the hypervisor's no-reboot make a dying guest
# end the VM. The keyboard controller (Ctrl-Alt-Del, the host's graceful
# stop) is found through ACPI on QEMU microvm: no i8042.nopnp here, or its
# interrupt is unknown and the probe fails; noaux skips the absent mouse port.
echo "console=ttyS0 reboot=k panic=1 root=/dev/vda ro init=/sbin/flint-init i8042.noaux" >"$tmp/cmdline"

for f in vmlinuz initrd.img rootfs.ext4 cmdline; do mv -f "$tmp/$f" "$out/$f"; done
echo "$stamp" >"$tmp/stamp" && mv -f "$tmp/stamp" "$out/stamp"
echo "test image ready in $out"
