/*
 * disconnect.h - the program's disconnect handler, as the REST API calls it.
 *
 * disconnect.c owns the handler errinj_set_disconnect_handler() registers; the route
 * `POST /v2/error_injection/disconnect/{ip}` calls it through here. It knows nothing else.
 */
#ifndef ERRINJ_DISCONNECT_H
#define ERRINJ_DISCONNECT_H

#include <stdbool.h>

/* Calls the program's disconnect handler with ip; false when none is registered. */
bool errinj__disconnect(const char *ip);

#endif /* ERRINJ_DISCONNECT_H */
