/*
 * td_ydocchan.h - Yjs documents over channels: the wire form of publication data in the
 * channels of a namespace with "yjs": true (docs/yjs.md, "Documents over channels").
 *
 * Design note. Such a channel `ns:R` is the Yjs room named exactly `ns:R` (td_yroom.h): the
 * room owns the document, its durable log and its snapshots. A publish into the channel is
 * decoded here and handed to the room, which validates it by applying it; what the channel
 * then publishes is the room's own update for that transaction (normalized: only what was
 * new, nothing for a duplicate), encoded here, so subscribers and history only ever see
 * valid, non-redundant updates, whether they came from the channel or from y-websocket.
 *
 * Wire form of publication data in these channels:
 *   - in: a JSON string holding the base64 (either alphabet, padding optional) of a Yjs v1
 *     update (JSON clients, server API), or, when the data is not JSON at all, the raw update
 *     bytes (protobuf clients);
 *   - out (what is published, kept in history and delivered to every codec): a JSON string
 *     holding the standard padded base64 of the normalized v1 update, so that JSON and
 *     protobuf subscribers can share one channel and its history.
 *
 * Nothing here does I/O or keeps state.
 */
#ifndef TD_YDOCCHAN_H
#define TD_YDOCCHAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "core/td_str.h"

/*
 * td_ydocchan_decode appends to out the update bytes that publication data carries (see
 * above). Returns 0, or TD_EPROTO when data is JSON but not a string of base64.
 */
int td_ydocchan_decode(struct td_str data, struct td_buf *out);

/*
 * td_ydocchan_encode appends to out the publication data for the v1 update[0..n): a JSON
 * string holding its standard padded base64.
 */
void td_ydocchan_encode(const uint8_t *update, size_t n, struct td_buf *out);

#endif
