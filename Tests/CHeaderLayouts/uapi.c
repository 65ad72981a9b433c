/* Layout facts from the kernel UAPI header (linux-libc-dev). Kept out of layouts.c: libnvme's
 * copy of these structs shares the header's include guard. */
#include <linux/ioctl.h>
#include <linux/nvme_ioctl.h>
#include <stddef.h>
#include <string.h>

#include "layouts.h"
#include "passthru_offsets.h"


static const size_t offsets32[CHL_PT_FIELD_COUNT] = OFFSETS(struct nvme_passthru_cmd);
static const size_t offsets64[CHL_PT_FIELD_COUNT] = OFFSETS(struct nvme_passthru_cmd64);

size_t chl_uapi_passthru_size(int is64) {
    return is64 ? sizeof(struct nvme_passthru_cmd64) : sizeof(struct nvme_passthru_cmd);
}

size_t chl_uapi_passthru_offset(int is64, int field) {
    if (field < 0 || field >= CHL_PT_FIELD_COUNT) return (size_t)-1;
    return is64 ? offsets64[field] : offsets32[field];
}

size_t chl_user_io_size(void) { return sizeof(struct nvme_user_io); }

/* Values: opcode 0x02, flags 0x00, control 0x4000, nblocks 0x0007, rsvd 0xEEEE,
 * metadata 0x0102030405060708, addr 0x1112131415161718, slba 0x0000001122334455,
 * dsmgmt 0xA1A2A3A4, reftag 0xB1B2B3B4, apptag 0xC1C2, appmask 0xD1D2. */
void chl_fill_user_io(void *buf) {
    struct nvme_user_io io;
    memset(&io, 0, sizeof io);
    io.opcode = 0x02;
    io.flags = 0x00;
    io.control = 0x4000;
    io.nblocks = 0x0007;
    io.rsvd = 0xEEEE;
    io.metadata = 0x0102030405060708ULL;
    io.addr = 0x1112131415161718ULL;
    io.slba = 0x0000001122334455ULL;
    io.dsmgmt = 0xA1A2A3A4;
    io.reftag = 0xB1B2B3B4;
    io.apptag = 0xC1C2;
    io.appmask = 0xD1D2;
    memcpy(buf, &io, sizeof io);
}

unsigned long chl_ioctl_submit_io(void) { return NVME_IOCTL_SUBMIT_IO; }
