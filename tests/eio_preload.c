/* An I/O error (EIO) injected at the C library's write calls, for tests/test_faults_io.py.
 *
 * Loaded with LD_PRELOAD into a child process. write(), pwrite(), writev(), pwritev() and
 * fsync()/fdatasync() on a file whose path starts with $EIO_PATH fail with EIO as soon as more
 * than $EIO_AFTER_BYTES bytes would have gone to such files (so a writer gets part of its file
 * out, then the error, as from a failing disk). Every other file is untouched. Changing
 * $EIO_PATH (os.environ in the child) starts a new budget. Linux only (/proc/self/fd). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char current_prefix[4096];
static long budget;
static int failed;

static int targeted(int fd) {
    const char *prefix = getenv("EIO_PATH");
    char link[64], path[4096];
    ssize_t n;
    if (prefix == NULL || *prefix == '\0') return 0;
    if (strncmp(prefix, current_prefix, sizeof current_prefix) != 0) {
        const char *after = getenv("EIO_AFTER_BYTES");
        strncpy(current_prefix, prefix, sizeof current_prefix - 1);
        budget = after ? atol(after) : 0;
        failed = 0;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return strncmp(path, prefix, strlen(prefix)) == 0;
}

/* 1 when this write of `count` bytes to `fd` must fail. */
static int fails(int fd, size_t count) {
    if (!targeted(fd)) return 0;
    if (!failed && (long)count <= budget) {
        budget -= (long)count;
        return 0;
    }
    failed = 1;
    errno = EIO;
    return 1;
}

static size_t iov_bytes(const struct iovec *iov, int iovcnt) {
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    return total;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void *buf, size_t count) {
    return fails(fd, count) ? -1 : REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return fails(fd, count) ? -1 : REAL(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    return fails(fd, count) ? -1 : REAL(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    return fails(fd, iov_bytes(iov, iovcnt)) ? -1 : REAL(writev)(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    return fails(fd, iov_bytes(iov, iovcnt)) ? -1 : REAL(pwritev)(fd, iov, iovcnt, offset);
}

int fsync(int fd) {
    if (targeted(fd) && failed) {
        errno = EIO;
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd) {
    if (targeted(fd) && failed) {
        errno = EIO;
        return -1;
    }
    return REAL(fdatasync)(fd);
}
