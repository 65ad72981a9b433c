/* libnvme 1.3 (Debian's libnvme-dev), as NVMeLinux uses it: the passthru calls, NVME_IOCTL_ID,
   the reset and rescan ioctls, and the Identify and log page layouts. libnvme.h alone: it must
   not follow <linux/nvme_ioctl.h>, whose include guard hides libnvme's own copy of the structs. */
#include <libnvme.h>
