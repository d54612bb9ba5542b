/*
 * td_api.h - the server HTTP API (POST /api/<method>), Centrifugo-compatible.
 *
 * Pure request/response: a method name and a JSON body in, a JSON document and an HTTP
 * status out. Authentication happens before (td_api_authorized). Method-level failures are
 * HTTP 200 with {"error":{"code":..,"message":..}}, as in Centrifugo; malformed requests are
 * HTTP 400 and unknown methods 404, each with an error body.
 */
#ifndef TD_API_H
#define TD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "engine/td_hub.h"
#include "engine/td_yroom.h"
#include "http/td_http1.h"

/* td_api_authorized checks X-API-Key or "Authorization: apikey KEY" against the config. */
bool td_api_authorized(const struct td_config *cfg, const struct td_http_request *req);

/* Receives an API answer: the HTTP status and the JSON body (valid during the call only). */
typedef void (*td_api_done_cb)(void *ud, int status, const struct td_buf *body);

/*
 * td_api_call runs `method` with body[0..n) and calls done exactly once with the answer:
 * before returning for most methods, later for publish and broadcast into channels whose
 * history is durable (the answer waits for the commit), and for doc_state and doc_update
 * when the room must be loaded from the store or the update committed. yrooms serves
 * doc_state/doc_update (NULL: they answer 108 not available).
 */
void td_api_call(struct td_hub *hub, struct td_yrooms *yrooms, struct td_str method,
                 const char *body, size_t n, int64_t now_ms, int64_t uptime_s, td_api_done_cb done,
                 void *ud);

#endif
