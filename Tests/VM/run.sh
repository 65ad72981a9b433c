#!/usr/bin/env bash
# Tests/VM/run.sh: nvmegate against a real Linux kernel driving QEMU's emulated NVMe controller.
#
# Installs what it needs from Debian's archive (qemu-system-x86, busybox-static, cpio,
# nvme-cli; Debian's cloud kernels are downloaded and unpacked with dpkg-deb, never
# installed), builds nvmegate with the Swift standard library linked statically, packs it with
# busybox, nvme-cli and Tests/VM/guest.sh into an initramfs, and boots it under QEMU (TCG)
# with an NVMe controller, once per kernel:
#   bookworm  Debian 12's 6.1 cloud kernel (before Linux's unprivileged passthrough rules)
#   trixie    Debian 13's 6.12 cloud kernel (with them; the decision cases run on it)
# guest.sh prints one line per check on the serial console; this script collects them, adds
# its own checks of the disk image, prints the QEMU-versus-emulator status table, holds
# nvmegate's kernel policy to the 6.12 kernel's own decisions on some 38,000 passthrough cases
# (Tests/VM/kernel-cases.c), prints the gate's overhead on the real ioctl path under each kernel
# (`nvmegate bench` against the same commands sent directly by Tests/VM/direct-bench.c), and
# ends with "N passed, M failed" (exit status 1 when anything failed).
#
# Usage: bash Tests/VM/run.sh      (as root, or with sudo for apt-get; about two minutes warm)
# Knobs: NVMEGATE_VM_WORK=DIR      cache and scratch (default .build/vm, which git ignores)
#        NVMEGATE_VM_KERNELS="bookworm trixie"   which kernels to boot
#        NVMEGATE_VM_CONFIG=release|debug        how nvmegate is built (default release)
#        NVMEGATE_VM_TIMEOUT=300                 seconds one boot may take
#        NVMEGATE_VM_STEPS="fetch_kernels ..."   run only these steps (for working on the script)
#
# The work is a list of steps (STEPS below) run in order; a later step is one more function and
# one more entry (its guest side one more section of guest.sh), as the benchmark inside the VM
# is (build_direct_bench, bench_report; guest.sh section 7).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${NVMEGATE_VM_WORK:-$ROOT/.build/vm}
KERNELS=${NVMEGATE_VM_KERNELS:-bookworm trixie}
CONFIG=${NVMEGATE_VM_CONFIG:-release}
TIMEOUT=${NVMEGATE_VM_TIMEOUT:-300}
START=$SECONDS
mkdir -p "$W"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

log() { printf '[vm %4ds] %s\n' $((SECONDS - START)) "$*" >&2; }
die() { log "error: $*"; echo "0 passed, 1 failed"; exit 1; }

PASSED=0
FAILED=0
RESULTS=()
pass() { PASSED=$((PASSED + 1)); RESULTS+=("PASS $*"); }
fail() { FAILED=$((FAILED + 1)); RESULTS+=("FAIL $*"); }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

###############################################################################
install_packages() {
  bash "$ROOT/.ci/install-deps"
  local need=() p
  for p in qemu-system-x86 busybox-static cpio nvme-cli; do installed "$p" || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

###############################################################################
# Kernels: the cloud kernel package of a Debian release, downloaded with apt-get (through a
# private apt state for a release the machine does not use, so its apt setup is untouched)
# and only /boot unpacked: the cloud kernels have NVMe built in, no modules are needed.
fetch_kernel() {  # RELEASE
  local release=$1 dir="$W/kernel-$1"
  if ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then return; fi
  local apt_opts=()
  local system_release
  system_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$release" != "$system_release" ]; then
    # The same mirror the machine's own Debian sources use, for another release.
    local mirror
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 !~ /-/ {print $1; exit}')
    [ -n "$mirror" ] || die "no Debian mirror in this machine's apt sources"
    mkdir -p "$W/apt-$release/lists/partial" "$W/apt-$release/cache/archives/partial"
    echo "deb $mirror $release main" > "$W/apt-$release/sources.list"
    apt_opts=(-o Dir::Etc::SourceList="$W/apt-$release/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$W/apt-$release/lists" -o Dir::Cache="$W/apt-$release/cache")
    log "apt-get update ($release, private apt state in $W/apt-$release)"
    apt-get "${apt_opts[@]}" update -qq
  elif ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    $SUDO apt-get update -qq
  fi
  local pkg
  pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 for $release"
  log "downloading $pkg ($release)"
  mkdir -p "$W/debs"
  (cd "$W/debs" && apt-get "${apt_opts[@]}" download "$pkg" 2>&1 | grep -v "unsandboxed" >&2 || true)
  local deb
  deb=$(ls "$W/debs/${pkg}"_*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || die "apt-get download $pkg gave no .deb"
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards './boot/vmlinuz-*' './boot/config-*'
  rm -f "$deb"   # only /boot is kept
  grep -q '^CONFIG_BLK_DEV_NVME=y' "$dir"/boot/config-* || die "$pkg: the NVMe driver is not built in"
}
fetch_kernels() { local k; for k in $KERNELS; do fetch_kernel "$k"; done; }

###############################################################################
build_nvmegate() {
  log "swift build -c $CONFIG --product nvmegate --static-swift-stdlib"
  if ! (cd "$ROOT" && swift build -c "$CONFIG" --product nvmegate --static-swift-stdlib) > "$W/build.log" 2>&1; then
    tail -n 40 "$W/build.log" >&2
    die "swift build failed (log: $W/build.log)"
  fi
  NVMEGATE=$(cd "$ROOT" && swift build -c "$CONFIG" --show-bin-path)/nvmegate
  [ -x "$NVMEGATE" ] || die "the build made no $NVMEGATE"
}

###############################################################################
# The initramfs: busybox, nvme-cli and nvmegate with the shared libraries ldd names,
# guest.sh, a user with uid 1000 for the unprivileged checks, and /init.
copy_bin() {  # HOST-PATH ROOTFS-PATH
  install -D -m 0755 "$1" "$RFS$2"
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
  while read -r lib; do
    [ -e "$RFS$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$RFS$lib"
  done
}
build_initramfs() {
  RFS=$W/rootfs
  INITRD=$W/initramfs.cpio.gz
  log "packing $INITRD"
  rm -rf "$RFS"
  mkdir -p "$RFS"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,home,etc/nvme}
  install -m 0755 /bin/busybox "$RFS/bin/busybox"
  local app
  for app in $(/bin/busybox --list); do [ -e "$RFS/bin/$app" ] || ln -s busybox "$RFS/bin/$app"; done
  copy_bin "$(command -v nvme)" /usr/sbin/nvme
  copy_bin "$NVMEGATE" /usr/bin/nvmegate
  strip --strip-all "$RFS/usr/bin/nvmegate"
  install -m 0755 "$ROOT/Tests/VM/guest.sh" "$RFS/guest.sh"
  install -m 0755 "$KERNEL_CASES" "$RFS/usr/bin/kernel-cases"
  install -m 0644 "$W/kernel-cases.txt" "$RFS/kernel-cases.txt"
  install -m 0755 "$DIRECT_BENCH" "$RFS/usr/bin/direct-bench"
  echo "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000beef" > "$RFS/etc/nvme/hostnqn"
  echo "00000000-0000-0000-0000-00000000beef" > "$RFS/etc/nvme/hostid"
  printf 'root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > "$RFS/etc/passwd"
  printf 'root:x:0:\ndisk:x:6:\nuser:x:1000:\n' > "$RFS/etc/group"
  chmod 1777 "$RFS/tmp"
  cat > "$RFS/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "VMTEST BOOT $(uname -r)"
sh /guest.sh 2>&1
echo "VMTEST-SHA roundtrip $(sha256sum /tmp/roundtrip.bin 2>/dev/null | cut -d' ' -f1)"
poweroff -f
INIT
  chmod 0755 "$RFS/init"
  (cd "$RFS" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -6 > "$INITRD"
}

###############################################################################
# The decision cases (Tests/VM/kernel-cases.c): one static program generates them here, issues
# them in the 6.12 guest (guest.sh, section 6) and compares the kernel's outcomes with
# nvmegate's verdicts afterwards (kernel_agreement).
build_kernel_cases() {
  KERNEL_CASES=$W/kernel-cases
  log "gcc -static Tests/VM/kernel-cases.c; generating the decision cases"
  gcc -static -O2 -Wall -Wextra -o "$KERNEL_CASES" "$ROOT/Tests/VM/kernel-cases.c" || die "cannot build Tests/VM/kernel-cases.c"
  "$KERNEL_CASES" generate > "$W/kernel-cases.txt" || die "kernel-cases generate failed"
}

###############################################################################
# The reference for the benchmark inside the VM (guest.sh, section 7): direct-bench sends the
# commands `nvmegate bench` sends through the gate straight to the kernel.
build_direct_bench() {
  DIRECT_BENCH=$W/direct-bench
  log "gcc -static Tests/VM/direct-bench.c"
  gcc -static -O2 -Wall -Wextra -o "$DIRECT_BENCH" "$ROOT/Tests/VM/direct-bench.c" || die "cannot build Tests/VM/direct-bench.c"
}

###############################################################################
# The namespace's backing file, fresh for each boot: markers at LBA 0, 5 and 6, and an MBR
# with one partition (LBA 2048 to the end) so that the guest has /dev/nvme0n1p1. The
# partition entry and the signature sit after LBA 0's marker (bytes 446 to 511).
make_image() {  # PATH
  rm -f "$1"
  truncate -s 64M "$1"
  printf 'HELLO-FROM-LBA0-qemu-nvme-peer' | dd of="$1" conv=notrunc status=none
  # Entry 1: not bootable, CHS unused, type 83h (Linux), start 2048, 129024 blocks; then 55AAh.
  printf '\000\000\000\000\203\000\000\000\000\010\000\000\000\370\001\000' |
    dd of="$1" bs=1 seek=446 conv=notrunc status=none
  printf '\125\252' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
  printf 'LBA5-MARKER-must-survive' | dd of="$1" bs=512 seek=5 conv=notrunc status=none
  printf 'LBA6-MARKER-must-survive' | dd of="$1" bs=512 seek=6 conv=notrunc status=none
}

QPID=""
trap '[ -n "$QPID" ] && kill "$QPID" 2>/dev/null; true' EXIT

boot() {  # RELEASE
  local release=$1 kernel image console
  kernel=$(ls "$W/kernel-$release"/boot/vmlinuz-* | head -n 1)
  image=$W/nvm-$release.img
  console=$W/console-$release.log
  local attempt crashed t0=$SECONDS
  rm -f "$console".attempt*
  # -cpu max: with QEMU's default qemu64 CPU, 2 boots in 18 of the 6.12 kernel died early under
  # TCG (a double fault in the allocator); with max, none in 22, but 3 runs in 18 still crashed
  # later in the same allocator, in the middle of the checks. A guest whose kernel crashed
  # (a panic, an oops, a double fault) before it finished, or that died before its userspace
  # started, is booted again on a fresh disk image, at most twice, and the output says so with
  # the crash's first lines; only the last attempt's console is read. A guest that ran to the
  # end, or failed a check without its kernel crashing, is never booted again.
  for attempt in 1 2 3; do
    make_image "$image"
    log "booting $(basename "$kernel") ($release), attempt $attempt, console -> $console"
    # The namespace as its own nvme-ns device: QEMU 7.2's implicit one (nvme,drive=) leaves
    # MSSRL, MCL and MSRC at 0, and every Copy then fails inside QEMU with Internal Error.
    qemu-system-x86_64 -accel tcg -cpu max -m 1024 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$INITRD" -append 'console=ttyS0 quiet panic=-1' \
        -drive file="$image",if=none,id=nvm,format=raw \
        -device nvme,id=nvme0,serial=deadbeef -device nvme-ns,drive=nvm,bus=nvme0,nsid=1 \
      < /dev/null > "$console.raw" 2>&1 &
    QPID=$!
    local deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$QPID" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then log "timeout after ${TIMEOUT}s: killing QEMU"; kill "$QPID"; break; fi
      sleep 0.5
    done
    wait "$QPID" || true
    QPID=""
    tr -d '\r' < "$console.raw" > "$console" && rm -f "$console.raw"
    crashed=""
    grep -a -q -E "Kernel panic|Oops|double fault|general protection fault|BUG: " "$console" && crashed=1
    if grep -q "VMTEST DONE" "$console" || { grep -q "VMTEST BOOT" "$console" && [ -z "$crashed" ]; }; then break; fi
    if [ -n "$crashed" ]; then log "$release: the guest's kernel crashed before the checks finished:"
    else log "$release: the guest died before /init ran; its last console lines:"; fi
    grep -a -m 3 -E "PANIC|Oops|Kernel panic|RIP:" "$console" | sed 's/^/    /' >&2 || true
    cp "$console" "$console.attempt$attempt"
  done
  if [ "$attempt" -gt 1 ]; then
    RESULTS+=("NOTE $release ran on attempt $attempt: the guest kernel crashed or died before (earlier consoles: $console.attempt*)")
  fi
  log "$release: guest ran $((SECONDS - t0)) s"

  # The firmware's screen control codes may share a line with the first marker: match anywhere.
  tag=$(sed -n 's/.*VMTEST BOOT \([0-9]*\.[0-9]*\).*/\1/p' "$console" | head -n 1)
  tag=${tag:-$release}
  local line
  while IFS= read -r line; do
    case "$line" in
      *"VMTEST PASS "*) pass "${line#*VMTEST PASS }" ;;
      *"VMTEST FAIL "*) fail "${line#*VMTEST FAIL }" ;;
      *"VMTEST-DETAIL "*) RESULTS+=("     ${line#*VMTEST-DETAIL }") ;;
    esac
  done < "$console"
  if grep -q "VMTEST DONE $tag" "$console" && grep -q "reboot: Power down" "$console"; then
    pass "$tag the guest ran every check and powered off"
  else fail "$tag the guest did not finish (see $console)"; tail -n 30 "$console" >&2; fi

  # What the guest did, seen from the host: the round trip's data is in the backing file at
  # LBA 100, and the blocks the unprivileged caller failed to write still hold their markers.
  local want got
  want=$(sed -n 's/^VMTEST-SHA roundtrip //p' "$console" | head -n 1)
  got=$(dd if="$image" bs=512 skip=100 count=8 status=none | sha256sum | cut -d' ' -f1)
  if [ -n "$want" ] && [ "$want" = "$got" ]; then pass "$tag the backing file holds the round trip's data at LBA 100"
  else fail "$tag the backing file holds the round trip's data at LBA 100 (guest ${want:-none}, file $got)"; fi
  local n
  for n in 5 6; do
    if dd if="$image" bs=512 skip=$n count=1 status=none | grep -q "LBA$n-MARKER-must-survive"; then
      pass "$tag the backing file still holds LBA $n's marker"
    else fail "$tag the backing file lost LBA $n's marker: a refused write happened"; fi
  done
  grep 'VMCMP ' "$console" | sed 's/.*VMCMP //' > "$W/compare-$release.txt" || true
}
boot_kernels() { local k; for k in $KERNELS; do boot "$k"; done; }

###############################################################################
# The same commands sent to QEMU 7.2's controller (through Linux) and to nvmegate's emulated
# controller, status codes side by side. Every difference must be explained here; an
# explanation whose difference is gone fails too, so this list stays true.
declare -A EXPLAINED=(
  ["Identify Namespace, NSID FFFFFFFFh"]="NSID FFFFFFFFh asks a controller that supports Namespace Management for the capabilities common to all namespaces; the emulator supports it, QEMU 7.2 does not (Invalid Namespace or Format)"
  ["Get Log Page SMART / Health, NSID 1"]="a per-namespace SMART log needs LPA bit 0: QEMU sets it, the emulator keeps controller-wide counters only (LPA bit 0 clear) and answers Invalid Field, as the specification asks"
  ["Get Log Page, unsupported LID 70h"]="the specification's status for an unsupported log page is Invalid Log Page (0109h), the emulator's; QEMU 7.2 answers Invalid Field"
  ["Set Features Temperature Threshold, Save bit set"]="the emulator keeps saved feature values (ONCS Save and Select); QEMU 7.2 saves none: Feature Identifier Not Saveable"
  ["Set Features Arbitration"]="QEMU 7.2 makes Arbitration read-only (Feature Not Changeable); the specification lets it change, and the emulator does"
  ["Delete I/O Submission Queue, QID FFFFh"]="queues belong to the host driver (Linux made every one): the emulator has none to manage and no queue command (its effects log says so); QEMU checks the QID: Invalid Queue Identifier"
  ["Keep Alive (18h)"]="QEMU 7.2 does not implement Keep Alive (optional over PCIe); the emulator does"
  ["Device Self-test (14h), short"]="QEMU 7.2 does not implement Device Self-test; the emulator does"
  ["Namespace Management (0Dh), reserved SEL Fh"]="QEMU 7.2 does not implement Namespace Management (Invalid Opcode, though OACS bit 3 is set); the emulator does and refuses the reserved SEL with Invalid Field"
  ["Compare LBA 200, different data"]="QEMU 7.2 leaves DNR clear on Compare Failure (0285h); the emulator sets it (4285h): the same compare of unchanged data fails again, which is what DNR says"
  ["Write Uncorrectable LBA 202"]="QEMU 7.2 does not implement Write Uncorrectable (ONCS bit 1 clear); the emulator does"
  ["Reservation Report (0Eh)"]="QEMU 7.2 has no reservations (ONCS bit 5 clear); the emulator implements them"
)

compare_report() {
  local first="" k file
  for k in $KERNELS; do
    file=$W/compare-$k.txt
    [ -s "$file" ] || { fail "status comparison: no rows from the $k guest"; continue; }
    if [ -z "$first" ]; then first=$file; continue; fi
    # Linux passes statuses through untouched: QEMU's column must not depend on the kernel.
    if diff <(cut -d'|' -f2,3 "$first") <(cut -d'|' -f2,3 "$file") > "$W/compare-kernels.diff"; then
      pass "QEMU's statuses are the same under every kernel"
    else fail "QEMU's statuses differ between kernels (see $W/compare-kernels.diff)"; fi
  done
  [ -n "$first" ] || return
  echo
  echo "QEMU 7.2 NVMe controller (through Linux) versus nvmegate's emulated controller:"
  printf '  %-58s %-12s %-12s %s\n' "command" "QEMU" "emulated" ""
  local name qemu emu note same=0 explained=0
  while IFS='|' read -r _ name qemu emu; do
    note=""
    if [ "$qemu" = "$emu" ]; then
      same=$((same + 1))
      if [ -n "${EXPLAINED[$name]:-}" ]; then fail "status comparison: \"$name\" no longer differs; remove its explanation"; note="(explained, but equal)"; fi
    elif [ -n "${EXPLAINED[$name]:-}" ]; then
      explained=$((explained + 1)); note="differs: ${EXPLAINED[$name]}"
    else
      fail "status comparison: \"$name\": QEMU $qemu, emulated $emu, unexplained"; note="DIFFERS, unexplained"
    fi
    printf '  %-58s %-12s %-12s %s\n' "$name" "$qemu" "$emu" "$note"
  done < "$first"
  echo "  $same equal, $explained explained differences"
  pass "status comparison table complete ($same equal, $explained explained)"
}

###############################################################################
# Linux 6.12's own decisions against nvmegate's kernel policy: the guest issued every case in
# kernel-cases.txt to the real kernel, as root, as uid 0 without CAP_SYS_ADMIN and as uid 1000,
# and printed the outcomes and the controller's effects log on the console; nvmegate's `policy check` decides the same cases
# with Policies/kernel.toml and that log. Every difference must be the documented one.
kernel_agreement() {
  [[ " $KERNELS " == *" trixie "* ]] || return 0
  local console=$W/console-trixie.log effects=$W/effects-trixie.bin out=$W/kernel-agreement.txt
  [ -n "${NVMEGATE:-}" ] && [ -n "${KERNEL_CASES:-}" ] || die "kernel_agreement needs the build_nvmegate and build_kernel_cases steps"
  sed -n 's/.*VMKERNEL-EFFECTS //p' "$console" | base64 -d > "$effects" 2>/dev/null || true
  if [ "$(stat -c %s "$effects")" != 4096 ]; then
    fail "6.12 decision cases: no 4096-byte effects log on the console (see $console)"
    grep -a "kernel-cases:" "$console" | sed 's/^/    /' >&2 || true
    return
  fi
  "$KERNEL_CASES" json < "$W/kernel-cases.txt" > "$W/kernel-cases.jsonl" || { fail "6.12 decision cases: kernel-cases json failed"; return; }
  "$NVMEGATE" policy check --policy "$ROOT/Policies/kernel.toml" --effects-log "$effects" --jsonl \
    < "$W/kernel-cases.jsonl" > "$W/kernel-verdicts.jsonl" || { fail "6.12 decision cases: nvmegate policy check failed"; return; }
  # The built-in policy (no --policy) is the same rules: it must decide every case the same way.
  "$NVMEGATE" policy check --effects-log "$effects" --jsonl < "$W/kernel-cases.jsonl" > "$W/kernel-verdicts-builtin.jsonl" || true
  if cmp -s "$W/kernel-verdicts.jsonl" "$W/kernel-verdicts-builtin.jsonl"; then
    pass "6.12 decision cases: the built-in kernel policy decides every case as Policies/kernel.toml"
  else
    fail "6.12 decision cases: the built-in kernel policy and Policies/kernel.toml decide differently (diff $W/kernel-verdicts.jsonl $W/kernel-verdicts-builtin.jsonl)"
  fi
  echo
  echo "Linux 6.12 versus nvmegate's kernel policy, case by case (Tests/VM/kernel-cases.c):"
  local rc=0
  "$KERNEL_CASES" compare "$W/kernel-cases.txt" "$console" "$W/kernel-verdicts.jsonl" > "$out" 2>&1 || rc=$?
  sed 's/^/  /' "$out"
  if [ $rc -ne 0 ]; then grep -a "kernel-cases:" "$console" | sed 's/^/  guest: /' || true; fi
  log "trixie: the decision cases took $(sed -n 's/.*VMKERNEL-SECTION //p' "$console" | head -n 1) of the guest's time"
  local figure
  figure=$(grep -m 1 '^agrees with Linux 6.12' "$out" || true)
  if [ $rc -eq 0 ]; then pass "6.12 nvmegate's kernel policy $figure"
  else fail "6.12 nvmegate's kernel policy: ${figure:-no comparison} (see above)"; fi
}

###############################################################################
# The gate's overhead on the real ioctl path (guest.sh, section 7). Per kernel and pattern, the
# ratio is the time per I/O through the gate over direct-bench's (the same commands as direct
# ioctls) in the median pair, a run's time per I/O being its median latency: the host's other
# load stretches parts of runs, which moves a median less than a mean, and a pair's two runs,
# one after the other, see much the same load. Beside it the range over the pairs and each
# side's IOPS over all its runs. A broken run fails: an error, a run missing, commands refused
# or failed, fewer completed than sent, the two sides addressing different blocks. One
# exception: a run whose only failures are ENOMEM from the kernel (6.12's allocator under TCG
# fails one write in a few thousand now and then, direct ioctls included) drops its pair with
# a warning, as long as 5 pairs remain. The ratio does not fail (TCG's timing is noisy), but
# above 1.05x it warns.
bench_report() {
  local k console section line
  echo
  echo "nvmegate bench through the gate against the same loop of direct ioctls (Tests/VM/direct-bench.c):"
  for k in $KERNELS; do
    console=$W/console-$k.log
    section=$(sed -n 's/.*VMBENCH-SECTION //p' "$console" | head -n 1)
    [ -n "$section" ] && log "$k: the benchmark took $section of the guest's time"
    while IFS= read -r line; do
      case "$line" in
        "PASS "*) pass "${line#PASS }"; echo "  ${line#PASS }" ;;
        "FAIL "*) fail "${line#FAIL }"; echo "  ${line#FAIL }" ;;
        "WARN "*) RESULTS+=("$line"); echo "  $line" ;;
        *) echo "  $line" ;;
      esac
    done < <(sed -n 's/.*VMBENCH /VMBENCH /p' "$console" | awk -v release="$k" '
      function group(n,   s, out) {   # 12345.6 -> "12,346"
        s = sprintf("%.0f", n)
        for (out = ""; length(s) > 3; s = substr(s, 1, length(s) - 3)) out = "," substr(s, length(s) - 2) out
        return s out
      }
      function sort(a, n,   i, j, x) {   # a[1..n] by the number each starts with, in place
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
      }
      {
        kernel = $2; run = $3 SUBSEP $4 SUBSEP $5
        if ($5 > pairs[$3]) pairs[$3] = $5
        if ($6 == "error:") { line = $0; sub(/.*error: /, "", line); error[run] = line; next }
        for (i = 6; i <= NF; i++) { split($i, kv, "="); value[run, kv[1]] = kv[2] }
        got[run] = 1
      }
      END {
        if (kernel == "") { print "FAIL " release ": no benchmark lines on the console (guest.sh, section 7)"; exit }
        split("randread randwrite", patterns, " ")
        for (p = 1; p <= 2; p++) {
          rw = patterns[p]; n = pairs[rw] + 0; broken = n ? "" : "; no runs"; kept = 0; dropped = ""
          te["gate"] = te["direct"] = tc["gate"] = tc["direct"] = 0
          delete byratio
          for (pair = 1; pair <= n; pair++) {
            transient = 0
            for (t = 0; t < 2; t++) {
              tool = t ? "direct" : "gate"; run = rw SUBSEP tool SUBSEP pair
              f = (run, "failures") in value ? value[run, "failures"] : ""
              if (f != "" && value[run, "errors"] == 0 && value[run, "completed"] + value[run, "refused"] == value[run, "ios"] &&
                  f ~ /^errno12:[0-9]+$/) {
                transient = 1; dropped = dropped sprintf("; %s run %d (%s)", tool, pair, f)
              }
            }
            if (transient) continue
            for (t = 0; t < 2; t++) {
              tool = t ? "direct" : "gate"; run = rw SUBSEP tool SUBSEP pair
              if (run in error) { broken = broken "; " tool " run " pair ": " error[run]; continue }
              if (!(run in got)) { broken = broken "; " tool " run " pair ": no line"; continue }
              ios = value[run, "ios"]; done = value[run, "completed"]
              if (value[run, "rw"] != rw || ios + 0 == 0 || done != ios || value[run, "refused"] != 0 || value[run, "errors"] != 0)
                broken = broken sprintf("; %s run %d: %s %d of %d completed, %d refused, %d NVMe errors%s", tool, pair,
                                        value[run, "rw"], done, ios, value[run, "refused"], value[run, "errors"],
                                        (run, "failures") in value ? " (" value[run, "failures"] ")" : "")
              te[tool] += value[run, "elapsed_ns"]; tc[tool] += done
            }
            g = rw SUBSEP "gate" SUBSEP pair; d = rw SUBSEP "direct" SUBSEP pair
            if (!(g in got) || !(d in got)) continue
            if (value[g, "first_lba"] != value[d, "first_lba"] || value[g, "region_bytes"] != value[d, "region_bytes"] ||
                value[g, "bs"] != value[d, "bs"] || value[g, "ios"] != value[d, "ios"])
              broken = broken sprintf("; run %d: the gate ran %d commands of %d bytes on %d bytes from LBA %d, direct-bench %d of %d on %d from %d",
                                      pair, value[g, "ios"], value[g, "bs"], value[g, "region_bytes"], value[g, "first_lba"],
                                      value[d, "ios"], value[d, "bs"], value[d, "region_bytes"], value[d, "first_lba"])
            if (value[g, "completed"] + 0 == 0 || value[d, "completed"] + 0 == 0) continue
            ratio = value[g, "lat_p50_ns"] / value[d, "lat_p50_ns"]
            byratio[++kept] = ratio " " pair   # to sort the pairs by ratio
            printf "%s %s pair %d: gate %s IOPS (latency mean %.1f µs, median %.1f µs), direct %s IOPS (%.1f µs, %.1f µs): median %.3f×, mean time per I/O %.3f×\n",
                   kernel, rw, pair, group(value[g, "iops"]), value[g, "lat_mean_ns"] / 1000, value[g, "lat_p50_ns"] / 1000,
                   group(value[d, "iops"]), value[d, "lat_mean_ns"] / 1000, value[d, "lat_p50_ns"] / 1000, ratio,
                   value[d, "iops"] / value[g, "iops"]
          }
          if (dropped != "") print "WARN " kernel " benchmark " rw ": pairs dropped for ENOMEM from the kernel: " substr(dropped, 3)
          if (broken == "" && kept < 5) broken = sprintf("; %d pairs left of %d", kept, n)
          if (broken != "") { print "FAIL " kernel " benchmark " rw ": " substr(broken, 3); continue }
          bs = value[rw, "gate", 1, "bs"]; bs = bs % 1024 ? bs : (bs / 1024) "k"
          n = kept; sort(byratio, n); split(byratio[int((n + 1) / 2)], m, " ")
          r = m[1]; g = rw SUBSEP "gate" SUBSEP m[2]; d = rw SUBSEP "direct" SUBSEP m[2]
          figure = sprintf("%s %s QD1 %.2f× direct (latency %.1f vs %.1f µs, the median of %d pairs, which range from %.2f× to %.2f×; %s vs %s IOPS over all runs)",
                           rw, bs, r, value[g, "lat_p50_ns"] / 1000, value[d, "lat_p50_ns"] / 1000, n, byratio[1], byratio[n],
                           group(tc["gate"] * 1e9 / te["gate"]), group(tc["direct"] * 1e9 / te["direct"]))
          print "PASS gate overhead on Linux " kernel " (QEMU NVMe, TCG): " figure
          if (sprintf("%.2f", r) + 0 > 1.05) print "WARN " kernel " gate overhead above 1.05×: " figure
        }
      }')
  done
}

report() {
  compare_report
  echo
  local r
  for r in "${RESULTS[@]}"; do echo "$r"; done
  echo
  echo "VM test took $((SECONDS - START)) s (kernels: $KERNELS; consoles in $W)"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

STEPS=(install_packages fetch_kernels build_nvmegate build_kernel_cases build_direct_bench build_initramfs boot_kernels
       kernel_agreement bench_report report)
for step in "${STEPS[@]}"; do
  if [ -n "${NVMEGATE_VM_STEPS:-}" ] && [[ " $NVMEGATE_VM_STEPS " != *" $step "* ]]; then continue; fi
  "$step"
done
