/* completion.c — splitting a chat-format completion into its reasoning and its answer (see
 * r1_completion.h), used by the rewards, the evaluator and the front ends.
 *
 * Ownership: nothing allocated; the parts point into the completion.  Errors: none. */
#include <config.h>

#include <ctype.h>
#include <string.h>

#include "r1_completion.h"
#include "r1_tokenizer.h"

static const char *const special_texts[] = {
    R1_TEXT_PAD,   R1_TEXT_BOS,       R1_TEXT_EOS,    R1_TEXT_USER,       R1_TEXT_ASSISTANT,
    R1_TEXT_THINK, R1_TEXT_THINK_END, R1_TEXT_ANSWER, R1_TEXT_ANSWER_END,
};

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* 1 when s[0, n) contains the text of a special token. */
static int has_special(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '<')
            for (size_t k = 0; k < sizeof special_texts / sizeof *special_texts; k++) {
                size_t l = strlen(special_texts[k]);
                if (l <= n - i && memcmp(s + i, special_texts[k], l) == 0)
                    return 1;
            }
    return 0;
}

static const char *skip_space(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

int r1_reward_split(const char *c, r1_completion_parts *p)
{
    memset(p, 0, sizeof *p);
    const char *s = c;
    if (starts_with(s, R1_TEXT_THINK))
        s += strlen(R1_TEXT_THINK);
    const char *te = strstr(s, R1_TEXT_THINK_END), *as = strstr(s, R1_TEXT_ANSWER);
    const char *end = te && (!as || te < as) ? te : as ? as : s + strlen(s);
    p->think = s;
    p->think_len = (size_t)(end - s);
    if (as) {
        const char *a = as + strlen(R1_TEXT_ANSWER), *ae = strstr(a, R1_TEXT_ANSWER_END);
        if (ae) {
            p->answer = a;
            p->answer_len = (size_t)(ae - a);
        }
    }
    /* the strict shape */
    if (!te || has_special(s, (size_t)(te - s)))
        return 0;
    const char *q = skip_space(te + strlen(R1_TEXT_THINK_END));
    if (!starts_with(q, R1_TEXT_ANSWER))
        return 0;
    q += strlen(R1_TEXT_ANSWER);
    const char *ae = strstr(q, R1_TEXT_ANSWER_END);
    if (!ae || has_special(q, (size_t)(ae - q)))
        return 0;
    q = skip_space(ae + strlen(R1_TEXT_ANSWER_END));
    if (starts_with(q, R1_TEXT_EOS))
        q += strlen(R1_TEXT_EOS);
    if (*q)
        return 0;
    p->well_formed = 1;
    return 1;
}
