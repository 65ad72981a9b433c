/*
 * Linux's unprivileged NVMe passthrough rules in plain C (drivers/nvme/host/ioctl.c,
 * 6.2+: nvme_user_cmd's envelope checks, then nvme_cmd_allowed), over submission
 * entries read in place. See ckernel_rules.h.
 */
#include "ckernel_rules.h"

#include <errno.h>
#include <string.h>

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* x86_64 and arm64 Linux are little-endian, as NVMe is */
    return v;
}

void ckr_prepare_io_effects(const uint32_t iocs[256], uint32_t out[256]) {
    for (int op = 0; op < 256; op++) out[op] = iocs[op] & ~CKR_CSE_MASK;
    out[0x01] |= CKR_LBCC; /* Write */
    out[0x04] |= CKR_LBCC; /* Write Uncorrectable */
    out[0x08] |= CKR_LBCC; /* Write Zeroes */
}

/* nvme_cmd_allowed: true when an unprivileged caller may send the command. */
static inline __attribute__((always_inline)) int
cmd_allowed(const uint8_t *sqe, int io_queue, const uint32_t *io_effects, const ckr_handle *h) {
    uint8_t opcode = sqe[0];
    uint32_t effects;

    if (h->cap_sys_admin) return 1;
    /* Partitions: only for commands sent with a namespace (admin ioctls go through the controller). */
    if (io_queue && h->is_partition) return 0;
    /* Vendor specific and Fabrics commands. */
    if (opcode >= 0x80 || opcode == 0x7F) return 0;
    if (!io_queue) {
        if (opcode == 0x06) { /* Identify */
            switch (le32(sqe + 40) & 0xFF) {
            case 0x00: case 0x01: case 0x05: case 0x06: case 0x08:
                return 1;
            }
        }
        return 0;
    }
    effects = io_effects[opcode];
    if (!(effects & CKR_CSUPP)) return 0;
    if (effects & ~(CKR_CSUPP | CKR_LBCC | CKR_USS | CKR_SCOPE_MASK)) return 0;
    if (((opcode & 1) || (effects & CKR_LBCC)) && !h->writable) return 0;
    return 1;
}

/* nvme_user_cmd: flags, then the NSID binding (nvme_validate_passthru_nsid), then the rules. */
static inline __attribute__((always_inline)) int
decide(const uint8_t *sqe, int io_queue, const uint32_t *io_effects, const ckr_handle *h) {
    if (sqe[1] != 0) return EINVAL;
    if (io_queue && h->is_namespace && le32(sqe + 4) != h->nsid) return EINVAL;
    return cmd_allowed(sqe, io_queue, io_effects, h) ? 0 : EACCES;
}

__attribute__((noinline))
int ckr_cmd_allowed(const uint8_t *sqe, int io_queue, const uint32_t *io_effects, const ckr_handle *h) {
    return decide(sqe, io_queue, io_effects, h);
}

uint64_t ckr_decide_ring(const void *ring, size_t count, int io_queue, const uint32_t *io_effects,
                         const ckr_handle *h, uint8_t *verdicts) {
    const uint8_t *p = ring;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        int v = ckr_cmd_allowed(p + i * 64, io_queue, io_effects, h);
        verdicts[i] = (uint8_t)v;
        sum += (uint8_t)v;
    }
    return sum;
}

uint64_t ckr_decide_ring_inline(const void *ring, size_t count, int io_queue, const uint32_t *io_effects,
                                const ckr_handle *h, uint8_t *verdicts) {
    const uint8_t *p = ring;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        int v = decide(p + i * 64, io_queue, io_effects, h);
        verdicts[i] = (uint8_t)v;
        sum += (uint8_t)v;
    }
    return sum;
}
