/* A libFuzzer target: built once per entry point with -DFUZZ_ENTRY=ember_fuzz_<name>. */
#include "entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return FUZZ_ENTRY(data, size); }
