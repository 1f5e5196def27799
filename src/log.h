/*
 * log.h - the library's one logging path (util layer).
 *
 * log.c owns both kinds of lines the library writes: the line each fire logs, which goes to the
 * function errinj_set_log() installed (stderr by default, tagged with the shard), and the rare
 * diagnostics of the library itself (a point missing from the catalogue, out of memory while
 * listing), which go to stderr whatever errinj_set_log() says, because they report a fault of
 * the program rather than an injection.
 */
#ifndef ERRINJ_LOG_H
#define ERRINJ_LOG_H

/* Logs one fire's line through errinj_set_log()'s function, tagged with shard (the firing
 * thread's: the events layer knows it, this one does not). Costs one relaxed load when logging
 * is off. */
void errinj__log_fire(unsigned shard, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a diagnostic of the library to stderr, with a line feed. */
void errinj__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* ERRINJ_LOG_H */
