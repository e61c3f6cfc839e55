/* ember score: JSON Lines rows and their error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "score_jsonl.h"

typedef struct fixture {
    score_input_spec in[2];
    score_jsonl_plan plan;
    float a[8], b[8];
    void *ptrs[2];
    uint8_t nulls[4];
    score_rows rows;
    score_buf scratch;
    char msg[SCORE_MESSAGE_SIZE];
} fixture;

/* input "img" [1, 2, 2] and input "s" (one value a row, key "scalar"), id key "id" */
static void setup_fixture(fixture *fx) {
    memset(fx, 0, sizeof *fx);
    fx->in[0] = (score_input_spec){.name = "img", .key = "img", .dtype = EMBER_FLOAT,
                                   .elem_size = 4, .row_elems = 4, .rank = 3, .dims = {1, 2, 2}};
    fx->in[1] = (score_input_spec){.name = "s", .key = "scalar", .dtype = EMBER_FLOAT,
                                   .elem_size = 4, .row_elems = 1, .rank = 0};
    fx->plan = (score_jsonl_plan){.file = "f.jsonl", .inputs = fx->in, .n_inputs = 2,
                                  .id_key = "id"};
    fx->ptrs[0] = fx->a;
    fx->ptrs[1] = fx->b;
    fx->rows = (score_rows){.n_inputs = 2, .data = fx->ptrs, .max_rows = 2,
                            .null_rows = fx->nulls, .has_ids = true};
}

static bool parse(fixture *fx, const char *rec) {
    return score_jsonl_parse_row(&fx->plan, rec, strlen(rec), 3, &fx->rows, &fx->scratch,
                                 fx->msg);
}

static void teardown_fixture(fixture *fx) {
    score_buf_free(&fx->scratch);
    score_buf_free(&fx->rows.id_text);
    score_buf_free(&fx->rows.id_ends);
}

Test(score_jsonl, rows) {
    fixture fx;
    setup_fixture(&fx);
    cr_assert(parse(&fx, " {\"id\": \"a\\\"b\", \"img\": [[[1, 2], [3, 4]]], \"scalar\": -1.5e0,"
                         " \"extra\": {\"x\": [true, null, \"}\"]}} "), "%s", fx.msg);
    fx.rows.n_rows++;
    cr_assert(parse(&fx, "{\"scalar\":[NaN],\"img\":[5,6,7,8],\"id\":{\"k\":1}}"), "%s", fx.msg);
    fx.rows.n_rows++;
    float want[] = {1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert(memcmp(fx.a, want, sizeof want) == 0);
    cr_assert_eq(fx.b[0], -1.5f);
    cr_assert(isnan(fx.b[1]));
    size_t len;
    const char *id = score_rows_id(&fx.rows, 0, &len);
    cr_assert(len == 6 && memcmp(id, "\"a\\\"b\"", 6) == 0, "%.*s", (int)len, id);
    id = score_rows_id(&fx.rows, 1, &len);
    cr_assert(len == 7 && memcmp(id, "{\"k\":1}", 7) == 0);
    teardown_fixture(&fx);
}

Test(score_jsonl, messages) {
    fixture fx;
    setup_fixture(&fx);
    struct {
        const char *rec, *msg;
    } cases[] = {
        {"{\"img\":[1,2,3,4],\"id\":1}", "f.jsonl:3:1: missing key 'scalar'"},
        {"{\"img\":[1,2,3,4],\"scalar\":1}", "f.jsonl:3:1: missing key 'id'"},
        {"{\"img\":[1,2,3],\"scalar\":1,\"id\":1}",
         "f.jsonl:3:8: 'img': expected an array of 4, found 3"},
        {"{\"img\":[[[1,2],[3]]],\"scalar\":1,\"id\":1}",
         "f.jsonl:3:16: 'img': expected an array of 2, found 1 (shape [1, 2, 2])"},
        {"{\"img\":[1,2,3,4],\"scalar\":\"1\",\"id\":1}",
         "f.jsonl:3:27: 'scalar': expected a number, found a string"},
        {"{\"img\":[1,2,3,4],\"scalar\":1x,\"id\":1}", "f.jsonl:3:27: 'scalar': '1x' is not a number"},
        {"{\"img\":[1,2,3,4],\"scalar\":nan,\"id\":1}",
         "f.jsonl:3:27: 'scalar': 'nan' is not a number"},
        {"{\"img\":[1,2,3,4],\"img\":[1,2,3,4]}", "f.jsonl:3:18: duplicate key 'img'"},
        {"{\"img\":[1,2,3,4] \"scalar\":1}", "f.jsonl:3:18: expected ',' or '}'"},
        {"[1]", "f.jsonl:3:1: expected a JSON object, found an array"},
        {"{\"img\":[1,2,3,4],\"scalar\":1,\"id\":1} x", "f.jsonl:3:37: unexpected text after the object"},
        {"{\"id\":\"open", "f.jsonl:3:7: unterminated string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert(!parse(&fx, cases[i].rec), "'%s' accepted", cases[i].rec);
        cr_assert_str_eq(fx.msg, cases[i].msg);
    }
    teardown_fixture(&fx);
}

Test(score_jsonl, id_of_a_bad_row) {
    fixture fx;
    setup_fixture(&fx);
    const char *rec = "{\"id\":\"keep\",\"img\":[1]}", *id;
    size_t len;
    cr_assert(score_jsonl_row_id(&fx.plan, rec, strlen(rec), &id, &len));
    cr_assert(len == 6 && memcmp(id, "\"keep\"", 6) == 0);
    teardown_fixture(&fx);
}

Test(score_jsonl, unescape) {
    score_buf out = {0};
    const char *tok = "\"a\\n\\u00e9\\ud83d\\ude00\\\"\"";
    cr_assert(score_json_unescape(tok, strlen(tok), &out));
    cr_assert_eq(out.len, strlen("a\n\xc3\xa9\xf0\x9f\x98\x80\""));
    cr_assert(memcmp(out.data, "a\n\xc3\xa9\xf0\x9f\x98\x80\"", out.len) == 0);
    out.len = 0;
    cr_assert(!score_json_unescape("\"\\x\"", 4, &out));
    score_buf_free(&out);
}
