/*
 * names.c - the names of error codes, point types and event phases, built from their lists so
 * that each is written down once, and the rule for an injection's name.
 */
#include "names.h"

#include "util.h"

#include <string.h>

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

/* Indexed by the enum, so a name can never sit beside the wrong value. */
static const char *const type_names[] = {
#define ERRINJ__TYPE_NAME(name, text) [ERRINJ_TYPE_##name] = text,
    ERRINJ_TYPE_MAP(ERRINJ__TYPE_NAME)
#undef ERRINJ__TYPE_NAME
};

static const char *const phase_names[] = {
#define ERRINJ__PHASE_NAME(name, text) [ERRINJ__PHASE_##name] = text,
    ERRINJ__PHASE_MAP(ERRINJ__PHASE_NAME)
#undef ERRINJ__PHASE_NAME
};

const char *errinj_type_name(errinj_type type)
{
    return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "unknown";
}

const char *errinj__phase_name(enum errinj__phase phase)
{
    return (unsigned)phase < ERRINJ__PHASE_COUNT ? phase_names[phase] : "unknown";
}

/* The index of the name of len bytes at text in names (count of them), or -1. */
static int find_name(const char *const *names, size_t count, const char *text, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], text, len) == 0)
            return (int)i;
    return -1;
}

bool errinj__phase_parse(const char *text, size_t len, enum errinj__phase *out)
{
    int i = find_name(phase_names, ERRINJ__PHASE_COUNT, text, len);
    if (i < 0)
        return false;
    *out = (enum errinj__phase)i;
    return true;
}

bool errinj__type_parse(const char *text, size_t len, errinj_type *out)
{
    int i = find_name(type_names, ERRINJ__TYPE_COUNT, text, len);
    if (i < 0)
        return false;
    *out = (errinj_type)i;
    return true;
}

bool errinj__name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > ERRINJ__NAME_MAX)
        return false;
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = errinj__utf8_sequence(s + i, len - i, &cp);
        if (n == 0)
            return false;
        /* C0 controls, DEL and C1 controls. */
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return false;
        i += n;
    }
    return true;
}

bool errinj__name_ok(const char *name)
{
    return name != NULL && errinj__name_valid(name, strnlen(name, ERRINJ__NAME_MAX + 1));
}
