/* Layout facts from libnvme 1.3's headers. Include libnvme.h only: <linux/nvme_ioctl.h>
 * before it breaks the build (shared include guard). */
#include <libnvme.h>
#include <stddef.h>
#include <string.h>

#include "layouts.h"
#include "passthru_offsets.h"


static const size_t offsets32[CHL_PT_FIELD_COUNT] = OFFSETS(struct nvme_passthru_cmd);
static const size_t offsets64[CHL_PT_FIELD_COUNT] = OFFSETS(struct nvme_passthru_cmd64);

size_t chl_passthru_size(int is64) {
    return is64 ? sizeof(struct nvme_passthru_cmd64) : sizeof(struct nvme_passthru_cmd);
}

size_t chl_passthru_offset(int is64, int field) {
    if (field < 0 || field >= CHL_PT_FIELD_COUNT) return (size_t)-1;
    return is64 ? offsets64[field] : offsets32[field];
}

/* Values: opcode 0x11, flags 0x22, rsvd1 0x3344, nsid 0x55667788, cdw2 0x0A0B0C0D,
 * cdw3 0x1A1B1C1D, metadata 0x0102030405060708, addr 0x1112131415161718,
 * metadata_len 0x2122, data_len 0x31323334, cdw10+i 0xC0DE0000 + i, timeout_ms 0x7531,
 * result 0xDDCCBBAA (64: 0x99887766DDCCBBAA). */
#define FILL(p)                                                                                 \
    do {                                                                                        \
        (p)->opcode = 0x11; (p)->flags = 0x22; (p)->rsvd1 = 0x3344; (p)->nsid = 0x55667788;     \
        (p)->cdw2 = 0x0A0B0C0D; (p)->cdw3 = 0x1A1B1C1D;                                          \
        (p)->metadata = 0x0102030405060708ULL; (p)->addr = 0x1112131415161718ULL;                \
        (p)->metadata_len = 0x2122; (p)->data_len = 0x31323334;                                  \
        (p)->cdw10 = 0xC0DE0000; (p)->cdw11 = 0xC0DE0001; (p)->cdw12 = 0xC0DE0002;               \
        (p)->cdw13 = 0xC0DE0003; (p)->cdw14 = 0xC0DE0004; (p)->cdw15 = 0xC0DE0005;               \
        (p)->timeout_ms = 0x7531;                                                               \
    } while (0)

void chl_fill_passthru(void *buf, int is64) {
    if (is64) {
        struct nvme_passthru_cmd64 c;
        memset(&c, 0, sizeof c);
        FILL(&c);
        c.result = 0x99887766DDCCBBAAULL;
        memcpy(buf, &c, sizeof c);
    } else {
        struct nvme_passthru_cmd c;
        memset(&c, 0, sizeof c);
        FILL(&c);
        c.result = 0xDDCCBBAA;
        memcpy(buf, &c, sizeof c);
    }
}

uint64_t chl_read_result(const void *buf, int is64) {
    if (is64) {
        struct nvme_passthru_cmd64 c;
        memcpy(&c, buf, sizeof c);
        return c.result;
    }
    struct nvme_passthru_cmd c;
    memcpy(&c, buf, sizeof c);
    return c.result;
}

size_t chl_effects_log_size(void) { return sizeof(struct nvme_cmd_effects_log); }
size_t chl_effects_log_acs_offset(void) { return offsetof(struct nvme_cmd_effects_log, acs); }
size_t chl_effects_log_iocs_offset(void) { return offsetof(struct nvme_cmd_effects_log, iocs); }
uint32_t chl_effects_csupp(void) { return NVME_CMD_EFFECTS_CSUPP; }
uint32_t chl_effects_lbcc(void) { return NVME_CMD_EFFECTS_LBCC; }
uint32_t chl_effects_ncc(void) { return NVME_CMD_EFFECTS_NCC; }
uint32_t chl_effects_nic(void) { return NVME_CMD_EFFECTS_NIC; }
uint32_t chl_effects_ccc(void) { return NVME_CMD_EFFECTS_CCC; }
uint32_t chl_effects_cse_mask(void) { return NVME_CMD_EFFECTS_CSE_MASK; }
uint32_t chl_effects_uuid_sel(void) { return NVME_CMD_EFFECTS_UUID_SEL; }

unsigned long chl_ioctl_id(void) { return NVME_IOCTL_ID; }
unsigned long chl_ioctl_admin_cmd(void) { return NVME_IOCTL_ADMIN_CMD; }
unsigned long chl_ioctl_io_cmd(void) { return NVME_IOCTL_IO_CMD; }
unsigned long chl_ioctl_reset(void) { return NVME_IOCTL_RESET; }
unsigned long chl_ioctl_subsys_reset(void) { return NVME_IOCTL_SUBSYS_RESET; }
unsigned long chl_ioctl_rescan(void) { return NVME_IOCTL_RESCAN; }
unsigned long chl_ioctl_admin64_cmd(void) { return NVME_IOCTL_ADMIN64_CMD; }
unsigned long chl_ioctl_io64_cmd(void) { return NVME_IOCTL_IO64_CMD; }
