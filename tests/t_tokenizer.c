/* t_tokenizer.c — the character-level tokenizer: the fixed ids, encode / decode round trips over
 * every task's texts, clear errors for characters and ids without a token, tokenizer.json
 * save → load (same ids, the HF fields in place) and every malformed file refused with a message
 * naming the file and the field, and the chat format's assistant-start index.  Files live in a
 * mkdtemp folder removed at the end. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "r1_tasks.h"
#include "r1_tokenizer.h"
#include "tap.h"

static char tmpdir[256];

static const char *at(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Encodes text into a fresh array (caller frees); *n tokens.  NULL on failure. */
static int32_t *enc(const r1_tokenizer *t, const char *text, int *n, r1_error *err)
{
    int32_t *ids = malloc((strlen(text) + 1) * sizeof *ids);
    if (r1_tokenizer_encode(t, text, ids, (int)strlen(text) + 1, n, err) != R1_OK) {
        free(ids);
        return NULL;
    }
    return ids;
}

static void test_builtin(const r1_tokenizer *t)
{
    is_int(r1_tokenizer_vocab_size(t), 128, "the built-in vocabulary has 128 ids");
    static const struct {
        int id;
        const char *text;
    } fixed[] = {
        {R1_TOK_PAD, "<|pad|>"},
        {R1_TOK_BOS, "<|bos|>"},
        {R1_TOK_EOS, "<|eos|>"},
        {R1_TOK_USER, "<|user|>"},
        {R1_TOK_ASSISTANT, "<|assistant|>"},
        {R1_TOK_THINK, "<think>"},
        {R1_TOK_THINK_END, "</think>"},
        {R1_TOK_ANSWER, "<answer>"},
        {R1_TOK_ANSWER_END, "</answer>"},
        {9, "\n"},
        {10, " "},
        {'0' - 22, "0"},
        {'A' - 22, "A"},
        {104, "~"},
        {105, "<|reserved_0|>"},
        {127, "<|reserved_22|>"},
    };
    int good = 1;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!r1_tokenizer_token(t, fixed[i].id) ||
            strcmp(r1_tokenizer_token(t, fixed[i].id), fixed[i].text) != 0) {
            diag("id %d is \"%s\"", fixed[i].id, r1_tokenizer_token(t, fixed[i].id));
            good = 0;
        }
    ok(good, "the documented ids hold the documented tokens");
    ok(r1_tokenizer_token(t, 128) == NULL && r1_tokenizer_token(t, -1) == NULL,
       "no token outside [0, 128)");
    good = 1;
    for (int k = 0; k < R1_TOK_NSPECIAL; k++)
        good = good && r1_tokenizer_special_id(t, k) == k && r1_tokenizer_is_special(t, k);
    ok(good, "the named special ids are their constants, and special");
    is_int(r1_tokenizer_special_id(t, R1_TOK_NSPECIAL), -1, "no special named past the list");
    ok(!r1_tokenizer_is_special(t, 9) && !r1_tokenizer_is_special(t, 60) &&
           r1_tokenizer_is_special(t, 110),
       "characters are not special, reserved ids are");

    /* every character is one token and decodes to itself */
    char all[100];
    int k = 0;
    all[k++] = '\n';
    for (int c = 32; c < 127; c++)
        all[k++] = (char)c;
    all[k] = '\0';
    int n;
    r1_error err = {0};
    int32_t *ids = enc(t, all, &n, &err);
    is_int(n, 96, "printable ASCII and newline: one token per character");
    good = ids && ids[0] == 9;
    for (int i = 1; ids && i < n; i++)
        good = good && ids[i] == R1_TOK_ASCII_FIRST + i - 1;
    ok(good, "character c has id c - 22");
    char *back = NULL;
    is_int(r1_tokenizer_decode(t, ids, n, &back, &err), R1_OK, "decoded");
    is_str(back, all, "... to the same text");
    free(back);
    free(ids);
}

static void test_encode(const r1_tokenizer *t)
{
    int n;
    r1_error err = {0};
    int32_t *ids = enc(t, "a<|eos|>b<think></think>", &n, &err);
    is_int(n, 5, "special-token texts are single tokens");
    ok(ids && ids[1] == R1_TOK_EOS && ids[3] == R1_TOK_THINK && ids[4] == R1_TOK_THINK_END,
       "... with their ids");
    free(ids);
    ids = enc(t, "<thin</think", &n, &err);
    is_int(n, 12, "an unfinished special text is characters");
    free(ids);
    is_int(r1_tokenizer_encode(t, "x<answer>y", NULL, 0, &n, &err), R1_OK, "ids NULL only counts");
    is_int(n, 3, "... 3 tokens");
    int32_t small[2];
    is_int(r1_tokenizer_encode(t, "hello", small, 2, &n, &err), R1_EINVAL,
           "a short buffer is an error");
    is_int(n, 5, "... that says how many ids are needed");
    like(err.msg, "5", "... in the message");

    static const struct {
        const char *text, *pos, *what;
    } bad[] = {
        {"abc\tdef", "byte 3", "'\\t' (0x09, a tab)"},
        {"caf\xc3\xa9", "byte 3", "0xc3 (not ASCII)"},
        {"x\ry", "byte 1", "carriage return"},
        {"\x01", "byte 0", "0x01 (a control character)"},
        {"1+1=2\n2+2=4\x7f", "byte 11", "0x7f"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t buf[32];
        err.msg[0] = '\0';
        is_int(r1_tokenizer_encode(t, bad[i].text, buf, 32, &n, &err), R1_EINVAL,
               "text %zu with an unknown character is refused", i);
        like(err.msg, bad[i].pos, "... the message gives the position");
        like(err.msg, bad[i].what, "... and the character");
    }

    int32_t out_of_range[3] = {10, 200, 11};
    char *s = (char *)1;
    is_int(r1_tokenizer_decode(t, out_of_range, 3, &s, &err), R1_EINVAL,
           "decoding an id outside the vocabulary fails");
    like(err.msg, "token 1: id 200", "... naming the position and the id");
    ok(s == NULL, "... with no text");
    int32_t neg[1] = {-1};
    is_int(r1_tokenizer_decode(t, neg, 1, &s, &err), R1_EINVAL, "a negative id fails too");
    int32_t every[128];
    for (int i = 0; i < 128; i++)
        every[i] = i;
    is_int(r1_tokenizer_decode(t, every, 128, &s, &err), R1_OK,
           "every id decodes (what an untrained model may sample)");
    free(s);
}

/* The chat format, and the round trip over every task's texts. */
static void test_chat(const r1_tokenizer *t)
{
    int32_t p[64], c[128];
    int np, nc, as = -1;
    r1_error err = {0};
    is_int(r1_tokenizer_encode_prompt(t, "What is 2+2?", p, 64, &np, &err), R1_OK,
           "generation prompt encoded");
    is_int(np, 12 + 4, "... prompt length + 4 specials");
    ok(p[0] == R1_TOK_BOS && p[1] == R1_TOK_USER && p[np - 2] == R1_TOK_ASSISTANT &&
           p[np - 1] == R1_TOK_THINK,
       "... <|bos|><|user|>PROMPT<|assistant|><think>");
    is_int(r1_tokenizer_encode_chat(t, "What is 2+2?", "2+2=4", "4", c, 128, &nc, &as, &err), R1_OK,
           "training sequence encoded");
    is_int(as, np, "assistant_start is the generation prompt's length");
    ok(memcmp(c, p, (size_t)np * sizeof *p) == 0, "... and the tokens before it are that prompt");
    is_int(nc - as, 5 + 1 + 4, "... after it: reasoning, answer and 4 specials");
    ok(c[as] == '2' - 22 && c[as + 5] == R1_TOK_THINK_END && c[as + 6] == R1_TOK_ANSWER &&
           c[nc - 2] == R1_TOK_ANSWER_END && c[nc - 1] == R1_TOK_EOS,
       "... the first trained token is the reasoning's first, the last is <|eos|>");
    char *s = NULL;
    r1_tokenizer_decode(t, c, nc, &s, &err);
    is_str(s,
           "<|bos|><|user|>What is 2+2?<|assistant|><think>2+2=4</think><answer>4</answer>"
           "<|eos|>",
           "the sequence decodes to the chat format");
    free(s);
    r1_tokenizer_decode(t, c + as, nc - as, &s, &err);
    is_str(s, "2+2=4</think><answer>4</answer><|eos|>",
           "the trained part decodes to the completion");
    free(s);
    is_int(r1_tokenizer_encode_chat(t, "a", "b", "c", c, 5, &nc, &as, &err), R1_EINVAL,
           "a short buffer is refused");
    is_int(nc, 11, "... with the needed count");
    is_int(r1_tokenizer_encode_chat(t, "ok", "r\tr", "a", c, 128, &nc, &as, &err), R1_EINVAL,
           "a tab in the reasoning is refused");
    like(err.msg, "reasoning: text byte 1", "... the message names the part and the position");

    /* every task, every difficulty, both languages */
    static int32_t ids[8192], again[8192];
    char full[16384];
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *task = r1_task_at(ti);
        int good = 1, count = 0;
        for (int d = 1; d <= r1_task_max_difficulty(task) && good; d++)
            for (int seed = 0; seed < 40 && good; seed++)
                for (int lang = R1_LANG_EN; lang <= R1_LANG_ES && good; lang++) {
                    r1_task_sample x;
                    int n, n2, a;
                    good = r1_task_generate(task, (uint64_t)seed, d, lang, &x, &err) == R1_OK &&
                           r1_tokenizer_encode_chat(t, x.prompt, x.reasoning, x.answer, ids, 8192,
                                                    &n, &a, &err) == R1_OK &&
                           r1_tokenizer_decode(t, ids, n, &s, &err) == R1_OK;
                    if (!good) {
                        diag("%s d%d seed %d: %s", r1_task_name(task), d, seed, err.msg);
                        break;
                    }
                    snprintf(full, sizeof full,
                             "<|bos|><|user|>%s<|assistant|><think>%s</think><answer>%s</answer>"
                             "<|eos|>",
                             x.prompt, x.reasoning, x.answer);
                    good = strcmp(s, full) == 0 &&
                           r1_tokenizer_encode(t, s, again, 8192, &n2, &err) == R1_OK && n2 == n &&
                           memcmp(ids, again, (size_t)n * sizeof *ids) == 0;
                    free(s);
                    count++;
                }
        ok(good, "%s: %d samples encode, decode to the same text, and re-encode to the same ids",
           r1_task_name(task), count);
    }
}

/* Rewrites the saved tokenizer.json through edit() into name and tries to load it. */
static void bad_file(const char *name, void (*edit)(json_t *root), r1_status want,
                     const char *field, const char *needle, const char *what)
{
    json_t *root = json_load_file(at("tokenizer.json"), 0, NULL);
    edit(root);
    json_dump_file(root, at(name), JSON_INDENT(1));
    json_decref(root);
    r1_tokenizer *t = (r1_tokenizer *)1;
    r1_error err = {0};
    is_int(r1_tokenizer_load(&t, at(name), &err), want, "%s: refused", what);
    ok(t == NULL, "%s: no handle", what);
    like(err.msg, name, "%s: the message names the file", what);
    like(err.msg, field, "%s: ... the field %s", what, field);
    if (needle)
        like(err.msg, needle, "%s: ... and says \"%s\"", what, needle);
    unlink(at(name));
}

static json_t *vocab_of(json_t *root)
{
    return json_object_get(json_object_get(root, "model"), "vocab");
}

static void e_out_of_range(json_t *r)
{
    json_object_set_new(vocab_of(r), "a", json_integer(500));
}
static void e_duplicate(json_t *r)
{
    json_object_set_new(vocab_of(r), "b", json_integer('a' - 22));
}
static void e_not_int(json_t *r)
{
    json_object_set_new(vocab_of(r), "c", json_string("x"));
}
static void e_bpe(json_t *r)
{
    json_object_set_new(json_object_get(r, "model"), "type", json_string("BPE"));
}
static void e_normalizer(json_t *r)
{
    json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "NFC"));
}
static void e_multichar(json_t *r)
{
    json_object_del(vocab_of(r), "a");
    json_object_set_new(vocab_of(r), "ab", json_integer('a' - 22));
}
static void e_missing_special(json_t *r)
{
    /* drop <|eos|> everywhere and give its id to a new reserved special */
    json_t *added = json_object_get(r, "added_tokens");
    json_object_del(vocab_of(r), "<|eos|>");
    json_object_set_new(vocab_of(r), "<|other|>", json_integer(2));
    json_object_set_new(json_array_get(added, 2), "content", json_string("<|other|>"));
}
static void e_mismatch(json_t *r)
{
    json_object_set_new(json_array_get(json_object_get(r, "added_tokens"), 1), "id",
                        json_integer(7));
}
static void e_no_model(json_t *r)
{
    json_object_del(r, "model");
}

static void test_files(const r1_tokenizer *t)
{
    r1_error err = {0};
    is_int(r1_tokenizer_save(t, tmpdir, &err), R1_OK, "saved into a folder");
    ok(access(at("tokenizer.json"), F_OK) == 0, "... as tokenizer.json");
    is_int(r1_tokenizer_save(t, at("other.json"), &err), R1_OK, "saved under a file name");

    /* beside it, what Hugging Face's loaders read: the special tokens' roles, the chat
     * template, and generation's token ids */
    json_error_t je0;
    json_t *tc = json_load_file(at("tokenizer_config.json"), JSON_REJECT_DUPLICATES, &je0);
    ok(tc != NULL, "a folder also gets tokenizer_config.json");
    is_str(json_string_value(json_object_get(tc, "bos_token")), "<|bos|>", "... bos_token");
    is_str(json_string_value(json_object_get(tc, "eos_token")), "<|eos|>", "... eos_token");
    is_str(json_string_value(json_object_get(tc, "pad_token")), "<|pad|>", "... pad_token");
    json_t *extra = json_object_get(tc, "additional_special_tokens");
    ok(json_array_size(extra) == 6 &&
           !strcmp(json_string_value(json_array_get(extra, 0)), "<|user|>") &&
           !strcmp(json_string_value(json_array_get(extra, 5)), "</answer>"),
       "... the chat tokens as additional special tokens");
    ok(json_object_size(json_object_get(tc, "added_tokens_decoder")) == 9 + 23,
       "... added_tokens_decoder lists every special token");
    const char *tpl = json_string_value(json_object_get(tc, "chat_template"));
    like(tpl, "{{ '<|user|>' + sys.text + m['content'] }}", "... a chat template: user turns");
    like(tpl, "{{ '<|assistant|><think>' }}", "... and the generation prompt stops after <think>");
    json_decref(tc);
    json_t *gc = json_load_file(at("generation_config.json"), JSON_REJECT_DUPLICATES, &je0);
    ok(gc && json_integer_value(json_object_get(gc, "bos_token_id")) == 1 &&
           json_integer_value(json_object_get(gc, "pad_token_id")) == 0 &&
           json_integer_value(json_array_get(json_object_get(gc, "eos_token_id"), 0)) == 2 &&
           json_integer_value(json_array_get(json_object_get(gc, "eos_token_id"), 1)) == 8,
       "generation_config.json: bos 1, pad 0, stops at <|eos|> and </answer>");
    json_decref(gc);

    json_error_t je;
    json_t *root = json_load_file(at("tokenizer.json"), JSON_REJECT_DUPLICATES, &je);
    ok(root != NULL, "the file is JSON");
    json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    is_str(json_string_value(json_object_get(model, "type")), "WordLevel", "model.type");
    is_int(json_object_size(json_object_get(model, "vocab")), 128, "model.vocab has 128 tokens");
    is_int(json_integer_value(json_object_get(json_object_get(model, "vocab"), "\n")), 9,
           "the newline is id 9");
    is_int(json_array_size(added), 9 + 23, "added_tokens: the 9 named and 23 reserved");
    ok(json_is_true(json_object_get(json_array_get(added, 0), "special")) &&
           json_is_false(json_object_get(json_array_get(added, 0), "normalized")),
       "... special, not normalized");
    ok(json_is_null(json_object_get(root, "normalizer")), "normalizer null");
    is_str(json_string_value(json_object_get(json_object_get(root, "pre_tokenizer"), "type")),
           "Split", "the pre-tokenizer splits");
    is_str(json_string_value(json_object_get(json_object_get(root, "decoder"), "type")), "Fuse",
           "the decoder fuses");
    json_decref(root);

    r1_tokenizer *u = NULL, *w = NULL;
    is_int(r1_tokenizer_load(&u, tmpdir, &err), R1_OK, "loaded from the folder");
    is_int(r1_tokenizer_load(&w, at("other.json"), &err), R1_OK, "loaded from a file name");
    int same = u && w && r1_tokenizer_vocab_size(u) == 128;
    for (int id = 0; same && id < 128; id++)
        same = strcmp(r1_tokenizer_token(u, id), r1_tokenizer_token(t, id)) == 0 &&
               strcmp(r1_tokenizer_token(w, id), r1_tokenizer_token(t, id)) == 0 &&
               r1_tokenizer_is_special(u, id) == r1_tokenizer_is_special(t, id);
    ok(same, "save -> load gives the same tokens and special flags");
    for (int k = 0; u && k < R1_TOK_NSPECIAL; k++)
        same = same && r1_tokenizer_special_id(u, k) == k;
    ok(same, "... and the same special ids");
    const char *text = "<|bos|><|user|>Cuanto es 7+9?<|assistant|><think>7+9=16</think>";
    int n1, n2;
    int32_t *a = enc(t, text, &n1, &err), *b = u ? enc(u, text, &n2, &err) : NULL;
    ok(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof *a) == 0,
       "... and the same ids for a text");
    free(a);
    free(b);
    r1_tokenizer_free(u);
    r1_tokenizer_free(w);
    r1_tokenizer_free(NULL);

    bad_file("range.json", e_out_of_range, R1_EFORMAT, "model.vocab", "500",
             "a vocab id out of range");
    bad_file("dup.json", e_duplicate, R1_EFORMAT, "model.vocab", "given to both",
             "two tokens with one id");
    bad_file("notint.json", e_not_int, R1_EFORMAT, "model.vocab[\"c\"]", "integer",
             "an id that is not an integer");
    bad_file("bpe.json", e_bpe, R1_EUNSUPPORTED, "model.type", "WordLevel", "a BPE model");
    bad_file("norm.json", e_normalizer, R1_EUNSUPPORTED, "normalizer", "null", "a normalizer");
    bad_file("multi.json", e_multichar, R1_EUNSUPPORTED, "model.vocab", "\"ab\"",
             "a multi-character word");
    bad_file("nospecial.json", e_missing_special, R1_EFORMAT, "added_tokens", "<|eos|>",
             "a missing special token");
    bad_file("mismatch.json", e_mismatch, R1_EFORMAT, "added_tokens[1]", "model.vocab",
             "an added token whose id differs from the vocab's");
    bad_file("nomodel.json", e_no_model, R1_EFORMAT, "model", "missing", "no model");

    FILE *f = fopen(at("broken.json"), "w");
    fputs("{\"model\": ", f);
    fclose(f);
    r1_tokenizer *x = NULL;
    is_int(r1_tokenizer_load(&x, at("broken.json"), &err), R1_EFORMAT, "truncated JSON refused");
    like(err.msg, "broken.json", "... naming the file");
    is_int(r1_tokenizer_load(&x, at("absent.json"), &err), R1_ENOTFOUND, "a missing file");
    like(err.msg, "absent.json", "... named");
    unlink(at("broken.json"));
    unlink(at("other.json"));
    unlink(at("tokenizer.json"));
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/t_tokenizer.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }
    r1_tokenizer *t = r1_tokenizer_new_builtin();
    if (!t) {
        printf("Bail out! out of memory\n");
        return 1;
    }
    test_builtin(t);
    test_encode(t);
    test_chat(t);
    test_files(t);
    r1_tokenizer_free(t);
    rmdir(tmpdir);
    return done_testing();
}
