/*
 * td_doc_cli.h - `tandem doc ...`: operator commands on Yjs documents (merge, diff, sv, show,
 * stats, replay, edit), plus the editing-trace loader and replayer that the benchmark driver
 * (bench/crdt/td_crdtbench.c) shares.
 *
 * Trace format (/work/shared/traces): {startContent, endContent, txns:[{patches:[[pos, del,
 * ins]...]}]} with positions and delete counts in Unicode code points. The loader keeps the
 * patches in flat arrays; the replayer converts code points to the UTF-16 indices Yjs uses
 * by tracking where astral characters are.
 */
#ifndef TD_DOC_CLI_H
#define TD_DOC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/td_buf.h"
#include "crdt/td_ydoc.h"

struct td_doc_patch {
    uint32_t pos, del;         /* code points */
    uint32_t ins_off, ins_len; /* UTF-8 bytes in td_doc_trace.text */
};

struct td_doc_trace {
    struct td_doc_patch *patches;
    size_t npatches;
    size_t *txn_end; /* txn i covers patches [txn_end[i-1], txn_end[i]) */
    size_t ntxns;
    struct td_buf text; /* inserted text, then startContent, then endContent */
    size_t start_off, start_len, end_off, end_len;
};

/*
 * td_doc_trace_load reads a trace file (gzip or plain JSON) into t. Returns 0, or a negative
 * code with a one-line reason in err.
 */
int td_doc_trace_load(struct td_doc_trace *t, const char *path, char *err, size_t errlen);
void td_doc_trace_free(struct td_doc_trace *t);

/*
 * td_doc_trace_replay replays t as local edits into d on root "text", one transaction per
 * txn. If updates is not NULL, each transaction's update (in `version`) is appended to it as
 * a (varUint length, bytes) record; if update_cb is not NULL it is called with each update
 * instead. Returns 0 or a negative code (an edit failed).
 */
int td_doc_trace_replay(const struct td_doc_trace *t, struct td_ydoc *d, int version,
                        struct td_buf *updates);

/* td_doc_read_file reads a whole file (gunzipping if it starts with the gzip magic). */
int td_doc_read_file(const char *path, struct td_buf *out, char *err, size_t errlen);

/* td_doc_cli_main runs `tandem doc ...` (argv[0] = "tandem", argv[1] = "doc"); returns the
 * process exit status. */
int td_doc_cli_main(int argc, char **argv);

#endif
