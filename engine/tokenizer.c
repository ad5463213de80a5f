/* tokenizer.c — the character-level tokenizer: the built-in vocabulary, encode / decode, the
 * chat format, and tokenizer.json written and read with jansson (see r1_tokenizer.h).
 *
 * Ownership: an r1_tokenizer owns its token texts; nothing is borrowed from the caller after a
 * call returns.  A tokenizer never changes after creation.
 *
 * Errors: encode / decode return R1_EINVAL with the position; the loader returns R1_EFORMAT or
 * R1_EUNSUPPORTED with a message "FILE: FIELD: what was expected", R1_ENOTFOUND / R1_EIO when
 * the file cannot be opened; the writer R1_EIO naming the path.  On failure no handle is
 * returned and nothing leaks. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "json_util.h"
#include "r1_tokenizer.h"

/* The loader's limit on the vocabulary: ids are int32 everywhere, but a character-level file
 * with more than this many tokens is certainly not one of ours. */
#define MAX_VOCAB 65536

/* HF's WordLevel needs an unknown-token name.  It is deliberately absent from the vocabulary,
 * so that HF, like r1lab, fails on a character it has no token for instead of mapping it to a
 * placeholder. */
#define UNK_TEXT "<|unk|>"

static const char *const special_text[R1_TOK_NSPECIAL] = {
    [R1_TOK_PAD] = R1_TEXT_PAD,
    [R1_TOK_BOS] = R1_TEXT_BOS,
    [R1_TOK_EOS] = R1_TEXT_EOS,
    [R1_TOK_USER] = R1_TEXT_USER,
    [R1_TOK_ASSISTANT] = R1_TEXT_ASSISTANT,
    [R1_TOK_THINK] = R1_TEXT_THINK,
    [R1_TOK_THINK_END] = R1_TEXT_THINK_END,
    [R1_TOK_ANSWER] = R1_TEXT_ANSWER,
    [R1_TOK_ANSWER_END] = R1_TEXT_ANSWER_END,
};

struct r1_tokenizer {
    int V;
    char **text;             /* [V] owned token texts */
    unsigned char *special;  /* [V] 1 for special tokens */
    int32_t byte_id[256];    /* the id of each one-character token, -1 when none */
    int sp[R1_TOK_NSPECIAL]; /* ids of the named special tokens */
    int32_t *multi;          /* ids of the special tokens, longest text first */
    int nmulti;
};

void r1_tokenizer_free(r1_tokenizer *t)
{
    if (!t)
        return;
    if (t->text)
        for (int i = 0; i < t->V; i++)
            free(t->text[i]);
    free(t->text);
    free(t->special);
    free(t->multi);
    free(t);
}

static r1_tokenizer *alloc_tokenizer(int V)
{
    r1_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->V = V;
    t->text = calloc((size_t)V, sizeof *t->text);
    t->special = calloc((size_t)V, 1);
    t->multi = calloc((size_t)V, sizeof *t->multi);
    if (!t->text || !t->special || !t->multi) {
        r1_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* Builds the lookup tables from text[] and special[]; the callers have checked the texts. */
static void index_tokens(r1_tokenizer *t)
{
    for (int c = 0; c < 256; c++)
        t->byte_id[c] = -1;
    for (int i = 0; i < R1_TOK_NSPECIAL; i++)
        t->sp[i] = -1;
    t->nmulti = 0;
    for (int id = 0; id < t->V; id++) {
        if (t->special[id]) {
            t->multi[t->nmulti++] = id;
            for (int s = 0; s < R1_TOK_NSPECIAL; s++)
                if (strcmp(t->text[id], special_text[s]) == 0)
                    t->sp[s] = id;
        } else {
            t->byte_id[(unsigned char)t->text[id][0]] = id;
        }
    }
    /* Longest first, so that a special text that is a prefix of another never hides it.
     * Insertion sort: there are a few dozen special tokens at most, and qsort has no context
     * argument for the lengths. */
    for (int i = 1; i < t->nmulti; i++) {
        int32_t id = t->multi[i];
        size_t len = strlen(t->text[id]);
        int j = i;
        while (j > 0 && strlen(t->text[t->multi[j - 1]]) < len) {
            t->multi[j] = t->multi[j - 1];
            j--;
        }
        t->multi[j] = id;
    }
}

r1_tokenizer *r1_tokenizer_new_builtin(void)
{
    r1_tokenizer *t = alloc_tokenizer(R1_TOK_VOCAB);
    if (!t)
        return NULL;
    for (int id = 0; id < R1_TOK_VOCAB; id++) {
        char buf[32];
        if (id < R1_TOK_NSPECIAL) {
            snprintf(buf, sizeof buf, "%s", special_text[id]);
            t->special[id] = 1;
        } else if (id == R1_TOK_NEWLINE) {
            snprintf(buf, sizeof buf, "\n");
        } else if (id < R1_TOK_RESERVED_FIRST) {
            snprintf(buf, sizeof buf, "%c", (char)(id - R1_TOK_ASCII_FIRST + 32));
        } else {
            snprintf(buf, sizeof buf, "<|reserved_%d|>", id - R1_TOK_RESERVED_FIRST);
            t->special[id] = 1;
        }
        if (!(t->text[id] = strdup(buf))) {
            r1_tokenizer_free(t);
            return NULL;
        }
    }
    index_tokens(t);
    return t;
}

int r1_tokenizer_vocab_size(const r1_tokenizer *t)
{
    return t->V;
}

int r1_tokenizer_special_id(const r1_tokenizer *t, int which)
{
    return which >= 0 && which < R1_TOK_NSPECIAL ? t->sp[which] : -1;
}

const char *r1_tokenizer_token(const r1_tokenizer *t, int id)
{
    return id >= 0 && id < t->V ? t->text[id] : NULL;
}

int r1_tokenizer_is_special(const r1_tokenizer *t, int id)
{
    return id >= 0 && id < t->V && t->special[id];
}

/* ------------------------------------------------------------------ encode / decode */

/* Describes byte c for an error message: 'a', '\t' (0x09, a tab), 0xc3 (not ASCII). */
static void describe_byte(char *buf, size_t n, unsigned char c)
{
    if (c >= 32 && c < 127)
        snprintf(buf, n, "'%c' (0x%02x)", c, c);
    else if (c == '\t')
        snprintf(buf, n, "'\\t' (0x09, a tab)");
    else if (c == '\r')
        snprintf(buf, n, "'\\r' (0x0d, a carriage return)");
    else if (c >= 128)
        snprintf(buf, n, "0x%02x (not ASCII)", c);
    else
        snprintf(buf, n, "0x%02x (a control character)", c);
}

/* Appends the tokens of text at ids[*n ..], counting past cap without writing. */
static r1_status encode_append(const r1_tokenizer *t, const char *text, int32_t *ids, int cap,
                               int *n, r1_error *err)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (s[i]) {
        int id = -1;
        size_t len = 1;
        for (int k = 0; k < t->nmulti; k++) {
            const char *m = t->text[t->multi[k]];
            if ((unsigned char)m[0] == s[i]) {
                size_t ml = strlen(m);
                if (strncmp((const char *)s + i, m, ml) == 0) {
                    id = t->multi[k];
                    len = ml;
                    break;
                }
            }
        }
        if (id < 0)
            id = t->byte_id[s[i]];
        if (id < 0) {
            char what[48];
            describe_byte(what, sizeof what, s[i]);
            return r1_error_set(err, R1_EINVAL,
                                "text byte %zu: %s has no token (the vocabulary holds printable "
                                "ASCII, newline and the special tokens)",
                                i, what);
        }
        if (*n < cap)
            ids[*n] = id;
        ++*n;
        i += len;
    }
    return R1_OK;
}

/* A short buffer is an error, except when the caller only counts (ids NULL). */
static r1_status check_room(const int32_t *ids, int cap, int n, r1_error *err)
{
    if (ids && n > cap)
        return r1_error_set(err, R1_EINVAL, "the text needs %d ids, the buffer holds %d", n, cap);
    return R1_OK;
}

r1_status r1_tokenizer_encode(const r1_tokenizer *t, const char *text, int32_t *ids, int cap,
                              int *n, r1_error *err)
{
    *n = 0;
    if (!ids)
        cap = 0;
    r1_status s = encode_append(t, text, ids, cap, n, err);
    return s != R1_OK ? s : check_room(ids, cap, *n, err);
}

r1_status r1_tokenizer_decode(const r1_tokenizer *t, const int32_t *ids, int n, char **out,
                              r1_error *err)
{
    *out = NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->V)
            return r1_error_set(err, R1_EINVAL, "token %d: id %d is outside the vocabulary [0, %d)",
                                i, (int)ids[i], t->V);
        len += strlen(t->text[ids[i]]);
    }
    char *s = malloc(len + 1), *p = s;
    if (!s)
        return r1_error_set(err, R1_ENOMEM, "decoding %d tokens: out of memory", n);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(t->text[ids[i]]);
        memcpy(p, t->text[ids[i]], l);
        p += l;
    }
    *p = '\0';
    *out = s;
    return R1_OK;
}

/* ------------------------------------------------------------------ chat format */

static void put_special(const r1_tokenizer *t, int which, int32_t *ids, int cap, int *n)
{
    if (*n < cap)
        ids[*n] = t->sp[which];
    ++*n;
}

/* Appends <|bos|><|user|>PROMPT<|assistant|><think>, counting past cap. */
static r1_status append_prompt(const r1_tokenizer *t, const char *prompt, int32_t *ids, int cap,
                               int *n, r1_error *err)
{
    put_special(t, R1_TOK_BOS, ids, cap, n);
    put_special(t, R1_TOK_USER, ids, cap, n);
    r1_status s = encode_append(t, prompt, ids, cap, n, err);
    if (s != R1_OK) {
        r1_error_prefix(err, "prompt");
        return s;
    }
    put_special(t, R1_TOK_ASSISTANT, ids, cap, n);
    put_special(t, R1_TOK_THINK, ids, cap, n);
    return R1_OK;
}

r1_status r1_tokenizer_encode_prompt(const r1_tokenizer *t, const char *prompt, int32_t *ids,
                                     int cap, int *n, r1_error *err)
{
    *n = 0;
    if (!ids)
        cap = 0;
    r1_status s = append_prompt(t, prompt, ids, cap, n, err);
    return s != R1_OK ? s : check_room(ids, cap, *n, err);
}

r1_status r1_tokenizer_encode_chat(const r1_tokenizer *t, const char *prompt, const char *reasoning,
                                   const char *answer, int32_t *ids, int cap, int *n,
                                   int *assistant_start, r1_error *err)
{
    *n = 0;
    if (!ids)
        cap = 0;
    r1_status s = append_prompt(t, prompt, ids, cap, n, err);
    if (s != R1_OK)
        return s;
    *assistant_start = *n;
    if ((s = encode_append(t, reasoning, ids, cap, n, err)) != R1_OK) {
        r1_error_prefix(err, "reasoning");
        return s;
    }
    put_special(t, R1_TOK_THINK_END, ids, cap, n);
    put_special(t, R1_TOK_ANSWER, ids, cap, n);
    if ((s = encode_append(t, answer, ids, cap, n, err)) != R1_OK) {
        r1_error_prefix(err, "answer");
        return s;
    }
    put_special(t, R1_TOK_ANSWER_END, ids, cap, n);
    put_special(t, R1_TOK_EOS, ids, cap, n);
    return check_room(ids, cap, *n, err);
}

/* ------------------------------------------------------------------ tokenizer.json: writing */

static json_t *added_token(int id, const char *content)
{
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

static json_t *to_json(const r1_tokenizer *t)
{
    json_t *root = json_object(), *added = json_array(), *vocab = json_object();
    int bad = !root || !added || !vocab;
    for (int id = 0; id < t->V && !bad; id++) {
        bad = json_object_set_new(vocab, t->text[id], json_integer(id)) != 0;
        if (!bad && t->special[id])
            bad = json_array_append_new(added, added_token(id, t->text[id])) != 0;
    }
    if (bad) {
        json_decref(root);
        json_decref(added);
        json_decref(vocab);
        return NULL;
    }
    /* The HF field order; json_object_set_new takes its value even when it fails. */
    bad =
        json_object_set_new(root, "version", json_string("1.0")) ||
        json_object_set_new(root, "truncation", json_null()) ||
        json_object_set_new(root, "padding", json_null()) ||
        json_object_set_new(root, "added_tokens", added) ||
        json_object_set_new(root, "normalizer", json_null()) ||
        /* every character its own piece; [\s\S] rather than "." so newlines split too */
        json_object_set_new(root, "pre_tokenizer",
                            json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern",
                                      "Regex", "[\\s\\S]", "behavior", "Isolated", "invert", 0)) ||
        json_object_set_new(root, "post_processor", json_null()) ||
        /* without a decoder HF joins WordLevel tokens with spaces */
        json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "Fuse")) ||
        json_object_set_new(root, "model",
                            json_pack("{s:s, s:o, s:s}", "type", "WordLevel", "vocab", vocab,
                                      "unk_token", UNK_TEXT));
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* "dir/tokenizer.json" in a new string (NULL when out of memory). */
static char *in_folder(const char *dir)
{
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/tokenizer.json", dir);
    return p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The chat format as a Jinja template (Hugging Face's apply_chat_template, llama.cpp, Ollama
 * read it): user turns after <|user|>, assistant turns after <|assistant|> closed by
 * <|eos|>, a system message before the first user turn's text; the generation prompt stops
 * after <think>, where r1lab's does.  Checked by hand with Jinja2 3.1 against
 * r1_tokenizer_encode_chat's text. */
#define CHAT_TEMPLATE                                                                              \
    "{{ bos_token }}{% set sys = namespace(text='') %}"                                            \
    "{% for m in messages %}"                                                                      \
    "{% if m['role'] == 'system' %}{% set sys.text = m['content'] + '\\n' %}"                     \
    "{% elif m['role'] == 'user' %}{{ '<|user|>' + sys.text + m['content'] }}"                     \
    "{% set sys.text = '' %}"                                                                      \
    "{% elif m['role'] == 'assistant' %}{{ '<|assistant|>' + m['content'] + eos_token }}"         \
    "{% endif %}{% endfor %}"                                                                      \
    "{% if add_generation_prompt %}{{ '<|assistant|><think>' }}{% endif %}"

const char *r1_tokenizer_chat_template(void)
{
    return CHAT_TEMPLATE;
}

/* tokenizer_config.json: the special tokens and their roles, and the chat template */
static json_t *config_json(const r1_tokenizer *t)
{
    json_t *extra = json_array(), *dec = json_object();
    int bad = !extra || !dec;
    static const int roles[] = {R1_TOK_USER, R1_TOK_ASSISTANT, R1_TOK_THINK, R1_TOK_THINK_END,
                                R1_TOK_ANSWER, R1_TOK_ANSWER_END};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0] && !bad; i++)
        bad = json_array_append_new(extra, json_string(t->text[t->sp[roles[i]]])) != 0;
    for (int id = 0; id < t->V && !bad; id++) {
        char key[16];
        snprintf(key, sizeof key, "%d", id);
        if (t->special[id])
            bad = json_object_set_new(dec, key, added_token(id, t->text[id])) != 0;
    }
    json_t *o = bad ? NULL : json_object();
    if (!o) {
        json_decref(extra);
        json_decref(dec);
        return NULL;
    }
    bad = json_object_set_new(o, "tokenizer_class", json_string("PreTrainedTokenizerFast")) ||
          json_object_set_new(o, "bos_token", json_string(t->text[t->sp[R1_TOK_BOS]])) ||
          json_object_set_new(o, "eos_token", json_string(t->text[t->sp[R1_TOK_EOS]])) ||
          json_object_set_new(o, "pad_token", json_string(t->text[t->sp[R1_TOK_PAD]])) ||
          json_object_set_new(o, "additional_special_tokens", extra) ||
          json_object_set_new(o, "added_tokens_decoder", dec) ||
          json_object_set_new(o, "add_bos_token", json_false()) ||
          json_object_set_new(o, "clean_up_tokenization_spaces", json_false()) ||
          json_object_set_new(o, "chat_template", json_string(CHAT_TEMPLATE));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* generation_config.json: the token ids generation needs, and r1lab's stops (<|eos|>, and
 * </answer>, after which a completion is over) */
static json_t *generation_json(const r1_tokenizer *t)
{
    return json_pack("{s:i, s:[i, i], s:i, s:b, s:i}", "bos_token_id", t->sp[R1_TOK_BOS],
                     "eos_token_id", t->sp[R1_TOK_EOS], t->sp[R1_TOK_ANSWER_END],
                     "pad_token_id", t->sp[R1_TOK_PAD], "do_sample", 0, "max_new_tokens", 128);
}

/* Writes root (consumed) as pretty JSON to file, atomically. */
static r1_status write_json(json_t *root, const char *file, r1_error *err)
{
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    json_decref(root);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", file);
    r1_afile af;
    r1_status s = r1_afile_open(&af, file, err);
    if (s == R1_OK) {
        s = r1_afile_write(&af, text, strlen(text), err);
        if (s == R1_OK)
            s = r1_afile_write(&af, "\n", 1, err);
        if (s == R1_OK)
            s = r1_afile_commit(&af, err);
        else
            r1_afile_abort(&af);
    }
    free(text);
    return s;
}

r1_status r1_tokenizer_save(const r1_tokenizer *t, const char *path, r1_error *err)
{
    char *file = NULL;
    if (ends_with(path, ".json")) {
        file = strdup(path);
    } else {
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return r1_error_set(err, R1_EIO, "%s: cannot create the folder: %s", path,
                                strerror(errno));
        file = in_folder(path);
    }
    if (!file)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    r1_status s = write_json(to_json(t), file, err);
    free(file);
    /* a model folder gets what Hugging Face's loaders read beside tokenizer.json */
    static const char *const extra[2] = {"tokenizer_config.json", "generation_config.json"};
    for (int i = 0; i < 2 && s == R1_OK && !ends_with(path, ".json"); i++) {
        size_t n = strlen(path) + strlen(extra[i]) + 2;
        char *p = malloc(n);
        if (!p)
            return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
        snprintf(p, n, "%s/%s", path, extra[i]);
        s = write_json(i ? generation_json(t) : config_json(t), p, err);
        free(p);
    }
    return s;
}

/* ------------------------------------------------------------------ tokenizer.json: reading */

static r1_status field_fail(r1_error *err, r1_status s, const char *file, const char *field,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static r1_status field_fail(r1_error *err, r1_status s, const char *file, const char *field,
                            const char *fmt, ...)
{
    char detail[R1_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return r1_error_set(err, s, "%s: %s: %s", file, field, detail);
}

/* A token text as it should appear in a message: "\n" spelled out, long ones cut. */
static const char *shown(const char *s, char *buf, size_t n)
{
    if (strcmp(s, "\n") == 0)
        return "\\n";
    snprintf(buf, n, "%s", s);
    if (strlen(s) >= n && n > 4)
        memcpy(buf + n - 4, "...", 4);
    return buf;
}

/* 1 when s is one character of the built-in alphabet: printable ASCII or newline. */
static int one_char(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    return c && !s[1] && (c == '\n' || (c >= 32 && c < 127));
}

/* Places token text at id, checking range and uniqueness. */
static r1_status place(r1_tokenizer *t, int id, const char *text, int special, const char *file,
                       const char *field, r1_error *err)
{
    char a[64], b[64];
    if (id < 0 || id >= t->V)
        return field_fail(err, R1_EFORMAT, file, field,
                          "token \"%s\" has id %d, outside [0, %d) (the file has %d tokens)",
                          shown(text, a, sizeof a), id, t->V, t->V);
    if (t->text[id]) {
        if (strcmp(t->text[id], text) == 0) {
            t->special[id] |= (unsigned char)special;
            return R1_OK; /* an added token that the vocab also lists, with the same id */
        }
        return field_fail(err, R1_EFORMAT, file, field, "id %d is given to both \"%s\" and \"%s\"",
                          id, shown(t->text[id], a, sizeof a), shown(text, b, sizeof b));
    }
    if (!(t->text[id] = strdup(text)))
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", file);
    t->special[id] = (unsigned char)special;
    return R1_OK;
}

/* Checks one entry of "added_tokens": {"id": int, "content": string, "special": bool}, its
 * content not listed before (seen: content -> index; two ids for one text would not survive a
 * save, where the vocab is a JSON object). */
static r1_status check_added(const json_t *a, size_t i, json_t *seen, const char *file,
                             r1_error *err)
{
    char field[64], b[64];
    snprintf(field, sizeof field, "added_tokens[%zu]", i);
    const json_t *id = json_object_get(a, "id"), *c = json_object_get(a, "content");
    const json_t *sp = json_object_get(a, "special");
    if (!json_is_object(a) || !json_is_integer(id) || !json_is_string(c))
        return field_fail(err, R1_EFORMAT, file, field,
                          "expected an object with an integer \"id\" and a string "
                          "\"content\"");
    if (sp && !json_is_boolean(sp))
        return field_fail(err, R1_EFORMAT, file, field, "\"special\" must be a boolean");
    const char *text = json_string_value(c);
    if (!text[0])
        return field_fail(err, R1_EFORMAT, file, field, "\"content\" is empty");
    const json_t *first = json_object_get(seen, text);
    if (first)
        return field_fail(err, R1_EFORMAT, file, field, "\"%s\" is listed already, in "
                          "added_tokens[%lld]", shown(text, b, sizeof b),
                          (long long)json_integer_value(first));
    if (json_object_set_new(seen, text, json_integer((json_int_t)i)) != 0)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", file);
    return R1_OK;
}

/* Reads "added_tokens" (may be absent): the entries check_added accepts; *nextra gets the
 * number whose content the vocab does not list. */
static r1_status read_added(const json_t *added, const json_t *vocab, int *nextra, const char *file,
                            r1_error *err)
{
    *nextra = 0;
    if (!added)
        return R1_OK;
    if (!json_is_array(added))
        return field_fail(err, R1_EFORMAT, file, "added_tokens", "expected an array");
    json_t *seen = json_object();
    r1_status s = seen ? R1_OK : r1_error_set(err, R1_ENOMEM, "%s: out of memory", file);
    for (size_t i = 0; s == R1_OK && i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        s = check_added(a, i, seen, file, err);
        if (s == R1_OK && !json_object_get(vocab, json_string_value(json_object_get(a, "content"))))
            ++*nextra;
    }
    json_decref(seen);
    return s;
}

static r1_status parse_root(r1_tokenizer **out, const json_t *root, const char *file, r1_error *err)
{
    if (!json_is_object(root))
        return r1_error_set(err, R1_EFORMAT, "%s: expected a JSON object", file);
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return field_fail(err, R1_EFORMAT, file, "model", "missing or not an object");
    const json_t *type = json_object_get(model, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "WordLevel") != 0))
        return field_fail(err, R1_EUNSUPPORTED, file, "model.type",
                          "expected \"WordLevel\" (r1lab reads only character-level tokenizers)");
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return field_fail(err, R1_EUNSUPPORTED, file, "normalizer", "expected null");
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return field_fail(err, R1_EFORMAT, file, "model.vocab", "missing or not an object");
    const json_t *added = json_object_get(root, "added_tokens");
    int nextra;
    r1_status s = read_added(added, vocab, &nextra, file, err);
    if (s != R1_OK)
        return s;
    size_t V = json_object_size(vocab) + (size_t)nextra;
    if (V == 0 || V > MAX_VOCAB)
        return field_fail(err, R1_EFORMAT, file, "model.vocab", "%zu tokens, expected 1 to %d", V,
                          MAX_VOCAB);

    r1_tokenizer *t = alloc_tokenizer((int)V);
    if (!t)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", file);
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)vocab, key, v) {
        char field[96], a[64];
        snprintf(field, sizeof field, "model.vocab[\"%s\"]", shown(key, a, sizeof a));
        if (!json_is_integer(v))
            s = field_fail(err, R1_EFORMAT, file, field, "expected an integer id");
        else if (json_integer_value(v) < 0 || json_integer_value(v) >= (json_int_t)V)
            s = field_fail(err, R1_EFORMAT, file, field, "id %lld is outside [0, %zu)",
                           (long long)json_integer_value(v), V);
        else
            s = place(t, (int)json_integer_value(v), key, 0, file, "model.vocab", err);
        if (s != R1_OK)
            goto fail;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const char *c = json_string_value(json_object_get(a, "content"));
        json_int_t id = json_integer_value(json_object_get(a, "id"));
        const json_t *vid = json_object_get(vocab, c);
        char field[64];
        snprintf(field, sizeof field, "added_tokens[%zu]", i);
        if (vid && json_integer_value(vid) != id)
            s = field_fail(err, R1_EFORMAT, file, field,
                           "\"%s\" has id %lld here but %lld in model.vocab", c, (long long)id,
                           (long long)json_integer_value(vid));
        else if (id < 0 || id >= (json_int_t)V)
            s = field_fail(err, R1_EFORMAT, file, field, "id %lld is outside [0, %zu)",
                           (long long)id, V);
        else
            s = place(t, (int)id, c, json_is_true(json_object_get(a, "special")), file, field, err);
        if (s != R1_OK)
            goto fail;
    }
    for (int id = 0; id < t->V; id++) {
        char a[64];
        if (!t->text[id]) {
            s = field_fail(err, R1_EFORMAT, file, "model.vocab", "no token has id %d", id);
            goto fail;
        }
        if (!t->special[id] && !one_char(t->text[id])) {
            s = field_fail(err, R1_EUNSUPPORTED, file, "model.vocab",
                           "token \"%s\" (id %d) is neither one printable ASCII character or "
                           "newline nor a special token in added_tokens",
                           shown(t->text[id], a, sizeof a), id);
            goto fail;
        }
    }
    index_tokens(t);
    for (int k = 0; k < R1_TOK_NSPECIAL; k++)
        if (t->sp[k] < 0) {
            s = field_fail(err, R1_EFORMAT, file, "added_tokens",
                           "the special token \"%s\" is missing", special_text[k]);
            goto fail;
        }
    *out = t;
    return R1_OK;
fail:
    r1_tokenizer_free(t);
    return s;
}

r1_status r1_tokenizer_load(r1_tokenizer **out, const char *path, r1_error *err)
{
    *out = NULL;
    char *file = NULL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        file = in_folder(path);
    else
        file = strdup(path);
    if (!file)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    r1_status s;
    FILE *f = fopen(file, "rb");
    if (!f) {
        s = r1_error_set(err, errno == ENOENT ? R1_ENOTFOUND : R1_EIO, "%s: cannot open: %s", file,
                         strerror(errno));
    } else {
        json_error_t je;
        json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
        fclose(f);
        if (!root)
            s = r1_json_fail(err, file, &je);
        else
            s = parse_root(out, root, file, err);
        json_decref(root);
    }
    free(file);
    return s;
}

r1_status r1_tokenizer_check_vocab(const r1_tokenizer *t, int vocab_size, const char *path,
                                   r1_error *err)
{
    int tv = r1_tokenizer_vocab_size(t);
    if (tv > vocab_size)
        return r1_error_set(err, R1_EFORMAT, "%s: %d tokens, more than the model's vocab_size "
                            "%d: not this model's tokenizer", path ? path : "the tokenizer", tv,
                            vocab_size);
    return R1_OK;
}
