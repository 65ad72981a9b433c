#!/usr/bin/env python3
"""Writes the `wire` fuzz target's seeds into Corpus/wire/: valid frame sequences (WireFormat.md)
in the target's raw mode, so that libFuzzer starts from conversations the broker answers.

An input in raw mode is: one byte (bits 0-1 zero: raw; bits 2-7: the caller, 0 for this process
as the kernel identifies it, N for WireTarget.callers[N - 1]), for a listed caller one byte
choosing its capabilities, one byte of controller flags (bits 0-1 = 3: a u16 NVMe status
follows; bit 2: the completion's dw0 and dw1 follow; bits 4-7 all set: the controller fails
every command with EIO), then the bytes sent, as they are.

Run it from anywhere: python3 Tests/Fuzz/Corpus/make-wire-seeds.py
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "wire")

ADMIN, IO, ADMIN64, IO64 = 0xC0484E41, 0xC0484E43, 0xC0504E47, 0xC0504E48
SUBMIT_IO, ID, RESET, SUBSYS_RESET, RESCAN = 0x40304E42, 0x4E40, 0x4E44, 0x4E45, 0x4E46
DATA, META = 0x7F00DEAD0000, 0x7F00BEEF0000

# WireTarget.callers: Fixture.callers, then uid 6000 in supplementary group 2000.
DB, SCRATCH, AUDITOR, PART, MONITOR, EVERYTHING, NARROW, NOBODY, ROOT_NO_CAPS, BACKUP, GROUPED = range(1, 12)


def frame(type_, tag, body=b"", version=1, length=None):
    return struct.pack("<IHHII", 16 + len(body) if length is None else length, version, type_, tag, 0) + body


class Conversation:
    def __init__(self, caller=0, caps=0, flags=0, extra=b""):
        head = bytes([caller << 2])
        if caller:
            head += bytes([caps])
        self.bytes = head + bytes([flags]) + extra
        self.tag = 0

    def add(self, type_, body=b"", **kw):
        self.tag += 1
        self.bytes += frame(type_, self.tag, body, **kw)
        return self

    def hello(self, low=1, high=1):
        return self.add(1, struct.pack("<HH", low, high))

    def open(self, node, oflags=2):
        name = node.encode()
        return self.add(2, struct.pack("<II", oflags, len(name)) + name)

    def close(self, handle):
        return self.add(3, struct.pack("<i", handle))

    def ioctl(self, handle, request, arg=b"", data=b"", metadata=b""):
        fixed = struct.pack("<iIQIIII", handle, 0, request, len(arg), len(data), len(metadata), 0)
        return self.add(4, fixed + arg + data + metadata)

    def batch(self, handle, queue, entries):
        return self.add(5, struct.pack("<iIII", handle, queue, len(entries), 0) + b"".join(entries))

    def metrics(self):
        return self.add(6)


def passthru(opcode, nsid=0, data_len=0, cdw10=0, cdw11=0, cdw12=0, metadata_len=0, is64=False, addr=None):
    addr = (DATA if data_len else 0) if addr is None else addr
    s = struct.pack("<BBHIII", opcode, 0, 0, nsid, 0, 0)
    s += struct.pack("<QQII", META if metadata_len else 0, addr, metadata_len, data_len)
    s += struct.pack("<6I", cdw10, cdw11, cdw12, 0, 0, 0)
    s += struct.pack("<IIQ", 0, 0, 0xA5A5A5A5A5A5A5A5) if is64 else struct.pack("<II", 0, 0xA5A5A5A5)
    return s


def user_io(opcode, nblocks=0, slba=0, metadata=False, addr=DATA):
    return struct.pack("<BBHHHQQQIIHHI", opcode, 0, 0, nblocks, 0, META if metadata else 0, addr, slba, 0, 0, 0, 0, 0)


def sqe(opcode, nsid=1, cdw10=0, cdw11=0, cdw12=0):
    return struct.pack("<BBHI", opcode, 0, 0, nsid) + bytes(32) + struct.pack("<6I", cdw10, cdw11, cdw12, 0, 0, 0)


def pattern(n, seed=0):
    return bytes((i * 13 + seed) & 0xFF for i in range(n))


def dsm(ranges):
    return b"".join(struct.pack("<IIQ", 0, blocks, slba) for slba, blocks in ranges)


def copy_format0(ranges):
    return b"".join(struct.pack("<QQHH12x", 0, slba, blocks - 1, 0) for slba, blocks in ranges)


seeds = {}

# This process as the kernel identifies it (root, no bypass in the policy): the default rules.
c = Conversation()
c.hello().open("nvme0").ioctl(0, ADMIN, passthru(0x06, data_len=4096, cdw10=1))
c.open("nvme0n1").ioctl(1, IO, passthru(0x01, nsid=1, data_len=512, cdw10=8), data=pattern(512))
c.ioctl(1, IO, passthru(0x02, nsid=1, data_len=512, cdw10=8))
c.ioctl(1, IO64, passthru(0x02, nsid=1, data_len=1024, cdw10=8, cdw12=1, is64=True))
c.batch(1, 1, [sqe(0x02), sqe(0x01), sqe(0x04, nsid=2)]).batch(0, 0, [sqe(0x06, 0, 1), sqe(0x06, 0, 0)])
c.metrics().ioctl(1, ID).close(1).close(0).close(0)
seeds["root-basics"] = c

# A tenant owning namespace 1: reads, a write through a read-only handle, another's namespace, its admin commands.
c = Conversation(DB)
c.hello().open("nvme0n1", 0).ioctl(0, IO, passthru(0x02, nsid=1, data_len=512))
c.ioctl(0, IO, passthru(0x01, nsid=1, data_len=512), data=pattern(512, 1))
c.open("nvme0n2", 0).ioctl(1, IO, passthru(0x02, nsid=2, data_len=4096))
c.open("nvme0").ioctl(2, ADMIN, passthru(0x02, data_len=512, cdw10=0x007F0002))
c.ioctl(2, ADMIN, passthru(0x09, nsid=1, cdw10=0x07, cdw11=0x00030003))
c.ioctl(2, ADMIN, passthru(0x06, nsid=1, data_len=4096, cdw10=3)).ioctl(2, ADMIN, passthru(0x06, nsid=2, data_len=4096, cdw10=3))
c.metrics()
seeds["tenant-db"] = c

# A tenant owning LBA ranges: writes inside and outside, range lists checked on the copy.
c = Conversation(SCRATCH)
c.open("nvme0n1").ioctl(0, IO, passthru(0x01, nsid=1, data_len=512, cdw10=1000), data=pattern(512, 2))
c.ioctl(0, IO, passthru(0x01, nsid=1, data_len=1024, cdw10=1199, cdw12=1), data=pattern(1024, 3))
c.ioctl(0, IO, passthru(0x02, nsid=1, data_len=512, cdw10=1300))
lst = dsm([(1000, 50), (1100, 20)])
c.ioctl(0, IO, passthru(0x09, nsid=1, data_len=len(lst), cdw10=1, cdw11=4), data=lst)
lst = dsm([(1000, 50), (900, 20)])
c.ioctl(0, IO, passthru(0x09, nsid=1, data_len=len(lst), cdw10=1, cdw11=4), data=lst)
lst = copy_format0([(1000, 8)])
c.ioctl(0, IO, passthru(0x19, nsid=1, data_len=len(lst), cdw10=1100, cdw12=0), data=lst)
c.open("nvme0n1p1").ioctl(1, IO, passthru(0x02, nsid=1, data_len=512, cdw10=10))
c.batch(0, 1, [sqe(0x01, cdw10=1000), sqe(0x01, cdw10=999), sqe(0x09)])
seeds["tenant-ranges"] = c

# Monitoring: logs with Retain Asynchronous Event, Identify, what is refused.
c = Conversation(MONITOR)
c.open("nvme0", 0).ioctl(0, ADMIN, passthru(0x02, data_len=512, cdw10=0x007F8002))
c.ioctl(0, ADMIN, passthru(0x02, data_len=512, cdw10=0x007F0002))
c.ioctl(0, ADMIN64, passthru(0x06, data_len=4096, cdw10=1, is64=True)).ioctl(0, ADMIN, passthru(0x06, data_len=4096, cdw10=0))
c.ioctl(0, IO, passthru(0x02, nsid=1, data_len=512)).metrics()
seeds["monitor"] = c

# NVME_IOCTL_SUBMIT_IO on a 4 KiB format with metadata, and on a controller node.
c = Conversation()
c.open("nvme0n2").ioctl(0, SUBMIT_IO, user_io(0x01, metadata=True), data=pattern(4096, 4), metadata=pattern(8, 5))
c.ioctl(0, SUBMIT_IO, user_io(0x02, metadata=True)).ioctl(0, SUBMIT_IO, user_io(0x02, nblocks=1))
c.open("nvme0").ioctl(1, SUBMIT_IO, user_io(0x02))
seeds["submit-io"] = c

# Management: with the capability (this process) and without (root's uid, no capabilities).
c = Conversation()
c.open("nvme0").ioctl(0, RESET).ioctl(0, RESCAN).ioctl(0, SUBSYS_RESET).ioctl(0, ID).open("ng0n3").ioctl(1, ID).ioctl(1, RESET)
seeds["management"] = c
c = Conversation(ROOT_NO_CAPS)
c.open("nvme0").ioctl(0, RESET).metrics().ioctl(0, 0x1C0484E41, passthru(0x06, data_len=4096, cdw10=1))
seeds["management-no-caps"] = c

# The controller's status and result come back; a controller that fails with EIO.
c = Conversation(flags=0x07, extra=struct.pack("<HII", 0x4002, 0x11223344, 0x55667788))
c.open("nvme0").ioctl(0, ADMIN64, passthru(0x06, data_len=4096, cdw10=1, is64=True))
c.ioctl(0, ADMIN, passthru(0x06, data_len=4096, cdw10=1))
seeds["status-result"] = c
c = Conversation(flags=0xF0)
c.open("nvme0").ioctl(0, ADMIN, passthru(0x06, data_len=4096, cdw10=1)).ioctl(0, ADMIN, passthru(0x06, data_len=4096, cdw10=2))
seeds["controller-eio"] = c

# Wire errors that leave the connection open, then one that closes it.
c = Conversation(EVERYTHING)
c.add(7, b"\x01\x00\x00\x00").add(1, b"\x01\x00").add(2, struct.pack("<II", 0, 0))
c.ioctl(0, ADMIN, bytes(71)).ioctl(0, ID, bytes(4)).add(6, b"\x00").open("nvme0n1").ioctl(0, IO, passthru(0x01, nsid=1, data_len=512), data=pattern(513))
c.hello(2, 4).hello()
seeds["wire-errors"] = c
c = Conversation(NARROW)
c.hello().add(1, struct.pack("<HH", 1, 1), version=2).hello()
seeds["bad-version"] = c
c = Conversation(PART)
c.open("nvme0n1").ioctl(0, IO, passthru(0x02, nsid=1, data_len=512), metadata=b"")
c.bytes += frame(4, 99, struct.pack("<iIQIIII", 0, 0, IO, 72, 8193, 0, 0))
seeds["too-large"] = c

# A read of max_transfer (8 KiB) bytes; frames of max_frame bytes come from the program seeds.
c = Conversation(GROUPED)
c.open("nvme0n1").ioctl(0, IO, passthru(0x02, nsid=1, data_len=8192, cdw10=1000, cdw12=15))
c.ioctl(0, IO, passthru(0x02, nsid=1, data_len=8193, cdw10=1000, cdw12=15))
seeds["max-transfer"] = c

# A truncated last frame: answered up to it, then the end.
c = Conversation(NOBODY)
c.hello().open("nvme0n1", 0).ioctl(0, IO, passthru(0x02, nsid=1, data_len=512))
c.bytes += frame(2, 50, struct.pack("<II", 0, 7) + b"nvme0n1")[:-3]
seeds["truncated"] = c
c = Conversation(BACKUP)
c.open("nvme0n1").ioctl(0, IO, passthru(0x02, nsid=1, data_len=512, cdw10=1050))
c.bytes += frame(1, 3, b"\x01\x00\x01\x00")[:9]
seeds["truncated-header"] = c

os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.unlink(os.path.join(OUT, name))
for name, conversation in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(conversation.bytes)

# The frame-writing mode (bits 0-1 of the first byte not zero): OPEN nvme0n1 read-write, then an
# IOCTL frame of exactly max_frame (16 + 32 + 80 + 2 x 8 KiB), then one of max_frame + 1.
with open(os.path.join(OUT, "program-max-frame"), "wb") as f:
    f.write(bytes([1, 0, 0x02, 0, 0, 0, 0, 1, 1, 1, 1, 0x0E, 0, 0, 1, 0, 0, 0x0E, 1, 0, 1, 0, 0]))
# And a few deterministic programs.
rng = random.Random(6)
for i in range(4):
    program = bytes([1 | (i * 3) << 2, rng.randrange(6)] if i else [1]) + bytes([0])
    program += bytes(rng.randrange(256) for _ in range(160 + 80 * i))
    with open(os.path.join(OUT, f"program-{i}"), "wb") as f:
        f.write(program)
