/* rewards.c — the rule-based rewards (accuracy, format, language consistency, overlong length
 * penalty), their combination and the language word lists (see r1_rewards.h); the
 * completion splitter they use is completion.c.
 *
 * The word lists hold every word the worked solutions and prompts of r1_tasks.h use in each
 * language, plus common words a model drifting into a language would write.  They are small on
 * purpose: the reward measures mixing between two known languages, not vocabulary.
 *
 * Ownership: nothing allocated; all texts borrowed for the call.  Errors: none; a reward
 * missing what it needs (no completion, no target) returns 0. */
#include <config.h>

#include <ctype.h>
#include <string.h>

#include "r1_rewards.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

/* ------------------------------------------------------------------ word lists */

/* Lowercase; sorted only for the reader. */
static const char *const words_en[] = {
    "a",         "about",   "add",     "added",    "adding",   "after",      "again",
    "all",       "also",    "am",      "an",       "answer",   "are",        "as",
    "ascending", "at",      "be",      "because",  "before",   "biggest",    "borrow",
    "both",      "but",     "by",      "can",      "carry",    "check",      "column",
    "columns",   "compute", "correct", "count",    "did",      "difference", "digit",
    "digits",    "divide",  "divided", "do",       "does",     "done",       "each",
    "eight",     "english", "equal",   "equals",   "evaluate", "even",       "expression",
    "first",     "five",    "for",     "four",     "from",     "get",        "gives",
    "go",        "good",    "has",     "have",     "here",     "how",        "i",
    "if",        "in",      "into",    "is",       "it",       "its",        "just",
    "largest",   "last",    "left",    "less",     "let",      "like",       "list",
    "look",      "make",    "me",      "minus",    "more",     "most",       "multiply",
    "must",      "need",    "next",    "nine",     "no",       "now",        "number",
    "numbers",   "of",      "ok",      "okay",     "on",       "once",       "one",
    "only",      "order",   "other",   "over",     "plus",     "product",    "put",
    "remaining", "result",  "right",   "same",     "second",   "see",        "seven",
    "shifted",   "should",  "side",    "sides",    "six",      "smallest",   "so",
    "solve",     "sort",    "step",    "subtract", "sum",      "take",       "target",
    "ten",       "than",    "that",    "the",      "then",     "there",      "think",
    "this",      "three",   "time",    "times",    "to",       "total",      "try",
    "two",       "up",      "use",     "used",     "value",    "wait",       "was",
    "we",        "what",    "which",   "why",      "will",     "with",       "write",
    "yes",       "zero",
    /* the chat task */
    "letters",   "letter",  "backwards", "capitals", "word",    "spaces",  "asks",
    "help",      "harm",    "someone",   "break",    "rule",    "cannot",  "with",
};

static const char *const words_es[] = {
    "a",       "ahora",     "al",         "algo",     "antes",      "bien",      "cada",
    "cero",    "cifra",     "cifras",     "cinco",    "columna",    "columnas",  "como",
    "con",     "correcto",  "cuanto",     "cuatro",   "da",         "de",        "del",
    "derecha", "desde",     "desplazado", "despues",  "diez",       "divido",    "doy",
    "dos",     "el",        "en",         "entonces", "entre",      "es",        "escribo",
    "espanol", "esta",      "este",       "esto",     "evalua",     "hay",       "hago",
    "igual",   "izquierda", "la",         "las",      "lados",      "lado",      "llevo",
    "lo",      "los",       "luego",      "mas",      "mayor",      "me",        "menor",
    "menos",   "mi",        "mismo",      "mucho",    "multiplico", "muy",       "no",
    "nueve",   "numero",    "numeros",    "o",        "objetivo",   "obtener",   "ocho",
    "orden",   "ordena",    "otra",       "otro",     "para",       "pero",      "piensa",
    "pido",    "por",       "porque",     "primero",  "pruebo",     "puedo",     "que",
    "queda",   "quedan",    "resta",      "resto",    "resuelve",   "resultado", "se",
    "segundo", "seis",      "ser",        "si",       "siete",      "sin",       "sobre",
    "son",     "su",        "suma",       "sumo",     "tambien",    "tengo",     "tiene",
    "todo",    "tomo",      "total",      "tres",     "ultimo",     "un",        "una",
    "uno",     "uso",       "usa",        "usar",     "veo",        "vez",       "y",
    "ya",      "yo",
    /* the chat task */
    "letras",  "letra",     "reves",      "cuento",   "mayuscula",  "palabra",   "veces",
    "espacios", "pide",     "ayuda",      "hacer",    "dano",       "romper",    "regla",
    "debo",    "ayudar",    "eso",
};

/* Words of the task texts that belong to no language: the boolean keywords and the unknown. */
static const char *const words_neutral[] = {"true", "false", "and", "or", "not", "x"};

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Lowercases w[0, n) into buf; 0 when it is too long to be in any list. */
static int lower(char *buf, size_t cap, const char *w, size_t n)
{
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)w[i]);
    buf[n] = '\0';
    return 1;
}

static int in_list(const char *const *list, size_t count, const char *w, size_t n)
{
    char buf[32];
    if (!lower(buf, sizeof buf, w, n))
        return 0;
    for (size_t i = 0; i < count; i++)
        if (strcmp(list[i], buf) == 0)
            return 1;
    return 0;
}

int r1_lang_word(r1_lang lang, const char *w, size_t n)
{
    if (lang == R1_LANG_EN)
        return in_list(words_en, COUNT(words_en), w, n);
    if (lang == R1_LANG_ES)
        return in_list(words_es, COUNT(words_es), w, n);
    return 0;
}

int r1_lang_neutral(const char *w, size_t n)
{
    /* a lone letter belongs to no language: spelled-out words ("c a t") would otherwise count
     * their letters that double as words (a, i, o, y) for one language or the other */
    if (n == 1)
        return 1;
    return in_list(words_neutral, COUNT(words_neutral), w, n) ||
           r1_chat_word(w, n);
}

/* ------------------------------------------------------------------ the rewards */

/* Compares trimmed a[0, an) with the trimmed NUL-terminated b. */
static int same_trimmed(const char *a, size_t an, const char *b)
{
    while (an && isspace((unsigned char)*a))
        a++, an--;
    while (an && isspace((unsigned char)a[an - 1]))
        an--;
    while (isspace((unsigned char)*b))
        b++;
    size_t bn = strlen(b);
    while (bn && isspace((unsigned char)b[bn - 1]))
        bn--;
    return an == bn && memcmp(a, b, an) == 0;
}

double r1_reward_accuracy(const r1_reward_sample *s, void *user)
{
    (void)user;
    if (!s->target)
        return 0;
    if (s->completion) {
        if (s->task)
            return r1_task_verify(s->task, s->target, s->completion, NULL);
        r1_completion_parts p;
        return r1_reward_split(s->completion, &p) &&
               same_trimmed(p.answer, p.answer_len, s->target);
    }
    if (s->answer)
        return s->task ? r1_task_check_answer(s->task, s->target, s->answer, NULL, 0)
                       : same_trimmed(s->answer, strlen(s->answer), s->target);
    return 0;
}

double r1_reward_format(const r1_reward_sample *s, void *user)
{
    (void)user;
    r1_completion_parts p;
    return s->completion && r1_reward_split(s->completion, &p);
}

double r1_reward_language(const r1_reward_sample *s, void *user)
{
    (void)user;
    const char *t;
    size_t n;
    if (s->think) {
        t = s->think;
        n = strlen(t);
    } else if (s->completion) {
        r1_completion_parts p;
        r1_reward_split(s->completion, &p);
        t = p.think;
        n = p.think_len;
    } else {
        return 0;
    }
    long words = 0, en = 0, es = 0;
    for (size_t i = 0; i < n;) {
        if (!isalpha((unsigned char)t[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isalpha((unsigned char)t[j]))
            j++;
        if (!r1_lang_neutral(t + i, j - i)) {
            words++;
            en += r1_lang_word(R1_LANG_EN, t + i, j - i);
            es += r1_lang_word(R1_LANG_ES, t + i, j - i);
        }
        i = j;
    }
    if (words == 0)
        return 0;
    long hit = s->lang == R1_LANG_EN ? en : s->lang == R1_LANG_ES ? es : (en > es ? en : es);
    return (double)hit / (double)words;
}

double r1_reward_length(const r1_reward_sample *s, void *user)
{
    const r1_length_opts *lo = user;
    if (s->max_tokens <= 0 && !(lo && lo->max > 0))
        return 0;
    const r1_length_opts *o = user;
    double L = s->ntokens, Lmax = o && o->max > 0 ? o->max : s->max_tokens;
    double cache = o ? o->cache : s->max_tokens / 4;
    if (L > Lmax)
        return -1;
    if (cache <= 0 || L <= Lmax - cache)
        return 0;
    return (Lmax - cache - L) / cache;
}

/* ------------------------------------------------------------------ combining */

/* The answer of s (the given one, or the completion's first answer block); NULL if none. */
static const char *answer_of(const r1_reward_sample *s, size_t *n)
{
    if (s->answer) {
        *n = strlen(s->answer);
        return s->answer;
    }
    if (!s->completion)
        return NULL;
    r1_completion_parts p;
    r1_reward_split(s->completion, &p);
    *n = p.answer_len;
    return p.answer;
}

/* Whether s is a request to refuse: a chat sample whose target refuses. */
static int is_unsafe(const r1_reward_sample *s)
{
    return s->target && r1_chat_is_refusal(s->target, strlen(s->target));
}

double r1_reward_helpfulness(const r1_reward_sample *s, void *user)
{
    (void)user;
    if (is_unsafe(s))
        return 0; /* nothing to help with: harmlessness judges these */
    size_t n = 0;
    const char *a = answer_of(s, &n);
    if (!a || r1_reward_accuracy(s, NULL) < 0.5)
        return 0;
    /* concise: full marks up to twice the target's length, then less, down to 0.5 */
    size_t want = s->target ? strlen(s->target) : 0;
    double over = want && n > 2 * want + 8 ? (double)(n - 2 * want - 8) / (4.0 * want + 8) : 0;
    return 1.0 - (over > 0.5 ? 0.5 : over);
}

double r1_reward_harmlessness(const r1_reward_sample *s, void *user)
{
    (void)user;
    size_t n = 0;
    const char *a = answer_of(s, &n);
    int refused = a && r1_chat_is_refusal(a, n);
    if (is_unsafe(s))
        return refused ? 1.0 : -1.0;
    return refused ? -0.5 : 0.0; /* refusing a harmless request is unhelpful caution */
}

double r1_reward_random(const r1_reward_sample *s, void *user)
{
    (void)user;
    uint64_t z = s->key + 0x9e3779b97f4a7c15ull; /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 63);
}

double r1_reward_incorrect(const r1_reward_sample *s, void *user)
{
    size_t n = 0;
    const char *a = answer_of(s, &n);
    return a && n > 0 && r1_reward_accuracy(s, user) < 0.5;
}

double r1_reward_format_only(const r1_reward_sample *s, void *user)
{
    (void)user;
    size_t n = 0;
    const char *a = answer_of(s, &n);
    for (size_t i = 0; a && i < n; i++)
        if (!isspace((unsigned char)a[i]))
            return 1;
    return 0;
}

r1_status r1_reward_find(r1_reward *out, const char *name, r1_error *err)
{
    static const r1_reward builtin[] = {
        {"accuracy", r1_reward_accuracy, NULL, 1.0},
        {"format", r1_reward_format, NULL, 1.0},
        {"language", r1_reward_language, NULL, 1.0},
        {"length", r1_reward_length, NULL, 1.0},
        {"overlong", r1_reward_length, NULL, 1.0},
        {"helpfulness", r1_reward_helpfulness, NULL, 1.0},
        {"harmlessness", r1_reward_harmlessness, NULL, 1.0},
        {"random", r1_reward_random, NULL, 1.0},
        {"incorrect", r1_reward_incorrect, NULL, 1.0},
        {"format_only", r1_reward_format_only, NULL, 1.0},
    };
    for (size_t i = 0; name && i < COUNT(builtin); i++)
        if (strcmp(builtin[i].name, name) == 0) {
            *out = builtin[i];
            return R1_OK;
        }
    return r1_error_set(err, R1_ENOTFOUND,
                        "no reward \"%s\" (known: accuracy, format, language, length, overlong, "
                        "helpfulness, harmlessness, random, incorrect, format_only)",
                        name ? name : "(null)");
}

double r1_reward_combine(const r1_reward *list, int n, const r1_reward_sample *s, double *values)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double v = list[i].fn(s, list[i].user);
        if (values)
            values[i] = v;
        total += list[i].weight * v;
    }
    return total;
}
