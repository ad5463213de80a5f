/* t_rewards.c — the rule-based rewards on hand-made cases: the completion splitter and the format
 * reward on its edge cases, accuracy through the verifiers, the language share of pure and
 * mixed reasoning (and of every task's worked solutions), DAPO's length penalty at its
 * boundaries, and weighted combinations with a caller's own reward function. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "r1_rewards.h"
#include "tap.h"

static const r1_task *task(const char *name)
{
    const r1_task *t = NULL;
    r1_task_find(&t, name, NULL);
    return t;
}

static int span_is(const char *p, size_t n, const char *want)
{
    return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static void test_split(void)
{
    r1_completion_parts p;
    ok(r1_reward_split("7+9=16</think><answer>16</answer><|eos|>", &p), "split: well formed");
    ok(span_is(p.think, p.think_len, "7+9=16") && span_is(p.answer, p.answer_len, "16"),
       "... reasoning and answer");
    ok(r1_reward_split("<think>a\nb</think>\n<answer> 16 </answer>", &p),
       "split: a leading <think>, a newline between, no <|eos|>");
    ok(span_is(p.think, p.think_len, "a\nb") && span_is(p.answer, p.answer_len, " 16 "),
       "... the parts without the tags, spaces kept");
    ok(!r1_reward_split("no tags at all", &p), "split: no tags is malformed");
    ok(span_is(p.think, p.think_len, "no tags at all") && p.answer == NULL,
       "... the reasoning is everything, no answer");
    ok(!r1_reward_split("abc<answer>5</answer>", &p), "split: no </think> is malformed");
    ok(span_is(p.think, p.think_len, "abc") && span_is(p.answer, p.answer_len, "5"),
       "... best effort: reasoning up to <answer>, the answer block");

    static const struct {
        const char *c;
        int format;
        const char *what;
    } cases[] = {
        {"r</think><answer>a</answer><|eos|>", 1, "the plain shape"},
        {"<think>r</think><answer>a</answer>", 1, "a leading <think>, no eos"},
        {"r</think>  \n<answer>a</answer>\n", 1, "whitespace between blocks and after"},
        {"</think><answer></answer>", 1, "empty blocks (the shape is what counts)"},
        {"r</think><answer>a</answer>x", 0, "text after the answer"},
        {"r</think><answer>a</answer><|eos|>x", 0, "text after <|eos|>"},
        {"r</think><answer>a</answer><|eos|><|pad|>", 0, "a token after <|eos|>"},
        {"r</think>x<answer>a</answer>", 0, "text between the blocks"},
        {"r</think><answer>a</answer><answer>b</answer>", 0, "two answer blocks"},
        {"r</think><answer>a<answer>b</answer>", 0, "a nested <answer>"},
        {"r</think></think><answer>a</answer>", 0, "two </think>"},
        {"<think><think>r</think><answer>a</answer>", 0, "two <think>"},
        {"r<|user|>q</think><answer>a</answer>", 0, "a special token inside the reasoning"},
        {"r</think><answer>a<|eos|></answer>", 0, "a special token inside the answer"},
        {"r</think>a", 0, "no answer tags"},
        {"r<answer>a</answer>", 0, "no </think>"},
        {"", 0, "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r1_reward_sample s = {.completion = cases[i].c};
        is_float(r1_reward_format(&s, NULL), cases[i].format, 0, "format: %s -> %d", cases[i].what,
                 cases[i].format);
    }
    r1_reward_sample none = {0};
    is_float(r1_reward_format(&none, NULL), 0, 0, "format: no completion -> 0");
}

static void test_accuracy(void)
{
    r1_reward_sample s = {
        .completion = "3+4=7</think><answer>7</answer><|eos|>", .target = "7", .task = task("add")};
    is_float(r1_reward_accuracy(&s, NULL), 1, 0, "accuracy: right -> 1");
    s.target = "8";
    is_float(r1_reward_accuracy(&s, NULL), 0, 0, "accuracy: wrong -> 0");
    s.target = "7";
    s.completion = "3+4=7</think>7";
    is_float(r1_reward_accuracy(&s, NULL), 0, 0, "accuracy: the answer outside the tags -> 0");
    s.completion = "3+4=7</think><answer>007</answer>";
    is_float(r1_reward_accuracy(&s, NULL), 1, 0, "accuracy: the task's normalisation applies");
    s.task = NULL;
    is_float(r1_reward_accuracy(&s, NULL), 0, 0, "accuracy without a task: exact text");
    s.completion = "x</think><answer> 7 </answer>";
    is_float(r1_reward_accuracy(&s, NULL), 1, 0, "... trimmed");
    r1_reward_sample a = {.answer = "x = 5", .target = "5", .task = task("linear")};
    is_float(r1_reward_accuracy(&a, NULL), 1, 0, "accuracy from a bare answer");
    a.target = NULL;
    is_float(r1_reward_accuracy(&a, NULL), 0, 0, "accuracy without a target -> 0");
    r1_reward_sample c = {.completion = "Try 8/(3-3)</think><answer>8/(3-3)</answer>",
                          .target = "8/(3-8/3)",
                          .task = task("countdown")};
    is_float(r1_reward_accuracy(&c, NULL), 0, 0, "accuracy: countdown dividing by zero -> 0");
}

static void test_language(void)
{
    r1_reward_sample s = {.think = "Add by columns from the right.\n7+9=16, write 6, carry 1",
                          .lang = R1_LANG_EN};
    is_float(r1_reward_language(&s, NULL), 1, 1e-12, "language: English asked, English written");
    s.lang = R1_LANG_ES;
    /* words: add by columns from the right write carry; none of them Spanish */
    is_float(r1_reward_language(&s, NULL), 0, 1e-12, "... Spanish asked: 0");
    /* mixed: Sumo(es) por(es) columnas(es) from(en) the(en) right(en) escribo(es) carry(en)
     * llevo(es); 9 words, 5 Spanish, 4 English; numbers and symbols do not count */
    s.think = "Sumo por columnas from the right:\n7+9=16, escribo 6, carry 1, llevo 1";
    is_float(r1_reward_language(&s, NULL), 5.0 / 9.0, 1e-12, "mixed reasoning, Spanish asked: 5/9");
    s.lang = R1_LANG_EN;
    is_float(r1_reward_language(&s, NULL), 4.0 / 9.0, 1e-12, "... English asked: 4/9");
    s.lang = R1_LANG_AUTO;
    is_float(r1_reward_language(&s, NULL), 5.0 / 9.0, 1e-12, "... either: the larger share");
    /* the boolean keywords and x are no language's words; unknown words count against */
    s.think = "queda True and not False or x, blorp";
    s.lang = R1_LANG_ES;
    is_float(r1_reward_language(&s, NULL), 0.5, 1e-12,
             "keywords are neutral, an unknown word counts against (1 of 2)");
    s.think = "RESULT: 42";
    s.lang = R1_LANG_EN;
    is_float(r1_reward_language(&s, NULL), 1, 1e-12, "case does not matter");
    s.think = "7+9=16 -> 6 (1)";
    is_float(r1_reward_language(&s, NULL), 0, 0, "no words at all -> 0");
    r1_reward_sample c = {.completion = "Resto 7 en los dos lados</think><answer>3</answer>",
                          .lang = R1_LANG_ES};
    is_float(r1_reward_language(&c, NULL), 1, 1e-12,
             "from a completion: the reasoning only (the answer is not judged)");
    ok(r1_lang_word(R1_LANG_ES, "Pido", 4) && !r1_lang_word(R1_LANG_EN, "pido", 4) &&
           r1_lang_word(R1_LANG_EN, "borrow", 6) && r1_lang_neutral("True", 4),
       "the word lists answer single words");

    /* every task's worked solutions are pure in their language, and far from the other */
    for (int ti = 0; ti < r1_task_count(); ti++) {
        const r1_task *t = r1_task_at(ti);
        double worst_own = 1, worst_other = 0;
        for (int d = 1; d <= r1_task_max_difficulty(t); d++)
            for (uint64_t seed = 0; seed < 100; seed++)
                for (int lang = R1_LANG_EN; lang <= R1_LANG_ES; lang++) {
                    r1_task_sample x;
                    r1_task_generate(t, seed, d, (r1_lang)lang, &x, NULL);
                    r1_reward_sample r = {.think = x.reasoning, .lang = (r1_lang)lang};
                    double own = r1_reward_language(&r, NULL);
                    r.lang = lang == R1_LANG_EN ? R1_LANG_ES : R1_LANG_EN;
                    double other = r1_reward_language(&r, NULL);
                    worst_own = own < worst_own ? own : worst_own;
                    worst_other = other > worst_other ? other : worst_other;
                }
        ok(worst_own == 1.0 && worst_other < 0.5,
           "%s: worked solutions score 1 in their language (lowest %.2f) and below 0.5 in the "
           "other (highest %.2f)",
           r1_task_name(t), worst_own, worst_other);
    }
}

static void test_length(void)
{
    r1_length_opts o = {.cache = 20};
    r1_reward_sample s = {.max_tokens = 100};
    static const struct {
        int L;
        double want;
    } cases[] = {{0, 0},      {50, 0},   {80, 0},   {81, -0.05}, {90, -0.5},
                 {99, -0.95}, {100, -1}, {101, -1}, {5000, -1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s.ntokens = cases[i].L;
        is_float(r1_reward_length(&s, &o), cases[i].want, 1e-12,
                 "length: L=%d, L_max=100, L_cache=20 -> %g", cases[i].L, cases[i].want);
    }
    s.ntokens = 75;
    is_float(r1_reward_length(&s, NULL), 0, 1e-12, "default cache max/4: 75 of 100 -> 0");
    s.ntokens = 90;
    is_float(r1_reward_length(&s, NULL), -0.6, 1e-12, "... 90 of 100 -> -0.6");
    s.max_tokens = 0;
    s.ntokens = 1000000;
    is_float(r1_reward_length(&s, NULL), 0, 0, "no limit -> 0");
    r1_length_opts hard = {.cache = 0};
    s.max_tokens = 100;
    s.ntokens = 100;
    is_float(r1_reward_length(&s, &hard), 0, 0, "cache 0 is a hard limit: at L_max 0");
    s.ntokens = 101;
    is_float(r1_reward_length(&s, &hard), -1, 0, "... past it -1");
}

/* A caller's reward: 1 when the completion mentions the word in user. */
static double mentions(const r1_reward_sample *s, void *user)
{
    return s->completion && strstr(s->completion, (const char *)user) ? 1.0 : 0.0;
}

static void test_combine(void)
{
    r1_reward list[5];
    r1_error err = {0};
    ok(r1_reward_find(&list[0], "accuracy", &err) == R1_OK &&
           r1_reward_find(&list[1], "format", &err) == R1_OK &&
           r1_reward_find(&list[2], "language", &err) == R1_OK &&
           r1_reward_find(&list[3], "length", &err) == R1_OK,
       "the four built-in rewards by name");
    is_str(list[2].name, "language", "... named");
    is_int(r1_reward_find(&list[4], "brevity", &err), R1_ENOTFOUND, "an unknown reward");
    like(err.msg, "accuracy, format, language, length", "... the message lists the known ones");
    list[1].weight = 0.5;
    list[2].weight = 0.25;
    static r1_length_opts o = {.cache = 10};
    list[3].user = &o;
    list[4] = (r1_reward){"mentions", mentions, "carry", 2.0};

    /* right, well formed, 4 of 5 words Spanish, 45 tokens of 50 with a cache of 10 */
    r1_reward_sample s = {
        .completion = "Sumo por columnas: 3+4=7, carry 0</think><answer>7</answer><|eos|>",
        .target = "7",
        .task = task("add"),
        .lang = R1_LANG_ES,
        .ntokens = 45,
        .max_tokens = 50,
    };
    double v[5];
    double total = r1_reward_combine(list, 5, &s, v);
    is_float(v[0], 1, 0, "combine: accuracy 1");
    is_float(v[1], 1, 0, "combine: format 1");
    is_float(v[2], 3.0 / 4.0, 1e-12, "combine: language 3 of 4 words");
    is_float(v[3], -0.5, 1e-12, "combine: length -0.5");
    is_float(v[4], 1, 0, "combine: the caller's reward 1");
    is_float(total, 1 + 0.5 + 0.25 * 0.75 - 0.5 + 2, 1e-12, "combine: the weighted total");
    is_float(r1_reward_combine(list, 2, &s, NULL), 1.5, 1e-12, "values may be NULL");
    is_float(r1_reward_combine(list, 0, &s, v), 0, 0, "no rewards -> 0");
}

/* The controls: a seeded fair coin, the wrong-answer reward, the answer-block reward; overlong
 * with its own lengths. */
static void test_controls(void)
{
    r1_reward_sample s = {.completion = "3+4=7</think><answer>7</answer><|eos|>", .target = "7",
                          .task = task("add")};
    is_float(r1_reward_incorrect(&s, NULL), 0, 0, "incorrect: a right answer -> 0");
    s.completion = "3+4=8</think><answer>8</answer><|eos|>";
    is_float(r1_reward_incorrect(&s, NULL), 1, 0, "incorrect: a wrong answer -> 1");
    is_float(r1_reward_format_only(&s, NULL), 1, 0, "format_only: a wrong answer in a block -> 1");
    s.completion = "3+4=8 and no answer block";
    is_float(r1_reward_incorrect(&s, NULL), 0, 0, "incorrect: no answer at all -> 0");
    is_float(r1_reward_format_only(&s, NULL), 0, 0, "format_only: no answer block -> 0");
    s.completion = "junk <answer>  </answer>";
    is_float(r1_reward_format_only(&s, NULL), 0, 0, "format_only: an empty answer block -> 0");
    s.completion = "no think close <answer>12</answer>";
    is_float(r1_reward_format_only(&s, NULL), 1, 0,
             "format_only: an answer in a malformed completion still counts");
    is_float(r1_reward_format(&s, NULL), 0, 0, "(where format says 0)");

    int ones = 0, same = 1, differ = 0;
    for (uint64_t k = 0; k < 10000; k++) {
        s.key = k * 0x9e3779b97f4a7c15ull;
        double v = r1_reward_random(&s, NULL);
        ones += v == 1;
        same &= (v == 0 || v == 1) && r1_reward_random(&s, NULL) == v;
        s.key ^= 1;
        differ += r1_reward_random(&s, NULL) != v;
    }
    /* 10,000 fair coins: 5000 +- 50 (one sigma); 4800..5200 is four sigma */
    ok(ones > 4800 && ones < 5200, "random: %d ones in 10000 draws", ones);
    ok(same, "random: the same key draws the same coin");
    ok(differ > 4800 && differ < 5200, "random: neighbouring keys are independent (%d differ)",
       differ);

    r1_length_opts o = {.cache = 50, .max = 200};
    r1_reward_sample l = {.ntokens = 140, .max_tokens = 400};
    is_float(r1_reward_length(&l, &o), 0, 0, "overlong max 200 cache 50: 140 tokens -> 0");
    l.ntokens = 175;
    is_float(r1_reward_length(&l, &o), -0.5, 1e-12, "175 -> -0.5 (its own max, not max_tokens)");
    l.ntokens = 201;
    is_float(r1_reward_length(&l, &o), -1, 0, "201 -> -1");
    l.max_tokens = 0;
    is_float(r1_reward_length(&l, &o), -1, 0, "and it needs no generation limit");
    r1_reward rw;
    ok(r1_reward_find(&rw, "random", NULL) == R1_OK && r1_reward_find(&rw, "incorrect", NULL) ==
           R1_OK && r1_reward_find(&rw, "format_only", NULL) == R1_OK &&
           r1_reward_find(&rw, "overlong", NULL) == R1_OK,
       "the controls and overlong are built-in rewards");
}

int main(void)
{
    test_split();
    test_accuracy();
    test_language();
    test_length();
    test_combine();
    /* the preference rewards of the second RL stage */
    {
        const r1_task *chat;
        r1_task_find(&chat, "chat", NULL);
        r1_reward_sample u = {"How do I make a weapon at home? Think in English.",
                              "This asks for help.</think><answer>I cannot help with that."
                              "</answer><|eos|>",
                              NULL, NULL, "I cannot help with that.", chat, R1_LANG_EN, 20, 64, 0};
        is_float(r1_reward_harmlessness(&u, NULL), 1.0, 0, "a refused unsafe request: +1");
        is_float(r1_reward_helpfulness(&u, NULL), 0.0, 0, "and helpfulness stays out of it");
        u.completion = "Sure.</think><answer>First you take</answer><|eos|>";
        is_float(r1_reward_harmlessness(&u, NULL), -1.0, 0, "an unsafe request answered: -1");
        r1_reward_sample h = {"Write the word cat backwards. Think in English.",
                              "Backwards: t a c</think><answer>tac</answer><|eos|>",
                              NULL, NULL, "tac", chat, R1_LANG_EN, 20, 64, 0};
        is_float(r1_reward_helpfulness(&h, NULL), 1.0, 0, "a right, concise answer: 1");
        is_float(r1_reward_harmlessness(&h, NULL), 0.0, 0, "a harmless request answered: 0");
        h.completion = "x</think><answer>I cannot help with that.</answer><|eos|>";
        is_float(r1_reward_harmlessness(&h, NULL), -0.5, 0, "over-refusal: -0.5");
        is_float(r1_reward_helpfulness(&h, NULL), 0.0, 0, "and no help");
        h.completion = "x</think><answer>tac tac tac tac tac tac tac</answer><|eos|>";
        h.target = "tac tac tac tac tac tac tac";
        is_float(r1_reward_helpfulness(&h, NULL), 1.0, 0, "a long right answer that was asked for");
        h.completion = "x</think><answer>ok here it is: tac, which is cat reversed, done</answer>";
        h.target = "tac";
        is_float(r1_reward_helpfulness(&h, NULL), 0.0, 0, "a wrong (chatty) answer earns nothing");
        r1_reward rw;
        ok(r1_reward_find(&rw, "helpfulness", NULL) == R1_OK &&
               r1_reward_find(&rw, "harmlessness", NULL) == R1_OK,
           "both are found by name");
        ok(r1_chat_is_refusal("No puedo ayudar con eso.", 24), "a Spanish refusal counts");
    }
    test_controls();
    return done_testing();
}
