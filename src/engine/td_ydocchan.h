/*
 * td_ydocchan.h - Yjs documents over channels: the channels of a namespace with "yjs": true
 * (docs/yjs.md, "Documents over channels") carry Yjs updates as publications.
 *
 * Design note. Every such channel has one td_ydoc, created on the first publish and freed
 * when the hub frees the channel. A publish is first applied to that document, which
 * validates it (a malformed update leaves the document unchanged and is refused); what is
 * then published is the document's own update for that transaction (normalized: only what
 * was new, nothing for a duplicate), so subscribers and history only ever see valid,
 * non-redundant updates.
 *
 * Wire form of publication data in these channels:
 *   - in: a JSON string holding the base64 (either alphabet, padding optional) of a Yjs v1
 *     update (JSON clients, server API), or, when the data is not JSON at all, the raw update
 *     bytes (protobuf clients);
 *   - out (what is published, stored and delivered to every codec): a JSON string holding
 *     the standard padded base64 of the normalized v1 update, so that JSON and protobuf
 *     subscribers can share one channel and its history.
 *
 * The document lives in the channel (struct td_channel.ydoc) and is freed with it. Like the
 * hub, this is used from the loop thread only. Nothing here does I/O.
 */
#ifndef TD_YDOCCHAN_H
#define TD_YDOCCHAN_H

#include "config/td_config.h"
#include "core/td_buf.h"
#include "core/td_str.h"

struct td_ydoc;

/*
 * td_ydocchan_decode appends to out the update bytes that publication data carries (see
 * above). Returns 0, or TD_EPROTO when data is JSON but not a string of base64.
 */
int td_ydocchan_decode(struct td_str data, struct td_buf *out);

/*
 * td_ydocchan_apply applies the update carried by data to doc and appends to out the data to
 * publish: the normalized update as a JSON string of base64, or nothing when the update
 * changed nothing. Returns 0, TD_EPROTO (not an update, or malformed) or TD_ELIMIT (past
 * the document's limits); on error doc is unchanged and nothing is appended.
 */
int td_ydocchan_apply(struct td_ydoc *doc, struct td_str data, struct td_buf *out);

/*
 * td_ydocchan_publish is td_ydocchan_apply on *doc, creating it empty on first use (with
 * yjs.max_update_size and yjs.max_document_size of cfg as its limits; the caller frees it
 * with td_ydoc_del). Every refusal is reported as TD_EPROTO (error 107 to the caller).
 */
int td_ydocchan_publish(struct td_ydoc **doc, const struct td_config *cfg, struct td_str data,
                        struct td_buf *out);

/*
 * td_ydocchan_restore applies one publication restored from the store (in offset order) to
 * *doc (created on first use), so that the document is rebuilt at startup. Errors are
 * ignored.
 */
void td_ydocchan_restore(struct td_ydoc **doc, const struct td_config *cfg, struct td_str data);

#endif
