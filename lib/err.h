/*
 * err.h - sheaf's error codes and the error record passed down by callers.
 *
 * Functions that can fail return 0 or a negative SH_E* code and fill a
 * caller-provided sh_err with the human words and, for job-spec errors, the
 * JSON path of the field at fault ("steps[2].where", "input.path", "" for the
 * body itself). Only the API layer maps a code to an HTTP status.
 */
#ifndef SHEAF_ERR_H
#define SHEAF_ERR_H

enum {
    SH_OK = 0,
    SH_EINVAL = -1, /* the job spec or a request is invalid (400) */
    SH_ENOENT = -2, /* a named thing does not exist (404, or 400 in a spec) */
    SH_EIO = -3,    /* an I/O or system call failed (retryable) */
    SH_EDATA = -4,  /* the input data cannot be read as declared */
    SH_ERANGE = -5, /* integer overflow or a value out of range */
    SH_ECANCELED = -6, /* the work was cancelled */
    SH_ESTATE = -7,    /* the thing is in the wrong state (409) */
    SH_ETOOBIG = -8,   /* a body or a value is too large (413) */
    SH_EDB = -9,       /* the database failed or is unreachable (503) */
    SH_ECONFLICT = -10 /* a conflicting request (409), e.g. idempotency */
};

#define SH_ERR_PATH_MAX 128
#define SH_ERR_MSG_MAX  1024

typedef struct sh_err {
    int  code;                  /* SH_OK or an SH_E* code */
    char path[SH_ERR_PATH_MAX]; /* JSON path of the field at fault, or "" */
    char msg[SH_ERR_MSG_MAX];   /* words a person can act on */
} sh_err;

/*
 * Fill 'err' (which may be NULL) with 'code', 'path' (NULL means "") and a
 * printf-style message. Returns 'code', so callers can write
 * 'return sh_err_set(err, SH_EINVAL, "input.path", "...")'.
 */
int sh_err_set(sh_err *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear 'err' to SH_OK with empty path and message. */
void sh_err_clear(sh_err *err);

/* The machine-readable name of a code: "invalid_spec", "not_found", ... */
const char *sh_err_name(int code);

#endif
