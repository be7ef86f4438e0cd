/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Creates a directory and its parents (mode for the ones created). */
int mkdir_p(const char *path, mode_t mode);

/* Writes all of data to fd (retrying short writes and EINTR). Returns 0 or
 * negative errno. Unbuffered: for secrets that must not linger in a stdio
 * buffer. */
int write_all(int fd, const void *data, size_t size);

/* Writes a file atomically: a temporary file in the same directory,
 * fsync()ed, renamed over path, and the directory fsync()ed. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Reads a whole file of at most max bytes into a NUL-terminated malloc()ed
 * buffer. Returns 0, -EFBIG when larger, or negative errno. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size);

/* Like read_file_bounded(), for files only unlockd writes (jobs, state):
 * refuses (-EBADFD) anything but a regular file, a symlink included, and
 * never blocks in open() (a FIFO). */
int read_file_regular(const char *path, size_t max, char **ret, size_t *ret_size);
