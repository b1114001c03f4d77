/*
 * thrift_int.h - what the Thrift compact protocol's decoder (thrift_dec.c)
 * and encoder (thrift_enc.c) share: the protocol's type ids.
 */
#ifndef SHEAF_THRIFT_INT_H
#define SHEAF_THRIFT_INT_H

/* Compact protocol type ids. */
enum {
    CT_STOP = 0,
    CT_TRUE = 1,
    CT_FALSE = 2,
    CT_BYTE = 3,
    CT_I16 = 4,
    CT_I32 = 5,
    CT_I64 = 6,
    CT_DOUBLE = 7,
    CT_BINARY = 8,
    CT_LIST = 9,
    CT_SET = 10,
    CT_MAP = 11,
    CT_STRUCT = 12
};

#endif
