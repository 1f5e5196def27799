/*
 * kvnode.h - what the parts of kvnode share: the log, the sharded store, the network side.
 *
 * kvnode is the demo server of errinj: a small sharded key-value store with a line protocol,
 * shaped like a ScyllaDB node (one thread per shard owns that shard's keys; requests are
 * handed to their key's shard and answered after it ran them), so that its injection points
 * sit on real request paths. main.c ties the parts together; each part owns its own state.
 */
#ifndef KVNODE_H
#define KVNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest request line, "\n" included; a longer line is refused and its connection closed. */
#define KV_LINE_MAX 65536
/* Room for any reply: the longest value plus "VALUE " and "\n". */
#define KV_REPLY_MAX (KV_LINE_MAX + 32)

/* ---- log.c: ScyllaDB-style log lines ------------------------------------------------------- */

enum kv_level { KV_DEBUG, KV_INFO, KV_WARN, KV_ERROR };

/* Opens `path` for appending, or logs to stderr when path is NULL. Also routes the errinj
 * library's lines here under the logger name "debug_error_injection". Pair with kv_log_close().
 * Returns 0 or -errno. */
int kv_log_open(const char *path);

/* Detaches the library's log and closes the file. After it, kv_log() writes to stderr. */
void kv_log_close(void);

/* Writes one line `LEVEL DATE TIME,MS [shard N] logger - message` in a single write. The shard
 * is errinj_shard() of the calling thread. Thread-safe. */
void kv_log(enum kv_level level, const char *logger, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* kv_log() with the logger name "kvnode". */
#define KV_LOG(level, ...) kv_log((level), "kvnode", __VA_ARGS__)

/* ---- store.c: the shards and their keys ------------------------------------------------------ */

enum kv_op { KV_PUT, KV_GET, KV_DEL };

/* One request, owned by the caller of kv_store_execute() (usually on its stack). */
struct kv_request {
    enum kv_op op;
    const char *key;   /* no spaces, not empty */
    const char *value; /* KV_PUT only: not empty, no "\n" */
    char *reply;       /* caller's buffer of KV_REPLY_MAX bytes; receives the reply line with "\n" */
};

struct kv_store;

/* Starts `nshards` shard threads (1 to 1024). Pair with kv_store_stop(). Returns 0 or -errno. */
int kv_store_start(unsigned nshards, struct kv_store **out);

/* The shard that owns `key`: FNV-1a (64 bit) of its bytes, modulo the shard count. */
unsigned kv_store_shard_of(const struct kv_store *store, const char *key);

/* Hands `req` to its key's shard and returns once that shard ran it and wrote req->reply. */
void kv_store_execute(struct kv_store *store, struct kv_request *req);

/* Lets each shard finish its queued requests, flush once more and exit; joins and frees them.
 * No kv_store_execute() may be running or start. NULL is ignored. */
void kv_store_stop(struct kv_store *store);

/* ---- net.c: the line-protocol listener and its connections ----------------------------------- */

struct kv_net;

/* Listens on "host:port" (port 0 picks one; IPv6 hosts in brackets). Pair with kv_net_stop().
 * Returns 0 or -errno; on success *port is the port bound. */
int kv_net_listen(const char *addr, struct kv_store *store, struct kv_net **out, unsigned *port);

/* The listening socket, for the caller's poll loop. */
int kv_net_fd(const struct kv_net *net);

/* Accepts one pending connection (call when kv_net_fd() is readable) and reaps the threads of
 * connections that have ended. Never blocks. */
void kv_net_accept(struct kv_net *net);

/* Stops listening; ends every connection once its request in flight has been answered; joins
 * and frees them. NULL is ignored. */
void kv_net_stop(struct kv_net *net);

/* Splits "host:port" or "[v6]:port" into host and port (both NUL-terminated, in the caller's
 * buffers). Returns 0 or -EINVAL. */
int kv_split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen);

#endif /* KVNODE_H */
