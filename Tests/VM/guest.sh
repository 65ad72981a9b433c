#!/bin/sh
# Tests/VM/guest.sh: the checks Tests/VM/run.sh runs inside the VM, as PID 1's child (root),
# against QEMU's NVMe controller through the real Linux NVMe driver. Busybox sh.
#
# Every result is one line on the serial console, which run.sh collects:
#   VMTEST PASS <kernel> <check>
#   VMTEST FAIL <kernel> <check>: <why>        (VMTEST-DETAIL lines may follow)
#   VMCMP <kernel>|<command>|<QEMU status>|<emulator status>
#   VMTEST DONE <kernel>
# The disk image run.sh made has markers in LBA 0, 5 and 6 (see run.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
K=$(uname -r | cut -d. -f1,2)
G=/usr/bin/nvmegate
T=/tmp/t
mkdir -p $T
CTRL=/dev/nvme0 NS=/dev/nvme0n1 NG=/dev/ng0n1

pass() { echo "VMTEST PASS $K $1"; }
fail() {
  echo "VMTEST FAIL $K $1: $2"
  [ -n "${3:-}" ] && [ -f "$3" ] && head -n 20 "$3" | sed 's/^/VMTEST-DETAIL /'
  return 0
}
# same NAME FILE1 FILE2: the two outputs are byte for byte equal (and not empty).
same() {
  if [ ! -s "$2" ]; then fail "$1" "$2 is empty" "$2.err"
  elif cmp -s "$2" "$3"; then pass "$1"
  else diff "$2" "$3" > $T/diff 2>&1; fail "$1" "outputs differ (diff nvme-cli nvmegate below)" $T/diff; fi
}
# has NAME FILE TEXT: FILE contains TEXT.
has() { if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1" "expected \"$3\", got: $(head -c 300 "$2" | tr '\n' ' ')"; fi; }
# as_user CMD...: run CMD as uid 1000, no capabilities.
as_user() { su -s /bin/sh user -c "PATH=$PATH; $*"; }

i=0
while [ ! -e $NG ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
[ -e $NG ] || { fail "devices" "no $NG after 5 s"; echo "VMTEST DONE $K"; exit 0; }

###############################################################################
# 1. What nvmegate reads through the gate equals what nvme-cli reads from the device.
###############################################################################
nvme id-ctrl $CTRL > $T/a 2>&1; $G id-ctrl $CTRL > $T/b 2> $T/b.err
same "id-ctrl /dev/nvme0 equals nvme-cli's" $T/a $T/b
nvme id-ctrl $CTRL -o json > $T/a 2>&1; $G id-ctrl $CTRL -o json > $T/b 2> $T/b.err
same "id-ctrl /dev/nvme0 -o json equals nvme-cli's" $T/a $T/b
nvme id-ctrl $NG > $T/a 2>&1; $G id-ctrl $NG > $T/b 2> $T/b.err
same "id-ctrl through the namespace node /dev/ng0n1 (admin on a namespace node) equals nvme-cli's" $T/a $T/b
nvme id-ns $NS > $T/a 2>&1; $G id-ns $NS > $T/b 2> $T/b.err
same "id-ns /dev/nvme0n1 equals nvme-cli's" $T/a $T/b
nvme id-ns $NG -o json > $T/a 2>&1; $G id-ns $NG -o json > $T/b 2> $T/b.err
same "id-ns /dev/ng0n1 -o json equals nvme-cli's" $T/a $T/b
nvme id-ns $CTRL -n 1 -H > $T/a 2>&1; $G id-ns $CTRL -n 1 -H > $T/b 2> $T/b.err
same "id-ns /dev/nvme0 -n 1 -H equals nvme-cli's" $T/a $T/b
nvme effects-log $CTRL --csi=0 -o json > $T/a 2>&1; $G effects-log $CTRL --csi=0 -o json > $T/b 2> $T/b.err
same "effects-log --csi=0 -o json equals nvme-cli's" $T/a $T/b
nvme effects-log $CTRL --csi=0 -H > $T/a 2>&1; $G effects-log $CTRL -H > $T/b 2> $T/b.err
same "effects-log -H (nvmegate without --csi) equals nvme-cli's --csi=0" $T/a $T/b
nvme get-log $CTRL --log-id=5 --log-len=4096 -b > $T/effects.bin 2>/dev/null
$G get-log $CTRL --log-id=5 --log-len=4096 -b > $T/b 2> $T/b.err
same "the raw effects log page equals nvme-cli's" $T/effects.bin $T/b
nvme get-feature $CTRL -f 7 > $T/a 2>&1; $G get-feature $CTRL -f 7 > $T/b 2> $T/b.err
same "get-feature Number of Queues (result dword) equals nvme-cli's" $T/a $T/b
nvme smart-log $CTRL -o json > $T/a 2>&1; $G smart-log $CTRL -o json > $T/b 2> $T/b.err
# Temperature and power-on time may move between the two reads; the keys and the rest stay.
sed 's/"temperature".*//; s/"power_on_hours".*//; s/"host_read_commands".*//; s/"host_write_commands".*//' $T/a > $T/a2
sed 's/"temperature".*//; s/"power_on_hours".*//; s/"host_read_commands".*//; s/"host_write_commands".*//' $T/b > $T/b2
same "smart-log -o json equals nvme-cli's (counters that move left out)" $T/a2 $T/b2

###############################################################################
# 2. Statuses and errnos come back as the kernel returned them.
###############################################################################
nvme admin-passthru $CTRL --opcode=0xc5 > $T/a 2>&1; ra=$?
$G admin-passthru $CTRL --opcode=0xc5 > $T/b 2>&1; rb=$?
if [ $ra = 1 ] && [ $rb = 1 ]; then same "unsupported admin opcode: status 0x4001 as nvme-cli prints it" $T/a $T/b
else fail "unsupported admin opcode: status 0x4001 as nvme-cli prints it" "exit codes nvme-cli $ra, nvmegate $rb" $T/b; fi
nvme io-passthru $NG -o 2 -n 1 -l 512 -4 0xfffffff0 -5 0xff -r > $T/a 2>&1
$G io-passthru $NG -o 2 -n 1 -l 512 -4 0xfffffff0 -5 0xff -r > $T/b 2>&1
same "Read beyond the namespace: LBA Out of Range (0x4080) as nvme-cli prints it" $T/a $T/b
$G io-passthru $NG -o 2 -n 2 -l 512 -r > $T/b 2>&1; rb=$?
if [ $rb = 1 ]; then has "Read naming another namespace on /dev/ng0n1: EINVAL" $T/b "Invalid argument"
else fail "Read naming another namespace on /dev/ng0n1: EINVAL" "exit $rb"; fi

###############################################################################
# 3. A write/read round trip on the namespace, checked against nvme-cli and the image.
###############################################################################
dd if=/dev/urandom of=$T/pattern bs=4096 count=1 2>/dev/null
if $G write $NS -s 100 -c 7 -z 4096 -d $T/pattern > $T/w 2>&1; then pass "write 8 blocks at LBA 100 through /dev/nvme0n1"
else fail "write 8 blocks at LBA 100 through /dev/nvme0n1" "$(cat $T/w)"; fi
$G read $NG -s 100 -c 7 -z 4096 -d $T/back > $T/r 2>&1
same "read back through /dev/ng0n1 gives the data written" $T/pattern $T/back
nvme read $NS -s 100 -c 7 -z 4096 -d $T/cli > /dev/null 2>&1
same "nvme-cli reads the same data" $T/pattern $T/cli
$G io-passthru $NG -o 2 -n 1 -l 4096 -4 100 -6 7 -r -b > $T/b 2> $T/b.err
same "io-passthru Read (64-bit passthru to the kernel) gives the data written" $T/pattern $T/b
cp $T/pattern /tmp/roundtrip.bin   # run.sh checks the image holds it at LBA 100

###############################################################################
# 4. Unprivileged (uid 1000, no capabilities) under the kernel policy.
###############################################################################
cp $T/effects.bin /tmp/effects.bin; chmod 644 /tmp/effects.bin
dd if=/dev/zero of=/tmp/zero512 bs=512 count=1 2>/dev/null
dd if=$T/pattern of=/tmp/pattern512 bs=512 count=1 2>/dev/null; chmod 644 /tmp/zero512 /tmp/pattern512
dd if=$NS of=$T/before5 bs=512 skip=5 count=2 2>/dev/null
mkdir -p /home/user && chown user:user /home/user
as_user "grep CapEff /proc/self/status" > $T/caps 2>&1
has "su drops to uid 1000 with no capabilities" $T/caps "CapEff:	0000000000000000"
chmod 600 $CTRL $NS
chmod 666 $NG
as_user "$G id-ctrl $CTRL" > $T/u 2>&1
has "unprivileged open of /dev/nvme0 (0600 root): EACCES naming the path" $T/u "nvmegate: /dev/nvme0: Permission denied"
major=$(uname -r | cut -d. -f1); minor=$(uname -r | cut -d. -f2)
if [ "$major" -lt 6 ] || { [ "$major" = 6 ] && [ "$minor" -lt 2 ]; }; then
  # Linux before 6.2 lets only CAP_SYS_ADMIN send passthrough: the attach's Identify is refused.
  as_user "$G id-ctrl $NG" > $T/u 2>&1
  has "Linux $K refuses unprivileged Identify: the attach says so" $T/u "Identify Controller (Identify 06h, CNS 01h): Permission denied"
  as_user "nvme id-ctrl $NG" > $T/u 2>&1
  has "Linux $K refuses nvme-cli the same" $T/u "Permission denied"
else
  as_user "$G id-ctrl $NG" > $T/u 2>&1
  has "unprivileged attach without --effects-log: Get Log Page refused, says how to proceed" $T/u "--effects-log effects.bin"
  E="--effects-log /tmp/effects.bin"
  as_user "nvme id-ctrl $NG" > $T/a 2>&1; as_user "$G id-ctrl $NG $E" > $T/b 2>&1
  same "unprivileged id-ctrl through /dev/ng0n1 equals nvme-cli's" $T/a $T/b
  as_user "$G read $NG -s 0 -c 0 -z 512 -d /home/user/lba0 $E" > $T/u 2>&1
  has "unprivileged Read passes (LBA 0 holds the image's marker)" /home/user/lba0 "HELLO-FROM-LBA0"
  as_user "$G io-passthru $NG -o 8 -n 1 -4 5 $E" > $T/u 2>&1
  has "unprivileged Write Zeroes on a read-only handle: refused by the gate" $T/u "Permission denied: Write Zeroes (08h) needs a handle opened for writing"
  as_user "$G smart-log $NG $E" > $T/u 2>&1
  has "unprivileged Get Log Page: refused by the gate" $T/u "Get Log Page (02h) is an admin command the policy does not allow [admin-command-not-allowed]"
  as_user "nvme smart-log $NG" > $T/u 2>&1
  has "unprivileged Get Log Page: Linux refuses nvme-cli too" $T/u "Permission denied"
  chmod 644 $NG   # now this process can open the node only read-only
  as_user "$G write $NG -s 6 -c 0 -z 512 -d /tmp/pattern512 $E" > $T/u 2>&1
  # The gate allows it (its handle is read-write); Linux refuses the read-only descriptor
  # behind it, and its EACCES comes back as is (no reason code: the gate did not refuse).
  if grep -qx "submit-io: Permission denied" $T/u; then pass "unprivileged Write through a read-only open of the node: Linux's EACCES comes back"
  else fail "unprivileged Write through a read-only open of the node: Linux's EACCES comes back" "got: $(tr '\n' ' ' < $T/u)"; fi
  chmod 666 $NG
  dd if=$NS of=$T/after5 bs=512 skip=5 count=2 2>/dev/null
  same "the refused writes never happened (LBA 5 and 6 unchanged)" $T/before5 $T/after5
  has "LBA 5 still holds its marker" $T/after5 "LBA5-MARKER"
fi
chmod 600 $NG

###############################################################################
# 5. The same commands against QEMU's controller (through Linux) and nvmegate's emulated one.
###############################################################################
# status DEVICE KIND ARGS...: 0x0000, the NVMe status nvmegate printed, or the errno text.
status() {
  dev=$1 kind=$2; shift 2
  if [ "$dev" = qemu ]; then
    if [ "$kind" = admin ]; then set -- $CTRL "$@"; else set -- $NG "$@"; fi
  else
    if [ "$kind" = admin ]; then set -- nvme0 --target emulated:/tmp/emu "$@"; else set -- ng0n1 --target emulated:/tmp/emu "$@"; fi
  fi
  $G $kind-passthru "$@" > /dev/null 2> $T/s; rc=$?
  if [ $rc = 0 ]; then echo 0x0000
  elif grep -q "NVMe status" $T/s; then sed -n 's/.*(\(0x[0-9a-f]*\))$/\1/p' $T/s | head -n 1
  else tr '\n' ' ' < $T/s | sed 's/^nvmegate: //; s/ *$//'
  fi
}
cmpcmd() {   # NAME KIND ARGS...
  name=$1; shift
  q=$(status qemu "$@"); e=$(status emulated "$@")
  echo "VMCMP $K|$name|$q|$e"
}
printf '\000\000\000\000\001\000\000\000\054\001\000\000\000\000\000\000' > $T/dsm      # 1 block at LBA 300
printf '\000\000\000\000\000\000\000\000\310\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' > $T/copy   # LBA 200, 1 block
A="admin"; I="io"
cmpcmd "Identify Controller (CNS 01h)" $A -o 6 -4 1 -l 4096 -r
cmpcmd "Identify Namespace 1 (CNS 00h)" $A -o 6 -n 1 -l 4096 -r
cmpcmd "Identify Namespace, NSID 0" $A -o 6 -n 0 -l 4096 -r
cmpcmd "Identify Namespace, inactive NSID 2" $A -o 6 -n 2 -l 4096 -r
cmpcmd "Identify Namespace, NSID FFFFFFFFh" $A -o 6 -n 0xffffffff -l 4096 -r
cmpcmd "Identify Active Namespace ID list (CNS 02h)" $A -o 6 -4 2 -l 4096 -r
cmpcmd "Identify Namespace Identification Descriptors (CNS 03h)" $A -o 6 -n 1 -4 3 -l 4096 -r
cmpcmd "Identify I/O Command Set specific Controller (CNS 06h)" $A -o 6 -4 6 -l 4096 -r
cmpcmd "Identify, reserved CNS 30h" $A -o 6 -4 0x30 -l 4096 -r
cmpcmd "Get Log Page Error Information (01h)" $A -o 2 -4 0x000f0001 -l 64 -r
cmpcmd "Get Log Page SMART / Health (02h)" $A -o 2 -n 0xffffffff -4 0x007f0002 -l 512 -r
cmpcmd "Get Log Page SMART / Health, NSID 1" $A -o 2 -n 1 -4 0x007f0002 -l 512 -r
cmpcmd "Get Log Page Firmware Slot (03h)" $A -o 2 -4 0x007f0003 -l 512 -r
cmpcmd "Get Log Page Commands Supported and Effects (05h)" $A -o 2 -4 0x03ff0005 -l 4096 -r
cmpcmd "Get Log Page, unsupported LID 70h" $A -o 2 -4 0x00000070 -l 4 -r
cmpcmd "Get Log Page, offset not dword aligned" $A -o 2 -4 0x00000002 -6 2 -l 4 -r
cmpcmd "Get Log Page, offset beyond the page" $A -o 2 -4 0x00000002 -6 4096 -l 4 -r
cmpcmd "Get Features Arbitration (01h)" $A -o 0xa -4 1
cmpcmd "Get Features Number of Queues (07h)" $A -o 0xa -4 7
cmpcmd "Get Features Volatile Write Cache (06h)" $A -o 0xa -4 6
cmpcmd "Get Features, reserved FID 00h" $A -o 0xa -4 0
cmpcmd "Get Features, reserved FID 7Eh" $A -o 0xa -4 0x7e
cmpcmd "Set Features Temperature Threshold (04h)" $A -o 9 -4 4 -5 0x157
cmpcmd "Set Features Temperature Threshold, Save bit set" $A -o 9 -4 0x80000004 -5 0x157
cmpcmd "Set Features Number of Queues, after queues exist" $A -o 9 -4 7 -5 0x00010001
cmpcmd "Set Features Arbitration" $A -o 9 -4 1 -5 0
cmpcmd "Abort (08h)" $A -o 8
cmpcmd "Delete I/O Submission Queue, QID FFFFh" $A -o 0 -4 0xffff
cmpcmd "Keep Alive (18h)" $A -o 0x18
cmpcmd "Device Self-test (14h), short" $A -o 0x14 -n 1 -4 1
cmpcmd "Namespace Management (0Dh), reserved SEL Fh" $A -o 0xd -4 0xf
cmpcmd "Format NVM (80h), LBA format 15 (beyond NLBAF)" $A -o 0x80 -n 1 -4 0xf
cmpcmd "Admin opcode 7Eh (reserved)" $A -o 0x7e
cmpcmd "Vendor specific admin opcode C5h" $A -o 0xc5
cmpcmd "Read LBA 0" $I -o 2 -n 1 -l 512 -r
cmpcmd "Read 8 blocks" $I -o 2 -n 1 -l 4096 -6 7 -r
cmpcmd "Read, SLBA beyond the namespace" $I -o 2 -n 1 -l 512 -4 0xfffffff0 -5 0xff -r
cmpcmd "Read, SLBA + NLB wrapping around" $I -o 2 -n 1 -l 4096 -4 0xffffffff -5 0xffffffff -6 7 -r
cmpcmd "Write LBA 200" $I -o 1 -n 1 -l 512 -4 200 -i /tmp/pattern512 -w
cmpcmd "Compare LBA 200, same data" $I -o 5 -n 1 -l 512 -4 200 -i /tmp/pattern512 -w
cmpcmd "Compare LBA 200, different data" $I -o 5 -n 1 -l 512 -4 200 -i /tmp/zero512 -w
cmpcmd "Write Zeroes LBA 201" $I -o 8 -n 1 -4 201
cmpcmd "Write Uncorrectable LBA 202" $I -o 4 -n 1 -4 202
cmpcmd "Verify LBA 0" $I -o 0xc -n 1
cmpcmd "Flush" $I -o 0 -n 1
cmpcmd "Dataset Management, deallocate LBA 300" $I -o 9 -n 1 -5 4 -l 16 -i $T/dsm -w
cmpcmd "Copy LBA 200 to LBA 210 (format 0)" $I -o 0x19 -n 1 -4 210 -l 32 -i $T/copy -w
cmpcmd "Copy, descriptor format 3 (not enabled)" $I -o 0x19 -n 1 -4 210 -6 0x300 -l 40 -i $T/copy -w
cmpcmd "Reservation Report (0Eh)" $I -o 0xe -n 1 -4 1023 -l 4096 -r
cmpcmd "Zone Management Receive (7Ah) on an NVM namespace" $I -o 0x7a -n 1 -l 4096 -r
cmpcmd "I/O opcode 7Eh (reserved)" $I -o 0x7e -n 1
cmpcmd "Vendor specific I/O opcode 81h" $I -o 0x81 -n 1

###############################################################################
# 6. Linux's own decisions (6.2 and later): kernel-cases issues every case run.sh generated
#    (/kernel-cases.txt) to this kernel, as root, as uid 0 without CAP_SYS_ADMIN and as uid
#    1000, on every node opened read-only and read-write, and prints each outcome; run.sh has
#    nvmegate decide the same cases with the controller's effects log, printed here, and
#    compares.
###############################################################################
if [ -x /usr/bin/kernel-cases ] && { [ "$major" -gt 6 ] || { [ "$major" = 6 ] && [ "$minor" -ge 2 ]; }; }; then
  t0=$(cut -d' ' -f1 /proc/uptime)
  base64 $T/effects.bin | sed 's/^/VMKERNEL-EFFECTS /'
  PART=${NS}p1
  [ -b $PART ] || fail "partition node" "no $PART: the disk image has no MBR partition"
  chmod 666 $CTRL $NS $NG $PART
  dmesg -n 1   # the kernel logs each NSID mismatch at KERN_ERR: keep thousands off the console
  kernel-cases run /kernel-cases.txt
  chmod 600 $CTRL $NS $NG $PART
  echo "VMKERNEL-SECTION $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
fi

###############################################################################
# 7. The gate's overhead on the real ioctl path: `nvmegate bench` through the gate against
#    direct-bench (Tests/VM/direct-bench.c), the same NVME_IOCTL_IO64_CMD commands to the same
#    blocks in the same order straight to the kernel; 4 KiB, queue depth 1, one job, as root.
#    Reads, then writes, each in seven pairs of runs whose order alternates (gate first, then
#    direct first, ...) so that drift cancels. The region, 32 MiB to 48 MiB (LBA 65536 to
#    98303), is inside the partition and away from every block another check reads or writes.
#    One line a run, which run.sh reads:
#      VMBENCH <kernel> <rw> <gate|direct> <pair> rw=… ios=… completed=… elapsed_ns=… …
#      VMBENCH <kernel> <rw> <gate|direct> <pair> error: <what it printed>
###############################################################################
BENCH_ARGS="--bs 4k --offset 32m --size 16m --number-ios 2000"
# bench_run RW TOOL PAIR: one run, its figures as direct-bench prints them (for nvmegate, the
# top-level members of its JSON, lat_ns.mean and its 50th percentile as lat_mean_ns and
# lat_p50_ns, and its refusals, errnos and NVMe statuses as failures=REASON:N,errnoE:N,statusSh:N).
bench_run() {
  if [ "$2" = gate ]; then
    $G bench $NG --rw $1 $BENCH_ARGS -o json > $T/bench 2> $T/bench.err &&
      awk '{ split($0, kv, ":"); key = kv[1]; value = kv[2]; gsub(/[ ",]/, "", key); gsub(/[",]/, "", value) }
           /^  "(rw|bs|first_lba|region_bytes|ios|completed|refused|errors|elapsed_ns|iops)":/ ||
           /^    "mean":/ || /^      "50.000000":/ {
             if (key == "mean") key = "lat_mean_ns"
             if (key == "50.000000") key = "lat_p50_ns"
             line = line (line ? " " : "") key "=" value }
           /^  "(refusals|host_errors|nvme_errors)":/ { listing = 1 }
           listing && /^      "/ {
             if (key == "reason") what = value
             else if (key == "errno" && what == "") what = "errno" value
             else if (key == "status") what = sprintf("status%Xh", value)
             else if (key == "count") { failures = failures (failures ? "," : "") what ":" value; what = "" } }
           END { print line (failures ? " failures=" failures : "") }' $T/bench > $T/bench.line
  else
    direct-bench $NG --rw $1 $BENCH_ARGS > $T/bench.line 2> $T/bench.err
  fi
  if [ $? = 0 ]; then echo "VMBENCH $K $1 $2 $3 $(cat $T/bench.line)"
  else echo "VMBENCH $K $1 $2 $3 error: $(tr '\n' ' ' < $T/bench.err | sed 's/ *$//')"; fi
}
if [ -x /usr/bin/direct-bench ]; then
  t0=$(cut -d' ' -f1 /proc/uptime)
  for rw in randread randwrite; do
    for pair in 1 2 3 4 5 6 7; do
      if [ $((pair % 2)) = 0 ]; then bench_run $rw direct $pair; bench_run $rw gate $pair
      else bench_run $rw gate $pair; bench_run $rw direct $pair; fi
    done
  done
  echo "VMBENCH-SECTION $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
fi
echo "VMTEST DONE $K"
