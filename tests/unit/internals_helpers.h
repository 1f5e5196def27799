/*
 * internals_helpers.h - what the unit tests that reach into the library's internals share: the
 * injection state as one comparable string (to show a refused request changed nothing) and a
 * free loopback port, an entry of the registry, a parameter's expected value, and request headers
 * for the router run as a pure function. Include after cmocka.h.
 */
#ifndef ERRINJ_TEST_INTERNALS_HELPERS_H
#define ERRINJ_TEST_INTERNALS_HELPERS_H

#include "http.h"
#include "registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the injection state, as one comparable string ------------------------------------- */

struct snapshot {
    char text[4096];
    size_t len;
};

static inline void snapshot_one(const char *name, void *arg)
{
    struct snapshot *s = arg;
    errinj_state st;
    assert_int_equal(errinj_state_get(name, &st), 0);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s%s{", name,
                               st.one_shot ? "(one_shot)" : "");
    for (size_t i = 0; st.parameters != NULL && st.parameters[i] != NULL; i += 2)
        s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s=%s;", st.parameters[i],
                                   st.parameters[i + 1]);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "} ");
    assert_true(s->len < sizeof(s->text));
    errinj_state_release(&st);
}

static inline void take_snapshot(struct snapshot *s)
{
    s->len = 0;
    s->text[0] = '\0';
    errinj_list_enabled(snapshot_one, s);
}

/* Fails unless injection `name` has parameter `key` equal to `value`. */
static inline void expect_parameter(const char *name, const char *key, const char *value)
{
    char buf[256];
    int rc = errinj_parameter(name, key, buf, sizeof(buf));
    if (rc != 0)
        fail_msg("parameter %s of %s: %s, expected \"%s\"", key, name, errinj_strerror(rc), value);
    assert_string_equal(buf, value);
}

/* ---- headers of a request handed to errinj__http_handle() ------------------------------- */

/* One header; an array of them ends with a NULL name. */
struct hdr {
    const char *name;
    const char *value;
};

static inline const char *lookup_header(void *ctx, const char *name)
{
    for (const struct hdr *h = ctx; h != NULL && h->name != NULL; h++)
        if (strcasecmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

/* The registry's entry of `name`, made real by an enable and a disable: unique per name, as the
 * history's frames and the waits carry them. */
static inline struct errinj__entry *entry_of(const char *name)
{
    assert_int_equal(errinj_enable(name, false, NULL), 0);
    assert_int_equal(errinj_disable(name), 0);
    struct errinj__entry *e = errinj__entry_find(name);
    assert_non_null(e);
    errinj__entry_ref(e); /* the frame's that carries it: a history drops one per frame it evicts */
    return e;
}

/* A port nothing listens on now: bind port 0, read what the kernel chose, close it. */
static inline unsigned unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
