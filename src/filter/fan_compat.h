/*
 * Kernel interfaces newer than Debian 12's headers (Linux 6.1), defined
 * here only when the system headers lack them.  Every one of them is also
 * probed at run time: a definition here says nothing about the running
 * kernel.
 */
#ifndef FP_FILTER_FAN_COMPAT_H
#define FP_FILTER_FAN_COMPAT_H

#include <stdint.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000 /* 6.14: pre-content access hook */
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6 /* 6.14: range of a pre-content event */
#endif
#ifndef FAN_INFO
#define FAN_INFO 0x20 /* 6.3: a response carries an info record */
#endif
#ifndef FAN_RESPONSE_INFO_AUDIT_RULE
#define FAN_RESPONSE_INFO_AUDIT_RULE 1
#endif
#ifndef FAN_ERRNO_BITS
#define FAN_ERRNO_BITS 8 /* 6.14: FAN_DENY_ERRNO */
#define FAN_ERRNO_SHIFT (32 - FAN_ERRNO_BITS)
#define FAN_ERRNO_MASK ((1 << FAN_ERRNO_BITS) - 1)
#endif
#ifndef FAN_DENY_ERRNO
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((uint32_t)(err)) & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT))
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200 /* 5.19 */
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400 /* 6.0 */
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000 /* 5.17 */
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif
#ifndef FAN_EVENT_INFO_TYPE_PIDFD
#define FAN_EVENT_INFO_TYPE_PIDFD 4 /* 5.15 */
#endif
#ifndef FAN_REPORT_PIDFD
#define FAN_REPORT_PIDFD 0x00000080
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000 /* 6.13: metadata.fd carries the open's -errno */
#endif
#ifndef FAN_NOPIDFD
#define FAN_NOPIDFD FAN_NOFD
#define FAN_EPIDFD -2
#endif

/* Our own spelling of the records, so that older headers need not have
 * them.  Layouts are the kernel ABI. */
struct fp_fan_info_range { /* FAN_EVENT_INFO_TYPE_RANGE */
	struct fanotify_event_info_header hdr;
	uint32_t pad;
	uint64_t offset;
	uint64_t count;
};

struct fp_fan_info_pidfd { /* FAN_EVENT_INFO_TYPE_PIDFD */
	struct fanotify_event_info_header hdr;
	int32_t pidfd;
};

struct fp_fan_response_info { /* a response with FAN_INFO (probe only) */
	struct fanotify_response r;
	uint8_t type, pad;
	uint16_t len;
	uint32_t rule_number, subj_trust, obj_trust;
};

/* pidfs (6.9+): every process has a unique inode number; PIDFD_GET_INFO
 * (6.13+) reads credentials through the pidfd, race-free. */
#define FP_PIDFS_MAGIC 0x50494446
struct fp_pidfd_info { /* PIDFD_INFO_SIZE_VER0: 64 bytes */
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t spare0;
};
#define FP_PIDFD_GET_INFO _IOWR(0xFF, 11, struct fp_pidfd_info)
#define FP_PIDFD_INFO_PID 0x1u
#define FP_PIDFD_INFO_CREDS 0x2u
#define FP_PIDFD_INFO_CGROUPID 0x4u /* cgroup2 id of its cgroup */

#endif
