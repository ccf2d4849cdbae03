/* text_file.h - bounded reads of the text files users hand us, and values quoted safely.
 *
 * Every parser of a user's file (case files, routing files, later suites and
 * traces) reads it through ep_text_file_read: a directory, a device or a
 * file larger than the caller's bound is refused by name before a byte is
 * parsed, so `/dev/zero` or a directory can neither hang nor mislead a
 * parser. Pipes are read (bounded), so `--routing file:<(generator)` works.
 * Messages that echo what a user wrote go through ep_quote, which turns
 * control bytes and binary junk into escapes and cuts long values, so an
 * error line stays one printable line.
 */
#ifndef EP_TEXT_FILE_H
#define EP_TEXT_FILE_H

#include <stddef.h>

/* Reads all of path (a regular file or a pipe) into a malloc'd buffer with a
 * terminating NUL; *len excludes it. Refuses, with one line in err naming
 * the file: a missing or unreadable file, a directory, a device, more than
 * max_bytes, and a NUL byte (binary data). `what` names the file's role
 * ("case file", "routing file"). Returns 0 or -EP_EUSAGE (-EP_ENOMEM when
 * the buffer cannot be had). Blocks on the read of a pipe. */
int ep_text_file_read(const char *what, const char *path, size_t max_bytes, char **text,
		      size_t *len, char *err, size_t errlen);

/* The same for any bytes (binary files such as .npy): a NUL is no error. */
int ep_file_read(const char *what, const char *path, size_t max_bytes, char **data, size_t *len, char *err,
		 size_t errlen);

/* Writes s into out as a printable, single-line rendering: bytes outside
 * 0x20..0x7e become \r, \t, \n or \xNN, and anything beyond about 60
 * characters is cut with "...". Returns out. */
const char *ep_quote(const char *s, char *out, size_t len);

/* Checks, before any work, that a report can be written at path: a
 * non-empty name, not a directory, in an existing directory where a file
 * can be created (a probe file is made and removed). 0, or -EP_EUSAGE with
 * one line in err naming the option and the path. */
int ep_output_path_check(const char *option, const char *path, char *err, size_t errlen);

/* The same for a directory that will be created if missing (--dump): an
 * existing directory, or a creatable one whose nearest existing ancestor is
 * a writable directory. */
int ep_output_dir_check(const char *option, const char *path, char *err, size_t errlen);

#endif
