/*
 * hooks.c - the validator table and the thread-start hook of hooks.h.
 *
 * Both are written at start-up (the preload's constructor) and read on every enable and at the
 * start of the server thread; the table is append-only with release/acquire ordering, so readers
 * take no lock.
 */
#include "hooks.h"

#include "errinj.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define VALIDATORS_MAX 8

struct validator {
    const char *prefix;
    size_t prefix_len;
    errinj__validate_fn fn;
};

static struct validator g_validators[VALIDATORS_MAX];
static atomic_uint g_validator_count;
static atomic_flag g_validators_writing = ATOMIC_FLAG_INIT;
static _Atomic(void (*)(void)) g_thread_start;
static _Thread_local char t_message[256];

int errinj__hook_validator(const char *prefix, errinj__validate_fn fn)
{
    if (prefix == NULL || fn == NULL)
        return ERRINJ_EINVAL;
    while (atomic_flag_test_and_set(&g_validators_writing))
        ;
    unsigned n = atomic_load_explicit(&g_validator_count, memory_order_relaxed);
    int rc = ERRINJ_ENOMEM;
    if (n < VALIDATORS_MAX) {
        g_validators[n] = (struct validator){prefix, strlen(prefix), fn};
        atomic_store_explicit(&g_validator_count, n + 1, memory_order_release);
        rc = 0;
    }
    atomic_flag_clear(&g_validators_writing);
    return rc;
}

int errinj__hook_validate(const char *name, const char *const *params)
{
    static const char *const none[] = {NULL};
    t_message[0] = '\0';
    unsigned n = atomic_load_explicit(&g_validator_count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const struct validator *v = &g_validators[i];
        if (strncmp(name, v->prefix, v->prefix_len) != 0)
            continue;
        int rc = v->fn(name, params != NULL ? params : none, t_message, sizeof(t_message));
        if (rc != 0) {
            if (t_message[0] == '\0')
                snprintf(t_message, sizeof(t_message), "bad parameters for %s", name);
            return ERRINJ_EINVAL;
        }
    }
    return 0;
}

const char *errinj__hook_message(void)
{
    return t_message;
}

void errinj__hook_thread_start(void (*fn)(void))
{
    atomic_store(&g_thread_start, fn);
}

void errinj__hook_run_thread_start(void)
{
    void (*fn)(void) = atomic_load(&g_thread_start);
    if (fn != NULL)
        fn();
}
