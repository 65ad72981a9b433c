/*
 * nvmegate_preload.h: libnvmegate-preload.so has no API of its own. It exports libc's names
 * (open, open64, __open_2, __open64_2, openat, openat64, __openat_2, __openat64_2, close, ioctl,
 * fstat, fstat64, stat, stat64, lstat, lstat64, fstatat, fstatat64 and the __fxstat / __xstat /
 * __lxstat forms) and is configured by the environment; see preload.c and the README's
 * "Run nvme-cli and smartctl without root".
 */
