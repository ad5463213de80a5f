/* fuzz_tokenizer.c — the tokenizer.json loader (engine/tokenizer.c) on one file.
 *
 * The input is written to tokenizer.json and loaded with r1_tokenizer_load.  A tokenizer it
 * accepts is used the way generation uses it: every id has a text, the named special tokens
 * have ids in range, a chat text is encoded and every id decoded; then it is saved and loaded
 * again, and must come back with the same vocabulary and the same special tokens.
 *
 * Checks: refusals carry a message; accepted files behave and round-trip. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_tokenizer.h"

static const char chat[] = "<|bos|><|user|>What is 12+34?<|assistant|><think>2+4=6\n1+3=4"
                           "</think><answer>46</answer><|eos|>";

static void use(const r1_tokenizer *t)
{
    int V = r1_tokenizer_vocab_size(t);
    FUZZ_CHECK(V > 0, "vocabulary of %d", V);
    for (int id = 0; id < V; id++)
        FUZZ_CHECK(r1_tokenizer_token(t, id) != NULL, "id %d of %d has no text", id, V);
    FUZZ_CHECK(r1_tokenizer_token(t, V) == NULL && r1_tokenizer_token(t, -1) == NULL,
               "a text for an id out of range");
    for (int k = R1_TOK_PAD; k <= R1_TOK_ANSWER_END; k++) {
        int id = r1_tokenizer_special_id(t, k);
        FUZZ_CHECK(id >= 0 && id < V && r1_tokenizer_is_special(t, id),
                   "special token %d has id %d of %d", k, id, V);
    }
    int32_t ids[sizeof chat];
    int n = 0;
    r1_error err = {0};
    r1_status s = r1_tokenizer_encode(t, chat, ids, (int)sizeof chat, &n, &err);
    FUZZ_CHECK(s == R1_OK || (s == R1_EINVAL && err.msg[0]), "encode gave %d: %s", (int)s,
               err.msg);
    FUZZ_CHECK(s != R1_OK || (n > 0 && n <= (int)sizeof chat), "encode made %d ids", n);
    int32_t *all = malloc(sizeof *all * (size_t)V);
    FUZZ_CHECK(all != NULL, "out of memory");
    for (int id = 0; id < V; id++)
        all[id] = id;
    char *text = NULL;
    s = r1_tokenizer_decode(t, all, V, &text, &err);
    FUZZ_CHECK(s == R1_OK && text != NULL, "decoding every id failed: %s", err.msg);
    free(text);
    free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("tokenizer.json", data, size);
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    r1_status s = r1_tokenizer_load(&t, path, &err);
    FUZZ_CHECK((s == R1_OK) == (t != NULL), "status %d with handle %p", (int)s, (void *)t);
    if (s != R1_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "r1_tokenizer_load failed (%d) without a message", (int)s);
        return 0;
    }
    use(t);
    path = fuzz_path("saved.json");
    s = r1_tokenizer_save(t, path, &err);
    FUZZ_CHECK(s == R1_OK, "an accepted tokenizer cannot be saved: %s", err.msg);
    r1_tokenizer *back = NULL;
    s = r1_tokenizer_load(&back, path, &err);
    FUZZ_CHECK(s == R1_OK, "a saved tokenizer does not load: %s", err.msg);
    int V = r1_tokenizer_vocab_size(t);
    FUZZ_CHECK(r1_tokenizer_vocab_size(back) == V, "vocabulary %d read back as %d", V,
               r1_tokenizer_vocab_size(back));
    for (int id = 0; id < V; id++) {
        FUZZ_CHECK(!strcmp(r1_tokenizer_token(t, id), r1_tokenizer_token(back, id)),
                   "token %d reads back different", id);
        FUZZ_CHECK(r1_tokenizer_is_special(t, id) == r1_tokenizer_is_special(back, id),
                   "token %d is special %d, read back %d", id, r1_tokenizer_is_special(t, id),
                   r1_tokenizer_is_special(back, id));
    }
    for (int k = R1_TOK_PAD; k <= R1_TOK_ANSWER_END; k++)
        FUZZ_CHECK(r1_tokenizer_special_id(t, k) == r1_tokenizer_special_id(back, k),
                   "special token %d moves from id %d to %d", k, r1_tokenizer_special_id(t, k),
                   r1_tokenizer_special_id(back, k));
    r1_tokenizer_free(back);
    r1_tokenizer_free(t);
    return 0;
}
