/* t_tasks.c — the reasoning tasks: the registry, argument errors, determinism, every worked
 * solution passing its own verifier (500 seeds per task, difficulty and language), and the
 * verifiers on right, wrong, malformed and adversarial completions: answers outside the tags,
 * two answer blocks, huge numbers, division by zero and reused numbers in countdown. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_tasks.h"
#include "r1_tokenizer.h"
#include "tap.h"

#define SEEDS 500

static const r1_task *task(const char *name)
{
    const r1_task *t = NULL;
    r1_error err;
    if (r1_task_find(&t, name, &err) != R1_OK) {
        printf("Bail out! %s\n", err.msg);
        exit(1);
    }
    return t;
}

/* The completion a perfect model writes after the generation prompt. */
static void completion(char *buf, size_t n, const r1_task_sample *s)
{
    snprintf(buf, n, "%s</think><answer>%s</answer><|eos|>", s->reasoning, s->answer);
}

static int printable(const char *s)
{
    for (; *s; s++)
        if (*s != '\n' && (*s < 32 || *s > 126))
            return 0;
    return 1;
}

static void test_registry(void)
{
    static const char *names[] = {"add", "mul", "countdown", "sort", "linear", "bool"};
    is_int(r1_task_count(), 7, "seven tasks");
    for (int i = 0; i < 6; i++) {
        const r1_task *t = NULL;
        r1_error err;
        is_int(r1_task_find(&t, names[i], &err), R1_OK, "task \"%s\" found", names[i]);
        ok(t == r1_task_at(i) && strcmp(r1_task_name(t), names[i]) == 0 && r1_task_summary(t)[0] &&
               r1_task_max_difficulty(t) >= 6,
           "... listed in order, with a summary and at least 6 difficulties");
    }
    ok(r1_task_at(7) == NULL && r1_task_at(-1) == NULL, "no task past the list");
    const r1_task *t = NULL;
    r1_error err = {0};
    is_int(r1_task_find(&t, "division", &err), R1_ENOTFOUND, "an unknown task");
    like(err.msg, "division", "... is named");
    like(err.msg, "add, mul, countdown, sort, linear, bool", "... beside the known ones");

    r1_task_sample s;
    is_int(r1_task_generate(task("add"), 1, 0, R1_LANG_EN, &s, &err), R1_EINVAL,
           "difficulty 0 refused");
    like(err.msg, "1..10", "... naming the range");
    is_int(r1_task_generate(task("mul"), 1, 9, R1_LANG_EN, &s, &err), R1_EINVAL,
           "difficulty past the maximum refused");
    is_int(r1_task_generate(task("sort"), 1, 1, (r1_lang)7, &s, &err), R1_EINVAL,
           "a language that is not one refused");

    r1_lang l;
    ok(r1_lang_parse(&l, "Espanol", &err) == R1_OK && l == R1_LANG_ES, "\"Espanol\" is es");
    ok(r1_lang_parse(&l, "en", &err) == R1_OK && l == R1_LANG_EN, "\"en\" is en");
    is_int(r1_lang_parse(&l, "fr", &err), R1_EINVAL, "\"fr\" is refused");
    is_str(r1_lang_name(R1_LANG_ES), "es", "the name of es");
}

static void test_determinism(void)
{
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *t = r1_task_at(ti);
        const char *name = r1_task_name(t);
        r1_task_sample a, b, en, es;
        r1_error err;
        int d = 3, same = 1, differ = 0, lang_free = 1, auto_ok = 1, nes = 0;
        for (uint64_t seed = 0; seed < 50; seed++) {
            r1_task_generate(t, seed, d, R1_LANG_AUTO, &a, &err);
            r1_task_generate(t, seed, d, R1_LANG_AUTO, &b, &err);
            same = same && memcmp(&a, &b, sizeof a) == 0;
            r1_task_generate(t, seed, d, R1_LANG_EN, &en, &err);
            r1_task_generate(t, seed, d, R1_LANG_ES, &es, &err);
            lang_free =
                lang_free && strcmp(en.answer, es.answer) == 0 && strcmp(en.prompt, es.prompt) != 0;
            auto_ok = auto_ok &&
                      strcmp(a.reasoning, a.lang == R1_LANG_ES ? es.reasoning : en.reasoning) == 0;
            nes += a.lang == R1_LANG_ES;
            r1_task_generate(t, seed + 1000, d, R1_LANG_EN, &b, &err);
            differ += strcmp(en.prompt, b.prompt) != 0;
        }
        ok(same, "%s: the same seed gives the same sample", name);
        ok(differ >= 45, "%s: other seeds give other problems (%d of 50)", name, differ);
        ok(lang_free, "%s: the problem and answer do not depend on the language", name);
        ok(auto_ok && nes > 10 && nes < 40,
           "%s: auto picks a language per sample (%d of 50 Spanish) and writes it as forced", name,
           nes);
    }
}

/* Every worked solution passes its own verifier, with and without a leading <think>. */
static void test_own_solutions(void)
{
    char c[R1_TASK_REASONING_MAX + R1_TASK_ANSWER_MAX + 64];
    char c2[sizeof c + 8];
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *t = r1_task_at(ti);
        for (int d = 1; d <= r1_task_max_difficulty(t); d++) {
            int good = 1, total = 0, requests = 1, texts = 1;
            for (uint64_t seed = 0; seed < SEEDS && good; seed++)
                for (int lang = R1_LANG_EN; lang <= R1_LANG_ES && good; lang++) {
                    r1_task_sample s;
                    r1_error err;
                    r1_task_verdict v;
                    if (r1_task_generate(t, seed, d, (r1_lang)lang, &s, &err) != R1_OK) {
                        diag("%s", err.msg);
                        good = 0;
                        break;
                    }
                    completion(c, sizeof c, &s);
                    snprintf(c2, sizeof c2, "<think>%s", c);
                    good = r1_task_verify(t, s.answer, c, &v) && v.well_formed &&
                           strcmp(v.parsed, s.answer) == 0 && r1_task_verify(t, s.answer, c2, NULL);
                    if (!good)
                        diag("seed %llu: %s", (unsigned long long)seed, c);
                    const char *req =
                        lang == R1_LANG_EN ? " Think in English." : " Piensa en espanol.";
                    size_t pl = strlen(s.prompt);
                    requests = requests && pl > strlen(req) &&
                               strcmp(s.prompt + pl - strlen(req), req) == 0;
                    texts = texts && printable(s.prompt) && printable(s.reasoning) &&
                            printable(s.answer) && s.reasoning[strlen(s.reasoning) - 1] != '\n';
                    total++;
                }
            ok(good, "%s d%d: %d worked solutions pass their verifier", r1_task_name(t), d, total);
            if (!requests || !texts)
                ok(0, "%s d%d: prompts ask for the language, texts are printable ASCII",
                   r1_task_name(t), d);
        }
    }
}

typedef struct {
    const char *answer;
    int correct;
    const char *parsed; /* NULL: not checked */
} acase;

/* s with newlines spelled "\n", for one-line test names; a static buffer. */
static const char *oneline(const char *s)
{
    static char buf[256];
    size_t k = 0;
    for (; *s && k + 3 < sizeof buf; s++) {
        if (*s == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = '\0';
    return buf;
}

static void answers(const char *name, const char *target, const acase *cases, int n)
{
    const r1_task *t = task(name);
    for (int i = 0; i < n; i++) {
        char parsed[R1_TASK_ANSWER_MAX];
        int got = r1_task_check_answer(t, target, cases[i].answer, parsed, sizeof parsed);
        if (!ok(got == cases[i].correct, "%s: \"%s\" for %s is %s", name, oneline(cases[i].answer),
                target, cases[i].correct ? "right" : "wrong"))
            diag("  parsed \"%s\"", parsed);
        if (cases[i].parsed)
            is_str(parsed, cases[i].parsed, "... read as \"%s\"", cases[i].parsed);
    }
}

#define ANSWERS(name, target, ...)                                                                 \
    do {                                                                                           \
        static const acase c_[] = {__VA_ARGS__};                                                   \
        answers(name, target, c_, (int)(sizeof c_ / sizeof c_[0]));                                \
    } while (0)

static void test_answers(void)
{
    ANSWERS("add", "936", {"936", 1, "936"}, {" 936\n", 1, "936"}, {"0936", 1, "936"},
            {"+936", 1, "936"}, {"937", 0, "937"}, {"93 6", 0, "93 6"}, {"936.0", 0, NULL},
            {"", 0, ""}, {"-936", 0, "-936"}, {"nine hundred", 0, NULL});
    ANSWERS("add", "0", {"-0", 1, "0"}, {"000", 1, "0"}, {"-", 0, NULL});
    /* longer than any int64: compared as digit strings, no overflow */
    ANSWERS("mul", "123456789012345678901234567890", {"123456789012345678901234567890", 1, NULL},
            {"0123456789012345678901234567890", 1, "123456789012345678901234567890"},
            {"123456789012345678901234567891", 0, NULL}, {"99999999999999999999", 0, NULL});
    ANSWERS("mul", "42", {"99999999999999999999999999999999999999999999", 0, NULL},
            {"-99999999999999999999999999999999999999999999", 0, NULL}, {"42", 1, NULL});
    ANSWERS("linear", "-20", {"-20", 1, "-20"}, {"x=-20", 1, "-20"}, {" x = -20 ", 1, "-20"},
            {"X=-20", 1, NULL}, {"y=-20", 0, NULL}, {"20", 0, NULL}, {"x=", 0, NULL},
            {"x=-20=-20", 0, NULL});
    ANSWERS("sort", "3, 12, 12, 45", {"3, 12, 12, 45", 1, "3, 12, 12, 45"},
            {"[3,12,12,45]", 1, "3, 12, 12, 45"}, {"3 12 12 45", 1, NULL},
            {"03, 12, 12, 45", 1, "3, 12, 12, 45"}, {"3, 12, 45", 0, NULL},
            {"3, 12, 12, 45, 50", 0, NULL}, {"3, 12, 45, 12", 0, NULL}, {"3,, 12, 12, 45", 0, NULL},
            {"3, 12, 12, 45,", 0, NULL}, {"three, 12, 12, 45", 0, "three, 12, 12, 45"},
            {"", 0, NULL}, {"3, 12, 12, 99999999999999999999999999", 0, NULL});
    ANSWERS("bool", "True", {"True", 1, "True"}, {"true", 1, "True"}, {" TRUE ", 1, "True"},
            {"False", 0, "False"}, {"Verdadero", 0, "Verdadero"}, {"True.", 0, NULL},
            {"1", 0, NULL}, {"", 0, NULL});
    /* countdown: the numbers are 25 5 4 3 and the value 83, both read from the target */
    ANSWERS("countdown", "(25-5)*4+3", {"(25-5)*4+3", 1, "(25-5)*4+3"},
            {" 3 + 4 * ( 25 - 5 ) ", 1, "3+4*(25-5)"}, {"(25-5)*4+3 = 83", 1, NULL},
            {"(25-5)*4+3=84", 0, NULL}, {"25*4-5*4+3", 0, NULL}, /* 4 used twice */
            {"(25-5)*4+3+0", 0, NULL},                           /* 0 not given */
            {"83", 0, NULL}, {"(25-5)*4", 0, NULL}, {"-(5-25)*4+3", 0, NULL},
            {"(25-5)x4+3", 0, NULL}, {"(25-5)*4+3)", 0, NULL}, {"((25-5)*4+3", 0, NULL},
            {"", 0, NULL}, {"25/(5-5)*4+3", 0, NULL}, /* division by zero (and 5 twice) */
            {"99999999999999999999999*0+83", 0, NULL},
            {"0-9223372036854775807-1", 0, NULL}, /* INT64_MIN on the way */
            {"9223372036854775807*9223372036854775807", 0, NULL}, /* overflow */
            {"1/9223372036854775807/9223372036854775807", 0, NULL});
    /* 24 from 3 3 8 8 needs a fraction on the way: exact rationals */
    ANSWERS("countdown", "8/(3-8/3)", {"8/(3-8/3)", 1, NULL}, {"8/(3-8/3)=24", 1, NULL},
            {"3*8", 1, NULL}, {"8*3*(8/8)", 0, NULL}, {"8/(3-3)", 0, NULL}, /* zero division */
            {"(8-8)/(3-3)", 0, NULL}, {"8/(3-8/3)=24.0", 0, NULL});

    /* adversarial shapes: deep nesting, long inputs */
    char deep[4200];
    memset(deep, '(', 2000);
    strcpy(deep + 2000, "83");
    memset(deep + 2002, ')', 2000);
    deep[4002] = '\0';
    ok(!r1_task_check_answer(task("countdown"), "(25-5)*4+3", deep, NULL, 0),
       "countdown: 2000 nested parentheses are wrong, not a crash");
    char huge[1200];
    memset(huge, '9', 1000);
    huge[1000] = '\0';
    char parsed[R1_TASK_ANSWER_MAX];
    ok(r1_task_check_answer(task("add"), huge, huge, parsed, sizeof parsed) == 1,
       "add: a 1000-digit answer equal to the target is right");
    ok(strlen(parsed) == sizeof parsed - 1 && strcmp(parsed + sizeof parsed - 4, "...") == 0,
       "... and the parsed text is cut with \"...\"");
    huge[999] = '8';
    ok(!r1_task_check_answer(task("add"), "999", huge, NULL, 0), "... a different one is wrong");
}

static void test_completions(void)
{
    static const struct {
        const char *c;
        int correct, well_formed;
        const char *what;
    } cases[] = {
        {"7+9=16</think><answer>16</answer><|eos|>", 1, 1, "right"},
        {"7+9=16</think><answer>16</answer>", 1, 1, "right without <|eos|>"},
        {"<think>7+9=16</think>\n<answer> 16 </answer>\n<|eos|>", 1, 1,
         "a leading <think>, newlines and spaces"},
        {"7+9=17</think><answer>17</answer><|eos|>", 0, 1, "wrong"},
        {"7+9=16</think>16<|eos|>", 0, 0, "the answer outside the tags"},
        {"7+9=16</think><answer></answer>16", 0, 0, "the answer after an empty block"},
        {"7+9=16</think><answer>16</answer> so 16", 0, 0, "text after the answer block"},
        {"7+9=16</think><answer>16</answer><answer>16</answer>", 0, 0, "two answer blocks"},
        {"7+9=16</think><answer>15</answer><answer>16</answer>", 0, 0,
         "two answer blocks, the second right"},
        {"I say <answer>16</answer></think><answer>16</answer>", 0, 0,
         "an answer block inside the reasoning"},
        {"7+9=16<answer>16</answer><|eos|>", 0, 0, "no </think>"},
        {"7+9=16</think>16</answer>", 0, 0, "no <answer>"},
        {"7+9=16</think><answer>16", 0, 0, "no </answer>"},
        {"7+9=16</think></think><answer>16</answer>", 0, 0, "two </think>"},
        {"<think><think>7+9=16</think><answer>16</answer>", 0, 0, "two <think>"},
        {"7+9=16</think><answer>16</answer><|eos|><|eos|>", 0, 0, "text after <|eos|>"},
        {"", 0, 0, "empty"},
    };
    const r1_task *add = task("add");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r1_task_verdict v;
        int got = r1_task_verify(add, "16", cases[i].c, &v);
        ok(got == cases[i].correct && v.correct == got && v.well_formed == cases[i].well_formed,
           "verify: %s -> %s%s", cases[i].what, got ? "right" : "wrong",
           v.well_formed ? "" : " (malformed)");
        if (!cases[i].well_formed)
            is_str(v.parsed, "", "... and no answer is read");
    }
    r1_task_verdict v;
    r1_task_verify(task("countdown"), "(25-5)*4+3",
                   "Try 25-5=20</think><answer>(25 - 5) * 4 + 3</answer>", &v);
    ok(v.correct, "verify: countdown with spaces is right");
    is_str(v.parsed, "(25-5)*4+3", "... and parsed without them");
    r1_task_verify(task("countdown"), "(25-5)*4+3", "Try 25/0</think><answer>25/(5-5)+4*3</answer>",
                   &v);
    ok(!v.correct && v.well_formed, "verify: countdown dividing by zero is wrong, well formed");
}

/* At the training difficulties a whole chat sequence fits 384 tokens; every difficulty fits the
 * tiny preset's 1024 positions. */
static void test_lengths(void)
{
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    static int32_t ids[8192];
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *t = r1_task_at(ti);
        int train = r1_task_train_difficulty(t), worst_train = 0, worst = 0, good = 1;
        for (int d = 1; d <= r1_task_max_difficulty(t); d++)
            for (uint64_t seed = 0; seed < SEEDS; seed++)
                for (int lang = R1_LANG_EN; lang <= R1_LANG_ES; lang++) {
                    r1_task_sample s;
                    int n = 0, as;
                    good = good && r1_task_generate(t, seed, d, (r1_lang)lang, &s, NULL) == R1_OK &&
                           r1_tokenizer_encode_chat(tok, s.prompt, s.reasoning, s.answer, ids, 8192,
                                                    &n, &as, NULL) == R1_OK;
                    if (d <= train && n > worst_train)
                        worst_train = n;
                    if (n > worst)
                        worst = n;
                }
        ok(good && train >= 1 && train < r1_task_max_difficulty(t) && worst_train <= 384,
           "%s: up to the training difficulty %d the longest sequence is %d tokens (<= 384)",
           r1_task_name(t), train, worst_train);
        ok(worst <= 1024, "%s: at every difficulty at most %d tokens (<= 1024)", r1_task_name(t),
           worst);
    }
    r1_tokenizer_free(tok);
}

/* The typed phrasings: the same problem, reasoning and answer as the task's own prompt, no
 * language request, words of the question's language, several phrasings per task and language
 * (all of them over 60 seeds), and "mixed" about half typed. */
static void test_typed(void)
{
    r1_error err = {0};
    r1_phrasing ph;
    ok(r1_phrasing_parse(&ph, "Typed", &err) == R1_OK && ph == R1_PHRASING_TYPED &&
       r1_phrasing_parse(&ph, "mixed", &err) == R1_OK && ph == R1_PHRASING_MIXED,
       "phrasings parse by name");
    is_int(r1_phrasing_parse(&ph, "casual", &err), R1_EINVAL, "an unknown phrasing refused");
    like(err.msg, "expected task, typed or mixed", "... naming the choices");
    r1_task_sample s;
    is_int(r1_task_generate_phrased(task("add"), 1, 1, R1_LANG_EN, (r1_phrasing)9, &s, &err),
           R1_EINVAL, "a phrasing that is not one refused");
    /* words that only one language's typed questions use */
    static const char *const en_words[] = {"what", "What", "Calculate", "How", "times",
                                           "Multiply", "Solve", "solve", "Find", "Evaluate",
                                           "evaluate", "Is ", "Sort", "sort", "order", "Put",
                                           "make", "using", "how", "write", "say", "repeat",
                                           "count", "letters", "capital", "backwards", NULL};
    static const char *const es_words[] = {"Cuanto", "cuanto", "Calcula", "Me dices", " por ",
                                           "Multiplica", "Resuelve", "resuelve", "Halla",
                                           "despeja", "Evalua", "evalua", "Es ", "Ordena",
                                           "ordena", "Pon ", "obten", "usando", "como",
                                           "escribe", "di ", "repite", "cuenta", "letras",
                                           "mayusculas", "reves", NULL};
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *t = r1_task_at(ti);
        int d = r1_task_train_difficulty(t), same = 1, no_request = 1, worded = 1, typed = 1;
        int shapes[2] = {0, 0};
        char seen[2][8][64];
        for (int lang = R1_LANG_EN; lang <= R1_LANG_ES; lang++)
            for (uint64_t seed = 0; seed < 60; seed++) {
                r1_task_sample own, ty;
                if (r1_task_generate(t, seed, d, (r1_lang)lang, &own, NULL) != R1_OK ||
                    r1_task_generate_phrased(t, seed, d, (r1_lang)lang, R1_PHRASING_TYPED, &ty,
                                             NULL) != R1_OK) {
                    same = 0;
                    continue;
                }
                same &= strcmp(own.reasoning, ty.reasoning) == 0 &&
                        strcmp(own.answer, ty.answer) == 0 && own.lang == ty.lang &&
                        strcmp(own.prompt, ty.prompt) != 0 && printable(ty.prompt);
                typed &= ty.typed == 1 && own.typed == 0;
                no_request &= !strstr(ty.prompt, "Think in") && !strstr(ty.prompt, "Piensa en");
                const char *const *w = lang == R1_LANG_EN ? en_words : es_words;
                int has = 0;
                for (int k = 0; w[k]; k++)
                    has |= strstr(ty.prompt, w[k]) != NULL;
                worded &= has || !strcmp(r1_task_name(t), "chat"); /* unsafe requests: own words */
                /* the phrasing's shape: its first word */
                char shape[64];
                snprintf(shape, sizeof shape, "%.*s", (int)strcspn(ty.prompt, " "), ty.prompt);
                int k = 0;
                while (k < shapes[lang] && strcmp(seen[lang][k], shape))
                    k++;
                if (k == shapes[lang] && k < 8)
                    snprintf(seen[lang][shapes[lang]++], 64, "%s", shape);
            }
        ok(same && typed, "%s: a typed question poses the task's own problem, reasoning and answer",
           r1_task_name(t));
        ok(no_request && worded,
           "%s: typed questions ask for no language; their words tell it", r1_task_name(t));
        ok(shapes[0] >= 3 && shapes[1] >= 3, "%s: phrasings per language: %d en, %d es (>= 3)",
           r1_task_name(t), shapes[0], shapes[1]);
    }
    int n_typed = 0, consistent = 1;
    for (uint64_t seed = 0; seed < 200; seed++) {
        r1_task_sample m;
        consistent &= r1_task_generate_phrased(task("add"), seed, 2, R1_LANG_AUTO,
                                               R1_PHRASING_MIXED, &m, NULL) == R1_OK &&
                      m.typed == !strstr(m.prompt, m.lang == R1_LANG_EN ? "Think in" : "Piensa");
        n_typed += m.typed;
    }
    ok(consistent && n_typed > 70 && n_typed < 130, "mixed: %d of 200 typed", n_typed);
}

/* The chat task's problem space is wide enough to hold problems out: the evaluation holds out
 * up to 64 problems per difficulty (a quarter of them refusals), and pretraining never trains on
 * them, so the chores of one difficulty and the refusals must each have hundreds of distinct
 * questions (the first version had 36 easy chores and 6 refusals: all held out, none trained). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_chat_space(void)
{
    const r1_task *t = task("chat");
    enum { N = 3000 };
    static char store[N][R1_TASK_PROMPT_MAX];
    static char *chores[N], *refusals[N];
    for (int d = 1; d <= 2; d++) {
        int nc = 0, nr = 0, lengths = 1, known = 1;
        for (uint64_t seed = 0; seed < N; seed++) {
            r1_task_sample s;
            if (r1_task_generate(t, seed, d, R1_LANG_EN, &s, NULL) != R1_OK) {
                lengths = 0;
                break;
            }
            memcpy(store[seed], s.prompt, sizeof store[seed]);
            if (r1_chat_is_refusal(s.answer, strlen(s.answer))) {
                refusals[nr++] = store[seed];
                continue;
            }
            chores[nc++] = store[seed];
            /* the word follows "the word" ("Write the word cat backwards." ...) */
            char w[32] = "";
            const char *at = strstr(s.prompt, "the word ");
            if (at && sscanf(at + 9, "%31[a-z]", w) == 1) {
                size_t n = strlen(w);
                lengths &= d == 1 ? n >= 3 && n <= 4 : n >= 5 && n <= 6;
                known &= r1_chat_word(w, n);
            } else {
                lengths = 0;
            }
        }
        int dc = 0, dr = 0;
        qsort(chores, (size_t)nc, sizeof *chores, cmp_str);
        qsort(refusals, (size_t)nr, sizeof *refusals, cmp_str);
        for (int i = 0; i < nc; i++)
            dc += i == 0 || strcmp(chores[i], chores[i - 1]) != 0;
        for (int i = 0; i < nr; i++)
            dr += i == 0 || strcmp(refusals[i], refusals[i - 1]) != 0;
        ok(dc >= 300 && dr >= 300, "chat d%d: %d distinct chores and %d distinct refusals (>= 300)",
           d, dc, dr);
        ok(lengths && known, "chat d%d: every chore's word has the difficulty's length and is a "
                             "chat word", d);
    }
    ok(r1_chat_word("TREE", 4) && r1_chat_word("umbrella", 8) && !r1_chat_word("think", 5) &&
           !r1_chat_word("tree", 3) && !r1_chat_word("", 0),
       "r1_chat_word: the chores' words in any case, nothing else");
}

/* Linear equations reduce c-b (or c+b) by columns on a line of their own: each column's digits,
 * borrow or carry give what the line says, the columns spell the next line's a*x=R, and R/a
 * is the answer. */
static void test_linear_columns(void)
{
    const r1_task *t = task("linear");
    int good = 1, lines = 0;
    for (int d = 1; d <= 4; d++)
        for (uint64_t seed = 0; seed < 200; seed++) {
            r1_task_sample s;
            if (r1_task_generate(t, seed, d, R1_LANG_EN, &s, NULL) != R1_OK) {
                good = 0;
                continue;
            }
            long long a, c, b, r;
            char op;
            const char *p = strstr(s.reasoning, "by columns:");
            const char *eq = strstr(s.reasoning, "*x=");
            if (!p || !eq)
                continue; /* a one-digit step, or a negative side: one line */
            lines++;
            int sub = strncmp(p - 9, "Subtract ", 9) == 0;
            if (sscanf(eq + 3, "%lld%c%lld", &c, &op, &b) != 3 || op != (sub ? '-' : '+')) {
                good = 0;
                continue;
            }
            p += strlen("by columns:");
            long long val = 0, place = 1;
            int in = 0, top = 0;
            while (*p == ' ') {
                p++;
                int xd, yd, k = 0, borrowed = 0;
                if (sscanf(p, "%d%*[-+]%d%n", &xd, &yd, &k) != 2) {
                    good = 0;
                    break;
                }
                p += k;
                if (in && strncmp(p, sub ? "-1" : "+1", 2) != 0)
                    good = 0;
                const char *end = p + strcspn(p, sub ? ";\n" : ",\n");
                borrowed = sub && memchr(p, ':', (size_t)(end - p)) != NULL;
                const char *lasteq = p;
                for (const char *q = p; q < end; q++)
                    if (*q == '=')
                        lasteq = q;
                top = atoi(lasteq + 1);
                int want = sub ? xd - yd - in + (borrowed ? 10 : 0) : xd + yd + in;
                good &= top == want &&
                        (!sub || (top >= 0 && top <= 9 && (xd - yd - in < 0) == borrowed));
                in = sub ? borrowed : top >= 10;
                int last = *end != (sub ? ';' : ',');
                val += (last ? top : top % 10) * place;
                place *= 10;
                p = end + (*end == ';' || *end == ',');
                if (last)
                    break;
            }
            const char *res = strstr(p, "*x=");
            if (!res || sscanf(res + 3, "%lld", &r) != 1) {
                good = 0;
                continue;
            }
            a = atoll(strstr(s.reasoning, ": ") + 2);
            if (!(good &= r == (sub ? c - b : c + b) && val == r && a * atoll(s.answer) == r))
                diag("d%d seed %llu: %s", d, (unsigned long long)seed, s.reasoning);
        }
    ok(good && lines > 500, "linear: %d column lines add up to a*x's side, and x = that / a",
       lines);
}

/* Multiplication adds its partial products by columns: each column's digits and carry sum to
 * what the line says, and the columns' last digits (the top column whole) are the product. */
static void test_mul_columns(void)
{
    const r1_task *t = task("mul");
    int good = 1, lines = 0;
    for (int d = 3; d <= 8; d++)
        for (uint64_t seed = 0; seed < 100; seed++) {
            r1_task_sample s;
            if (r1_task_generate(t, seed, d, R1_LANG_EN, &s, NULL) != R1_OK) {
                good = 0;
                continue;
            }
            const char *p = strstr(s.reasoning, "Add by columns:");
            if (!p)
                continue; /* a multiplier with zeros but one: a single partial product */
            lines++;
            p += strlen("Add by columns:");
            char digits[64];
            int nd = 0, carry = 0, last = 0;
            while (*p == ' ' || *p == ',') {
                p++;
                while (*p == ' ')
                    p++;
                int sum = 0, v, k;
                /* terms: digits, then the carry (which equals the previous column's sum / 10) */
                int terms[16], nt = 0;
                while (sscanf(p, "%d%n", &v, &k) == 1 && nt < 16) {
                    terms[nt++] = v;
                    p += k;
                    if (*p == '+')
                        p++;
                    else
                        break;
                }
                if (*p != '=' || sscanf(p + 1, "%d%n", &last, &k) != 1) {
                    good = 0;
                    break;
                }
                p += 1 + k;
                for (int i = 0; i < nt; i++)
                    sum += terms[i];
                good &= sum == last && (carry == 0 || terms[nt - 1] == carry);
                carry = last / 10;
                if (nd < 60)
                    digits[nd++] = (char)('0' + last % 10);
            }
            /* the product: the top column whole, then the others' last digits, right to left */
            char want[80];
            int k = snprintf(want, sizeof want, "%d", last);
            for (int i = nd - 2; i >= 0 && k < 79; i--)
                want[k++] = digits[i];
            want[k] = '\0';
            if (!(good &= strcmp(want, s.answer) == 0))
                diag("d%d seed %llu: columns give %s, product %s", d, (unsigned long long)seed,
                     want, s.answer);
        }
    ok(good && lines > 500, "mul: %d column additions of the partial products add up", lines);
}

int main(void)
{
    test_registry();
    test_determinism();
    test_own_solutions();
    test_answers();
    test_completions();
    test_lengths();
    test_typed();
    test_chat_space();
    test_mul_columns();
    test_linear_columns();
    return done_testing();
}
