/* Fuzz entry points: each takes one input, exercises one part of ember through its public API
 * and returns 0. A violated invariant (an error without a message, a status that disagrees with
 * the report, an output missing after success) aborts, so that the fuzzer records it as a
 * crash. The libFuzzer targets (fuzz/target.c) and the regression replay test
 * (tests/reliability/replay.c) call the same functions. */
#ifndef EMBER_FUZZ_ENTRY_H
#define EMBER_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

/* The bytes are a ModelProto: load (tensors up to 16 MiB, 4096 nodes), create a session
 * (1 thread, 256 MiB memory limit), run once on small made-up inputs (symbolic dims = 1)
 * unless the model mentions Loop. */
int ember_fuzz_model(const uint8_t *data, size_t size);
/* The bytes are a .npy file or a TensorProto: ember_tensor_load_memory. */
int ember_fuzz_tensor(const uint8_t *data, size_t size);
/* The first byte picks CSV / TSV / JSONL and the row shape, the rest is the file: the row
 * readers of `ember score` (fuzz/entry_score.c, tools/score_*.c). */
int ember_fuzz_score(const uint8_t *data, size_t size);

typedef struct ember_fuzz_target {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
} ember_fuzz_target;

/* The targets by name ("model", "tensor", ...), NULL-terminated. */
extern const ember_fuzz_target ember_fuzz_targets[];

#endif
