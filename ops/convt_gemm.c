/* ConvTranspose on the packed GEMM with a gathering col2im (see convt_gemm.h).
 *
 * Work items are (group, run of whole images, block of output channels). An item copies its
 * images' input channels side by side into a panel (columns: image after image), multiplies
 * the packed W^T rows of its channel block by it into col, then each output vector of each
 * image and channel sums bias + its col entries, found through the table (em_ct_table: the tap
 * and input position of each contribution; its col offset is tap x row stride + position). */
#include "convt_gemm.h"

#include <stdlib.h>
#include <string.h>

#include "conv_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define CT_X86 1
#include "simd512.h"
#else
#define CT_X86 0
#endif

/* One image's col (8 output channels) and input panel each stay under this; an item's panel
 * and col together under CT_ITEM_BYTES (L2 is 2 MiB here). */
#define CT_IMAGE_BYTES (1024u << 10)
#define CT_ITEM_BYTES (1u << 20)
/* Largest gather table (entries); the per-image col2im is used beyond it. */
#define CT_MAX_TABLE (1 << 18)
/* Most contributions per output considered (a 3-D kernel of stride 1 and size 4 has 64). */
#define CT_MAX_SLOTS 64

bool em_ct_available(void) {
    return CT_X86 && em_cg_available();
}

/* Contributions along one dimension: out[o] receives in[i] through tap k when
 * o = i * s - pb + k * d. */
static int64_t dim_count(const em_ct_geom *g, int dim, int64_t o) {
    int64_t n = 0;
    for (int64_t k = 0; k < g->k[dim]; k++) {
        const int64_t t = o + g->pb[dim] - k * g->d[dim];
        if (t >= 0 && t % g->s[dim] == 0 && t / g->s[dim] < g->in[dim]) n++;
    }
    return n;
}

static int64_t dim_max_count(const em_ct_geom *g, int dim) {
    int64_t most = 0;
    for (int64_t o = 0; o < g->out[dim]; o++) {
        const int64_t n = dim_count(g, dim, o);
        if (n > most) most = n;
    }
    return most;
}

static int64_t spatial(const int64_t *v) {
    return v[0] * v[1] * v[2];
}

static int64_t max_slots(const em_ct_geom *g) {
    return dim_max_count(g, 0) * dim_max_count(g, 1) * dim_max_count(g, 2);
}

bool em_ct_eligible(const em_ct_geom *g) {
    if (!em_ct_available() || g->G < 1 || g->C <= 0 || g->M <= 0 || g->C % g->G || g->M % g->G)
        return false;
    for (int i = 0; i < 3; i++)
        if (g->in[i] <= 0 || g->out[i] <= 0 || g->k[i] <= 0 || g->s[i] <= 0 || g->d[i] <= 0)
            return false;
    const int64_t Cg = g->C / g->G, Mg = g->M / g->G, k_sz = spatial(g->k);
    const int64_t in_sz = spatial(g->in), out_sz = spatial(g->out);
    const int64_t rows8 = (Mg < 8 ? Mg : 8) * k_sz;
    if ((double)rows8 * (double)(in_sz + 32) * 4 > CT_IMAGE_BYTES) return false;
    if ((double)Cg * (double)(in_sz + 32) * 4 > CT_IMAGE_BYTES) return false;
    const int64_t slots = max_slots(g);
    if (slots < 1 || slots > CT_MAX_SLOTS) return false;
    return (out_sz + 15) / 16 * 16 * slots <= CT_MAX_TABLE;
}

int64_t em_ct_packed_floats(int64_t C, int64_t Mg, int64_t k_sz, int64_t G) {
    return em_cg_packed_floats(Mg * k_sz, C / G) * G;
}

bool em_ct_pack(const float *w, int64_t C, int64_t Mg, int64_t k_sz, int64_t G, float *dst) {
    const int64_t Cg = C / G, rows = Mg * k_sz, per = em_cg_packed_floats(rows, Cg);
    float *t = malloc((size_t)(rows * Cg) * sizeof(float));
    if (!t) return false;
    for (int64_t grp = 0; grp < G; grp++) {
        const float *wg = w + grp * Cg * rows; /* Cg rows of Mg x k_sz */
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t r = 0; r < rows; r++) t[r * Cg + c] = wg[c * rows + r];
        em_cg_pack(t, rows, Cg, dst + grp * per);
    }
    free(t);
    return true;
}

typedef struct ct_job {
    const em_ct_geom *g;
    const float *x, *packed, *bias;
    float *y;
    int64_t Cg, Mg, k_sz, in_sz, out_sz;
    int64_t images, n_runs; /* images per run of images, runs */
    int64_t m_block, n_mblocks;
    int64_t ld; /* row stride of the input panel and of col */
    const em_ct_table *table;
    /* Few images (split_image): the one image, group and channel block in progress, whose
     * whole col (rows x ld) is computed by column panels, then gathered by output ranges. */
    int64_t n, grp, m0, m1, panel;
    float *col;
    char *scratch;
    size_t slot_bytes;
} ct_job;

size_t em_ct_table_bytes(const em_ct_geom *g) {
    const int64_t n_vec = (spatial(g->out) + 15) / 16;
    return 2 * (size_t)(n_vec * max_slots(g) * 16) * sizeof(int32_t);
}

/* The contributions of each output, in tap order: for each input position, the outputs each
 * tap reaches (o = i * s - pb + k * d per dimension) get the (tap, position) in their next free
 * slot. No division, one pass over taps x input positions. */
void em_ct_table_fill(const em_ct_geom *g, int32_t *mem, em_ct_table *t) {
    const int64_t out_sz = spatial(g->out), n_vec = (out_sz + 15) / 16;
    t->slots = max_slots(g);
    t->tap = mem;
    t->pos = mem + n_vec * t->slots * 16;
    for (int64_t i = 0; i < n_vec * t->slots * 16; i++) t->tap[i] = -1;
    int64_t tap = 0;
    for (int64_t kz = 0; kz < g->k[0]; kz++)
        for (int64_t ky = 0; ky < g->k[1]; ky++)
            for (int64_t kx = 0; kx < g->k[2]; kx++, tap++) {
                int64_t p = 0;
                for (int64_t iz = 0; iz < g->in[0]; iz++) {
                    const int64_t oz = iz * g->s[0] - g->pb[0] + kz * g->d[0];
                    if (oz < 0 || oz >= g->out[0]) {
                        p += g->in[1] * g->in[2];
                        continue;
                    }
                    for (int64_t iy = 0; iy < g->in[1]; iy++) {
                        const int64_t oy = iy * g->s[1] - g->pb[1] + ky * g->d[1];
                        if (oy < 0 || oy >= g->out[1]) {
                            p += g->in[2];
                            continue;
                        }
                        const int64_t row = (oz * g->out[1] + oy) * g->out[2];
                        for (int64_t ix = 0; ix < g->in[2]; ix++, p++) {
                            const int64_t ox = ix * g->s[2] - g->pb[2] + kx * g->d[2];
                            if (ox < 0 || ox >= g->out[2]) continue;
                            const int64_t o = row + ox;
                            int64_t v = o / 16 * t->slots * 16 + o % 16;
                            while (t->tap[v] >= 0) v += 16; /* next free slot */
                            t->tap[v] = (int32_t)tap;
                            t->pos[v] = (int32_t)p;
                        }
                    }
                }
            }
}

#if CT_X86
/* y[o] = bias + the col entries of output o, for the out_sz outputs of one image and channel;
 * col points at the channel's first tap row, at the image's first column. */
static EM_TARGET_512 void gather_outputs(const ct_job *j, const float *col, float bias, float *y,
                                         int64_t o0, int64_t o1) {
    const __m512i zero_i = _mm512_setzero_si512(), ld = _mm512_set1_epi32((int32_t)j->ld);
    for (int64_t o = o0; o < o1; o += 16) {
        const __mmask16 m = o1 - o >= 16 ? 0xffff : (__mmask16)((1u << (o1 - o)) - 1);
        const int64_t slots = j->table->slots, v = (o / 16) * slots * 16;
        const int32_t *tap = j->table->tap + v, *pos = j->table->pos + v;
        __m512 acc = _mm512_set1_ps(bias);
        for (int64_t s = 0; s < slots; s++) {
            const __m512i t = _mm512_loadu_si512((const void *)(tap + s * 16));
            const __mmask16 valid = _mm512_cmpge_epi32_mask(t, zero_i);
            const __m512i i = _mm512_add_epi32(_mm512_mullo_epi32(t, ld),
                                               _mm512_loadu_si512((const void *)(pos + s * 16)));
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, i, col, 4);
            acc = _mm512_mask_add_ps(acc, valid, acc, v);
        }
        _mm512_mask_storeu_ps(y + o, m, acc);
    }
}

/* Items: (grp * n_runs + run) * n_mblocks + mblock. */
static void ct_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const ct_job *j = ctx;
    const em_ct_geom *g = j->g;
    float *panel = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
    float *col = panel + j->Cg * j->ld;
    const int64_t rows = j->Mg * j->k_sz, mpad = (rows + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    const int64_t per = em_cg_packed_floats(rows, j->Cg);
    int64_t last_run = -1;
    for (int64_t it = begin; it < end; it++) {
        const int64_t mb = it % j->n_mblocks, rest = it / j->n_mblocks;
        const int64_t run = rest % j->n_runs, grp = rest / j->n_runs;
        const int64_t n0 = run * j->images;
        const int64_t n1 = n0 + j->images < g->batch ? n0 + j->images : g->batch;
        const int64_t m0 = mb * j->m_block, m1 = m0 + j->m_block < j->Mg ? m0 + j->m_block : j->Mg;
        if (n0 >= n1 || m0 >= m1) continue;
        const int64_t cols = (n1 - n0) * j->in_sz;
        if (rest != last_run) { /* the panel: each input channel's planes side by side */
            for (int64_t c = 0; c < j->Cg; c++)
                for (int64_t n = n0; n < n1; n++)
                    memcpy(panel + c * j->ld + (n - n0) * j->in_sz,
                           j->x + (n * g->C + grp * j->Cg + c) * j->in_sz,
                           (size_t)j->in_sz * sizeof(float));
            last_run = rest;
        }
        em_cg_gemm(j->packed + grp * per, mpad, m0 * j->k_sz, (m1 - m0) * j->k_sz, j->Cg, panel,
                   cols, EM_CG_NR, j->ld, j->ld, col, j->ld, NULL);
        for (int64_t n = n0; n < n1; n++)
            for (int64_t m = m0; m < m1; m++) {
                const int64_t mm = grp * j->Mg + m;
                gather_outputs(j, col + (m - m0) * j->k_sz * j->ld + (n - n0) * j->in_sz,
                               j->bias ? j->bias[mm] : 0.0f, j->y + (n * g->M + mm) * j->out_sz, 0,
                               j->out_sz);
            }
    }
}

/* Phase 1 of split_image: col columns [c0, c1) of image n, group grp, channels [m0, m1). */
static void ct_split_gemm(void *ctx, int slot, int64_t begin, int64_t end) {
    (void)slot;
    const ct_job *j = ctx;
    const em_ct_geom *g = j->g;
    const int64_t rows = j->Mg * j->k_sz, mpad = (rows + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    const float *xg = j->x + (j->n * g->C + j->grp * j->Cg) * j->in_sz;
    for (int64_t p = begin; p < end; p++) {
        const int64_t c0 = p * j->panel;
        const int64_t c1 = c0 + j->panel < j->in_sz ? c0 + j->panel : j->in_sz;
        em_cg_gemm(j->packed + j->grp * em_cg_packed_floats(rows, j->Cg), mpad, j->m0 * j->k_sz,
                   (j->m1 - j->m0) * j->k_sz, j->Cg, xg + c0, c1 - c0, EM_CG_NR, j->in_sz, j->in_sz,
                   j->col + c0, j->ld, NULL);
    }
}

/* Phase 2: items (channel, run of 16-output vectors). */
#define CT_SPLIT_VECTORS 8
static EM_TARGET_512 void ct_split_gather(void *ctx, int slot, int64_t begin, int64_t end) {
    (void)slot;
    const ct_job *j = ctx;
    const em_ct_geom *g = j->g;
    const int64_t n_vec = (j->out_sz + 15) / 16;
    const int64_t runs = (n_vec + CT_SPLIT_VECTORS - 1) / CT_SPLIT_VECTORS;
    for (int64_t it = begin; it < end; it++) {
        const int64_t m = j->m0 + it / runs, v0 = it % runs * CT_SPLIT_VECTORS * 16;
        const int64_t v1 =
            v0 + CT_SPLIT_VECTORS * 16 < j->out_sz ? v0 + CT_SPLIT_VECTORS * 16 : j->out_sz;
        const int64_t mm = j->grp * j->Mg + m;
        gather_outputs(j, j->col + (m - j->m0) * j->k_sz * j->ld, j->bias ? j->bias[mm] : 0.0f,
                       j->y + (j->n * g->M + mm) * j->out_sz, v0, v1);
    }
}

/* Still fewer items than threads (an image or two of large planes and few channels): each
 * image, group and block of channels in turn, the GEMM split by input columns, then the
 * gather by output ranges. */
static ember_status split_image(ct_job *j, em_exec *ex, int threads, ember_error *err) {
    const em_ct_geom *g = j->g;
    j->ld = em_cg_panel_stride(j->in_sz);
    const int64_t chan_bytes = j->k_sz * j->ld * (int64_t)sizeof(float);
    j->m_block = j->Mg;
    if (j->Mg * chan_bytes > CT_ITEM_BYTES) j->m_block = CT_ITEM_BYTES / chan_bytes / 8 * 8;
    if (j->m_block < 8) j->m_block = j->Mg < 8 ? j->Mg : 8;
    j->panel = ((j->in_sz + threads - 1) / threads + 15) / 16 * 16;
    const int64_t n_panels = (j->in_sz + j->panel - 1) / j->panel;
    const int64_t runs = ((j->out_sz + 15) / 16 + CT_SPLIT_VECTORS - 1) / CT_SPLIT_VECTORS;
    j->col = em_exec_scratch(ex, (size_t)(j->m_block * chan_bytes), err);
    if (!j->col) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    for (j->n = 0; j->n < g->batch; j->n++)
        for (j->grp = 0; j->grp < g->G; j->grp++)
            for (j->m0 = 0; j->m0 < j->Mg; j->m0 += j->m_block) {
                j->m1 = j->m0 + j->m_block < j->Mg ? j->m0 + j->m_block : j->Mg;
                em_parallel_slots(ex, n_panels, ct_split_gemm, j);
                em_parallel_slots(ex, (j->m1 - j->m0) * runs, ct_split_gather, j);
            }
    return EMBER_OK;
}
#endif

ember_status em_ct_run(const em_ct_geom *g, const float *x, const float *packed,
                       const em_ct_table *table, const float *bias, float *y, em_exec *ex,
                       ember_error *err) {
#if CT_X86
    ct_job j = {.g = g, .x = x, .packed = packed, .bias = bias, .y = y};
    j.Cg = g->C / g->G;
    j.Mg = g->M / g->G;
    j.k_sz = spatial(g->k);
    j.in_sz = spatial(g->in);
    j.out_sz = spatial(g->out);
    if (g->batch == 0) return EMBER_OK;
    em_ct_table run_table;
    if (!table) { /* shapes unknown at creation: made for this run */
        int32_t *mem = em_exec_scratch(ex, em_ct_table_bytes(g), err);
        if (!mem) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_ct_table_fill(g, mem, &run_table);
        table = &run_table;
    }
    j.table = table;
    const int64_t img_x = j.Cg * (j.in_sz + 32) * 4;
    /* Output channel blocks: all of them, or multiples of 8 (whole packed panels) that fit. */
    const int64_t chan_bytes = j.k_sz * (j.in_sz + 32) * 4;
    j.m_block = j.Mg;
    if (j.Mg * chan_bytes + img_x > CT_ITEM_BYTES) {
        j.m_block = (CT_ITEM_BYTES - img_x) / chan_bytes / 8 * 8;
        if (j.m_block < 8) j.m_block = 8;
    }
    j.images = CT_ITEM_BYTES / (img_x + j.m_block * chan_bytes);
    if (j.images < 1) j.images = 1;
    if (j.images > g->batch) j.images = g->batch;
    const double macs = (double)g->batch * g->C * j.in_sz * j.Mg * j.k_sz;
    em_exec *par = macs < 1e5 ? NULL : ex; /* tiny: stay on the calling thread */
    const int threads = par ? em_exec_threads(par) : 1;
    j.n_mblocks = (j.Mg + j.m_block - 1) / j.m_block;
    j.n_runs = (g->batch + j.images - 1) / j.images;
    if (g->G * j.n_runs * j.n_mblocks < threads) { /* more, smaller runs of images */
        int64_t want = (threads + g->G * j.n_mblocks - 1) / (g->G * j.n_mblocks);
        if (want > g->batch) want = g->batch;
        j.images = (g->batch + want - 1) / want;
        j.n_runs = (g->batch + j.images - 1) / j.images;
    }
    if (g->G * j.n_runs * j.n_mblocks < threads && j.Mg >= 16) { /* then channel blocks */
        const int64_t want = (threads + g->G * j.n_runs - 1) / (g->G * j.n_runs);
        j.m_block = ((j.Mg + want - 1) / want + 7) / 8 * 8;
        j.n_mblocks = (j.Mg + j.m_block - 1) / j.m_block;
    }
    if (g->G * j.n_runs * j.n_mblocks < threads) return split_image(&j, ex, threads, err);
    j.ld = em_cg_panel_stride(j.images * j.in_sz);
    j.slot_bytes = ((size_t)((j.Cg + j.m_block * j.k_sz) * j.ld) * sizeof(float) + 63) / 64 * 64;
    const int64_t items = g->G * j.n_runs * j.n_mblocks;
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)em_slot_count(par, items), err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(par, items, ct_items, &j);
    return EMBER_OK;
#else
    (void)g, (void)x, (void)packed, (void)table, (void)bias, (void)y, (void)ex;
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "ConvTranspose: packed path not available");
#endif
}
