/* The passthru field offsets in layouts.h's CHL_PT_* order, for whichever header declared
 * struct nvme_passthru_cmd: libnvme's copy (layouts.c) or Linux's UAPI one (uapi.c). The two
 * cannot share a translation unit: they use the same include guard. */
#include <stddef.h>

#define OFFSETS(type)                                                                          \
    {offsetof(type, opcode), offsetof(type, flags), offsetof(type, rsvd1), offsetof(type, nsid), \
     offsetof(type, cdw2), offsetof(type, cdw3), offsetof(type, metadata), offsetof(type, addr), \
     offsetof(type, metadata_len), offsetof(type, data_len), offsetof(type, cdw10),            \
     offsetof(type, cdw11), offsetof(type, cdw12), offsetof(type, cdw13), offsetof(type, cdw14), \
     offsetof(type, cdw15), offsetof(type, timeout_ms), offsetof(type, result)}
