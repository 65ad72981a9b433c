/* Facts computed by the C compiler from libnvme-dev's and linux-libc-dev's headers, for the
 * NVMeSpec tests to compare with the Swift views. Plain C: this header includes no NVMe header. */
#ifndef CHEADER_LAYOUTS_H
#define CHEADER_LAYOUTS_H

#include <stddef.h>
#include <stdint.h>

/* Fields of struct nvme_passthru_cmd / nvme_passthru_cmd64, in declaration order. */
enum chl_passthru_field {
    CHL_PT_OPCODE, CHL_PT_FLAGS, CHL_PT_RSVD1, CHL_PT_NSID, CHL_PT_CDW2, CHL_PT_CDW3,
    CHL_PT_METADATA, CHL_PT_ADDR, CHL_PT_METADATA_LEN, CHL_PT_DATA_LEN,
    CHL_PT_CDW10, CHL_PT_CDW11, CHL_PT_CDW12, CHL_PT_CDW13, CHL_PT_CDW14, CHL_PT_CDW15,
    CHL_PT_TIMEOUT_MS, CHL_PT_RESULT, CHL_PT_FIELD_COUNT
};

/* libnvme (nvme/ioctl.h): sizeof and offsetof. is64 selects nvme_passthru_cmd64. */
size_t chl_passthru_size(int is64);
size_t chl_passthru_offset(int is64, int field);
/* Sets every field of the C struct at buf to a distinct value (see layouts.c). */
void chl_fill_passthru(void *buf, int is64);
/* Reads `result` through the C struct type. */
uint64_t chl_read_result(const void *buf, int is64);

/* libnvme (nvme/types.h): struct nvme_cmd_effects_log and enum nvme_cmd_effects. */
size_t chl_effects_log_size(void);
size_t chl_effects_log_acs_offset(void);
size_t chl_effects_log_iocs_offset(void);
uint32_t chl_effects_csupp(void);
uint32_t chl_effects_lbcc(void);
uint32_t chl_effects_ncc(void);
uint32_t chl_effects_nic(void);
uint32_t chl_effects_ccc(void);
uint32_t chl_effects_cse_mask(void);
uint32_t chl_effects_uuid_sel(void);

/* libnvme's NVME_IOCTL_* request numbers. */
unsigned long chl_ioctl_id(void);
unsigned long chl_ioctl_admin_cmd(void);
unsigned long chl_ioctl_io_cmd(void);
unsigned long chl_ioctl_reset(void);
unsigned long chl_ioctl_subsys_reset(void);
unsigned long chl_ioctl_rescan(void);
unsigned long chl_ioctl_admin64_cmd(void);
unsigned long chl_ioctl_io64_cmd(void);

/* The kernel UAPI (linux/nvme_ioctl.h), compiled separately in uapi.c because libnvme's
 * copy shares its include guard: struct nvme_user_io and NVME_IOCTL_SUBMIT_IO, which libnvme
 * lacks, and the kernel's own passthru sizes. */
size_t chl_uapi_passthru_size(int is64);
size_t chl_uapi_passthru_offset(int is64, int field);
size_t chl_user_io_size(void);
/* Sets every field of a struct nvme_user_io at buf to a distinct value (see uapi.c). */
void chl_fill_user_io(void *buf);
unsigned long chl_ioctl_submit_io(void);

#endif
