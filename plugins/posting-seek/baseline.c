/*
 * baseline.c -- posting-seek candidate "baseline": the oracle's kernel, unchanged, as a
 * plugin.
 *
 * Lance's PostingIterator::next (wand.rs, the Compressed arm): walk the first-doc skip
 * table one block at a time, then step one document at a time. Timed against the oracle it
 * shows the harness's noise floor (never kept); it is also the file to copy when starting a
 * candidate.
 */
#define PS_NAME "baseline"
#define PS_CPU  0
#include "ps_plugin.h"

static int ps__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const ps__state *s = state;
    PS_CHECK_CALL();
    const uint32_t *targets = inputs[0].data;
    uint32_t *found = outputs[0].data;
    const uint64_t length = s->n;
    uint64_t index = 0;
    for (uint64_t i = 0; i < inputs[0].count; i++) {
        const uint32_t least_id = targets[i];
        uint64_t block_idx = index / PS_BLOCK;
        while (block_idx + 1 < s->n_blocks && s->block_first[block_idx + 1] <= least_id)
            block_idx += 1;
        if (index < block_idx * PS_BLOCK) index = block_idx * PS_BLOCK;
        while (index < length && s->doc_ids[index] < least_id) index += 1;
        found[i] = index < length ? s->doc_ids[index] : PS_END;
    }
    return KB_OK;
}
