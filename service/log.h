/*
 * log.h - one-line log records on stderr: time, process role and pid,
 * level, message. Safe from several threads (one write(2) per record).
 */
#ifndef SHEAF_LOG_H
#define SHEAF_LOG_H

/* Set the role shown in each record ("sheafd", "worker"). */
void log_set_role(const char *role);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
