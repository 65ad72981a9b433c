/* The preload library exports libc symbols only (open, ioctl, ...); this header is empty on purpose. */
