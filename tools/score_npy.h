/* ember score: .npy headers (format 1.0 to 3.0) and element conversion. */
#ifndef EMBER_TOOLS_SCORE_NPY_H
#define EMBER_TOOLS_SCORE_NPY_H

#include "score.h"

typedef struct score_npy_header {
    ember_dtype dtype; /* EMBER_UNDEFINED when the descr is not a supported numeric type */
    char descr[32];
    bool swap; /* big-endian data: bytes are swapped on the way in */
    bool fortran_order;
    int rank;
    int64_t dims[EMBER_MAX_RANK];
    size_t data_offset; /* header bytes */
    size_t elem_size;
} score_npy_header;

/* Parse the header at the start of [data, data + len). Returns 1 when parsed, 0 when more bytes
 * are needed (*need says how many in total), -1 on a malformed header (message in msg). */
int score_npy_parse_header(const void *data, size_t len, score_npy_header *h, size_t *need,
                           char *msg, size_t msg_size);

/* Format a version 1.0 header for `dtype` and `dims`. With total_len > 0 the header is padded
 * to exactly that many bytes (to rewrite it in place later); otherwise it gets room for a row
 * count of up to 20 digits. Returns the header length, 0 if it does not fit or the type has
 * no npy name. */
size_t score_npy_format_header(ember_dtype dtype, const int64_t *dims, int rank,
                               size_t total_len, char *out, size_t size);

/* Convert n elements from npy storage (src_type, byte-swapped if `swap`) to dst_type.
 * src_stride / dst_stride are in elements. Returns false at the first element that does not
 * fit the destination type (an integer out of range, a non-integral float for an integer
 * input, a NaN for an integer), with *bad its index. */
bool score_npy_convert(ember_dtype src_type, bool swap, const void *src, ember_dtype dst_type,
                       void *dst, int64_t n, int64_t *bad);

/* True if score_npy_convert can feed dst_type from src_type. */
bool score_npy_convertible(ember_dtype src_type, ember_dtype dst_type);

#endif
