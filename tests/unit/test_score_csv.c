/* ember score: CSV records, fields and rows, with the exact error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "score_csv.h"

Test(score_csv, records_and_quotes) {
    const char *s = "a,b\n\"x\ny\",2\r\nlast";
    int64_t n, nl;
    size_t bytes = score_find_records(s, strlen(s), ',', false, 10, &n, &nl);
    cr_assert_eq(n, 2);
    cr_assert_eq(nl, 3); /* two line ends and the newline inside the quotes */
    cr_assert_eq(bytes, strlen("a,b\n\"x\ny\",2\r\n"));
    bytes = score_find_records(s, strlen(s), ',', true, 10, &n, &nl);
    cr_assert_eq(n, 3);
    cr_assert_eq(bytes, strlen(s));
    /* without quote handling (JSONL) the quoted newline ends a record */
    score_find_records(s, strlen(s), 0, true, 10, &n, &nl);
    cr_assert_eq(n, 4);
    /* an open quote waits for more input, or takes the rest at the end */
    const char *open = "1,\"abc\n";
    cr_assert_eq(score_find_records(open, strlen(open), ',', false, 10, &n, &nl), 0u);
    cr_assert_eq(n, 0);
    cr_assert_eq(score_record_content("a,b\r\n", 5), 3u);
    /* a quote inside an unquoted field is a plain character; "" inside quotes is a quote */
    const char *mid = "a\"b,1\n\"x\"\"\ny\",2\nz,3";
    bytes = score_find_records(mid, strlen(mid), ',', true, 10, &n, &nl);
    cr_assert_eq(n, 3);
    cr_assert_eq(nl, 3);
    /* a closing quote at the end of the buffer may be the first half of "" */
    const char *edge = "\"abc\"";
    cr_assert_eq(score_find_records(edge, strlen(edge), ',', false, 10, &n, &nl), 0u);
}

Test(score_csv, split) {
    const char *rec = "plain,\"quoted, with comma\",\"esc \"\"q\"\"\",,last";
    score_buf scratch = {0};
    score_field_text *f = NULL;
    size_t n = 0;
    char msg[128];
    cr_assert(score_csv_split(rec, strlen(rec), ',', &scratch, &f, &n, msg, sizeof msg), "%s",
              msg);
    cr_assert_eq(n, 5);
    cr_assert(f[1].len == 18 && memcmp(f[1].text, "quoted, with comma", 18) == 0);
    cr_assert(f[2].len == 7 && memcmp(f[2].text, "esc \"q\"", 7) == 0);
    cr_assert_eq(f[3].len, 0u);
    cr_assert_eq(f[4].start, strlen(rec) - 4);
    free(f);
    cr_assert(score_csv_split("a,", 2, ',', &scratch, &f, &n, msg, sizeof msg));
    cr_assert_eq(n, 2);
    free(f);
    cr_assert(!score_csv_split("a,\"b", 4, ',', &scratch, &f, &n, msg, sizeof msg));
    cr_assert_str_eq(msg, "3: unterminated quoted field");
    score_buf_free(&scratch);
}

/* Columns: id, x0, skip, x1 feeding one float input of 2 values. */
typedef struct fixture {
    score_column_dest dest[4];
    score_input_spec in;
    const char *names[4];
    score_csv_plan plan;
    float data[8];
    void *ptr;
    uint8_t nulls[4];
    score_rows rows;
    score_buf scratch;
    char msg[SCORE_MESSAGE_SIZE];
} fixture;

static void setup_fixture(fixture *fx, ember_dtype dtype) {
    memset(fx, 0, sizeof *fx);
    fx->dest[0] = (score_column_dest){SCORE_DEST_ID, 0};
    fx->dest[1] = (score_column_dest){0, 0};
    fx->dest[2] = (score_column_dest){SCORE_DEST_SKIP, 0};
    fx->dest[3] = (score_column_dest){0, 1};
    fx->in = (score_input_spec){.name = "x", .key = "x", .dtype = dtype,
                                .elem_size = ember_dtype_size(dtype), .row_elems = 2, .rank = 1,
                                .dims = {2}};
    fx->names[0] = "id";
    fx->names[1] = "a";
    fx->names[2] = "junk";
    fx->names[3] = "b";
    fx->plan = (score_csv_plan){.file = "f.csv", .delimiter = ',', .n_columns = 4,
                                .dest = fx->dest, .column_names = fx->names, .inputs = &fx->in,
                                .n_inputs = 1, .id_column = 0};
    fx->ptr = fx->data;
    fx->rows = (score_rows){.n_inputs = 1, .data = &fx->ptr, .max_rows = 4,
                            .null_rows = fx->nulls, .has_ids = true};
}

static void teardown_fixture(fixture *fx) {
    score_buf_free(&fx->scratch);
    score_buf_free(&fx->rows.id_text);
    score_buf_free(&fx->rows.id_ends);
}

static bool parse(fixture *fx, const char *rec, int64_t line) {
    return score_csv_parse_row(&fx->plan, rec, strlen(rec), line, &fx->rows, &fx->scratch,
                               fx->msg);
}

Test(score_csv, rows) {
    fixture fx;
    setup_fixture(&fx, EMBER_FLOAT);
    cr_assert(parse(&fx, "r1,1.5,anything \"here,-2e3", 2), "%s", fx.msg);
    fx.rows.n_rows++;
    cr_assert(parse(&fx, "\"r,2\", 0.25 ,\"q\"\"x\",\"7\"", 3), "%s", fx.msg);
    fx.rows.n_rows++;
    cr_assert(parse(&fx, ",nan,,inf", 4), "%s", fx.msg);
    fx.rows.n_rows++;
    cr_assert_eq(fx.data[0], 1.5f);
    cr_assert_eq(fx.data[1], -2000.0f);
    cr_assert_eq(fx.data[2], 0.25f);
    cr_assert_eq(fx.data[3], 7.0f);
    cr_assert(isnan(fx.data[4]) && isinf(fx.data[5]));
    size_t len;
    const char *id = score_rows_id(&fx.rows, 1, &len);
    cr_assert(len == 3 && memcmp(id, "r,2", 3) == 0);
    id = score_rows_id(&fx.rows, 2, &len);
    cr_assert_eq(len, 0u);
    teardown_fixture(&fx);
}

Test(score_csv, messages) {
    fixture fx;
    setup_fixture(&fx, EMBER_FLOAT);
    struct {
        const char *rec;
        const char *msg;
    } cases[] = {
        {"r,1,2", "f.csv:9:6: expected 4 fields, found 3"},
        {"r,1,2,3,4", "f.csv:9:9: expected 4 fields, found 5"},
        {"r,1,2,3,", "f.csv:9:9: expected 4 fields, found 5"},
        {"r,x1,2,3", "f.csv:9:3: field 2 ('a'): 'x1' is not a number"},
        {"r,,2,3", "f.csv:9:3: field 2 ('a'): empty value"},
        {"r,1,2,", "f.csv:9:7: field 4 ('b'): empty value"},
        {"r,1,2,\"3", "f.csv:9:7: field 4 ('b'): unterminated quoted field"},
        {"r,\"1\"x,2,3", "f.csv:9:6: field 2 ('a'): unexpected text after a closing quote"},
        {"r,1,2,1.5.5", "f.csv:9:7: field 4 ('b'): '1.5.5' is not a number"},
        {"r,1,2,\"3\n4\"", "f.csv:9:7: field 4 ('b'): '3?4' is not a number"},
        {"\"r\n\",1,2,x", "f.csv:10:7: field 4 ('b'): 'x' is not a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert(!parse(&fx, cases[i].rec, 9), "'%s' accepted", cases[i].rec);
        cr_assert_str_eq(fx.msg, cases[i].msg);
    }
    teardown_fixture(&fx);
}

Test(score_csv, integer_messages) {
    fixture fx;
    setup_fixture(&fx, EMBER_INT8);
    cr_assert(parse(&fx, "r,-128,x,127", 1), "%s", fx.msg);
    cr_assert(!parse(&fx, "r,128,x,1", 1));
    cr_assert_str_eq(fx.msg, "f.csv:1:3: field 2 ('a'): '128' is out of range for int8");
    cr_assert(!parse(&fx, "r,1e2,x,1", 1));
    cr_assert_str_eq(fx.msg, "f.csv:1:3: field 2 ('a'): '1e2' is not an integer");
    teardown_fixture(&fx);
}

Test(score_csv, id_of_a_bad_row) {
    fixture fx;
    setup_fixture(&fx, EMBER_FLOAT);
    const char *id;
    size_t len;
    const char *rec = "\"the id\",x";
    cr_assert(score_csv_row_id(&fx.plan, rec, strlen(rec), &fx.scratch, &id, &len));
    cr_assert(len == 6 && memcmp(id, "the id", 6) == 0);
    teardown_fixture(&fx);
}
