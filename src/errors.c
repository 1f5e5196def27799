/*
 * errors.c - the names of error codes and point types, built from the header's lists so
 * that a code and its message are written down once.
 */
#include "errinj.h"

const char *errinj_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define ERRINJ__ERRNO_CASE(name, value, message)                                               \
    case (value):                                                                              \
        return message;
        ERRINJ_ERRNO_MAP(ERRINJ__ERRNO_CASE)
#undef ERRINJ__ERRNO_CASE
    default:
        return "unknown error";
    }
}

const char *errinj_type_name(errinj_type type)
{
    static const char *const names[] = {"sleep", "exception", "lambda", "handler", "enter"};
    return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}
