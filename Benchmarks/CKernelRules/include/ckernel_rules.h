/*
 * ckernel_rules.h: Linux's unprivileged NVMe passthrough rules (nvme_cmd_allowed and the
 * envelope checks of nvme_user_cmd, Linux 6.2+) in plain C, over 64-byte submission
 * entries read in place. The reference the Swift decision path is measured against.
 *
 * Verdicts are one byte per entry: 0 (allowed) or the errno the ioctl would return
 * (EINVAL for the envelope checks, EACCES for the policy), as nvmegate_check_batch gives.
 */
#ifndef CKERNEL_RULES_H
#define CKERNEL_RULES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKR_CSUPP 0x00000001u      /* NVME_CMD_EFFECTS_CSUPP */
#define CKR_LBCC 0x00000002u       /* NVME_CMD_EFFECTS_LBCC */
#define CKR_CSE_MASK 0x00070000u   /* NVME_CMD_EFFECTS_CSE_MASK (3 bits since NVMe 2.0) */
#define CKR_USS 0x00080000u        /* NVME_CMD_EFFECTS_UUID_SEL */
#define CKR_SCOPE_MASK 0xFFF00000u /* NVME_CMD_EFFECTS_SCOPE_MASK */

/* What nvme_user_cmd knows about the file the ioctl came through. */
typedef struct ckr_handle {
    uint32_t nsid;         /* ns->head->ns_id; ignored for a controller node */
    uint8_t is_namespace;  /* ns != NULL: a namespace (block, generic or partition) node */
    uint8_t is_partition;  /* NVME_IOCTL_PARTITION */
    uint8_t writable;      /* open_for_write */
    uint8_t cap_sys_admin; /* capable(CAP_SYS_ADMIN) */
} ckr_handle;

/*
 * The effects Linux decides I/O commands with, from a controller's IOCS half of the
 * Commands Supported and Effects log (256 little-endian words): CSE cleared, LBCC added
 * for Write, Write Uncorrectable and Write Zeroes (nvme_init_known_nvm_effects). Done
 * once when the log is read, as the kernel does.
 */
void ckr_prepare_io_effects(const uint32_t iocs[256], uint32_t out[256]);

/*
 * One command, as nvme_user_cmd + nvme_cmd_allowed: 0 or EINVAL/EACCES. `io_effects` is
 * the prepared IOCS table. Out of line, called once per command, like the kernel.
 */
int ckr_cmd_allowed(const uint8_t *sqe, int io_queue, const uint32_t *io_effects, const ckr_handle *h);

/*
 * Decides `count` entries of `ring`, calling ckr_cmd_allowed once per entry (out of line);
 * writes verdicts[i] and returns the sum of the verdicts (a checksum).
 */
uint64_t ckr_decide_ring(const void *ring, size_t count, int io_queue, const uint32_t *io_effects,
                         const ckr_handle *h, uint8_t *verdicts);

/* The same with the rules inlined into the loop: the C floor. */
uint64_t ckr_decide_ring_inline(const void *ring, size_t count, int io_queue, const uint32_t *io_effects,
                                const ckr_handle *h, uint8_t *verdicts);

#ifdef __cplusplus
}
#endif

#endif /* CKERNEL_RULES_H */
