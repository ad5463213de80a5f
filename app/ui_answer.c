/* ui_answer.c — the Answer pane: the <answer> part of the current generation, and once the
 * generation ends, whether it is right or wrong when the prompt came from a task with a
 * verifier.  Text after </answer> shows dimmed.  Draws from the screen model only. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

static const char explain[] =
    "The final answer: the text the model wrote between <answer> and </answer>. When the "
    "question came from a task (addition, countdown, ...), the task's verifier checks it when "
    "the generation ends and the pane shows right or wrong; that check is the accuracy reward "
    "GRPO trains on. Anything the model writes after </answer> shows dimmed. Up/Down scroll a "
    "long answer.";

/* The text of the tokens of a part, concatenated (ids when tokens have no text). */
static char *part_text(const ui_model *m, int part)
{
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < m->ntok; i++) {
        const ui_token *t = &m->tok[i];
        if (t->part != part || t->reasoning)
            continue;
        char buf[32];
        const char *x = t->text;
        if (!x[0]) {
            snprintf(buf, sizeof buf, "%d ", (int)t->id);
            x = buf;
        }
        size_t l = strlen(x);
        if (n + l + 1 > cap) {
            while (n + l + 1 > cap)
                cap *= 2;
            char *p = realloc(s, cap);
            if (!p)
                break;
            s = p;
        }
        memcpy(s + n, x, l + 1);
        n += l;
    }
    return s;
}

/* Drops the <answer> and </answer> tags from s in place. */
static void strip_tags(char *s)
{
    static const char *const tags[] = {"<answer>", "</answer>", "<|eos|>"};
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
        char *p;
        size_t l = strlen(tags[t]);
        while ((p = strstr(s, tags[t])))
            memmove(p, p + l, strlen(p + l) + 1);
    }
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_ANSWER]) {
        ui_draw_explain(w, "Answer", explain, m->explain[UI_ANSWER] - 1);
        return;
    }
    char *ans = part_text(m, 2), *after = part_text(m, 3);
    if (ans)
        strip_tags(ans);
    if (after) /* the end-of-sequence token is the normal end, not text the model wrote */
        strip_tags(after);
    int y = 0, x = 0;
    if (m->gen_done && m->verdict >= 0) {
        const char *mark = m->verdict ? (ui_utf8 ? "✓ right " : "[right] ")
                                      : (ui_utf8 ? "✗ wrong " : "[wrong] ");
        x = ui_put(w, 0, 0, cols, (m->verdict ? ui_attr(R_RIGHT) : ui_attr(R_WRONG)) | A_BOLD,
                   mark);
    }
    if (ans && *ans) {
        /* the first line after the verdict mark, the rest wrapped below */
        int fit = ui_fit(ans, cols - x);
        const char *nl = memchr(ans, '\n', (size_t)fit);
        if (nl)
            fit = (int)(nl - ans);
        char first[512];
        snprintf(first, sizeof first, "%.*s", fit < 511 ? fit : 511, ans);
        ui_put(w, 0, x, cols - x, ui_attr(R_ANSWER), first);
        const char *rest = ans + fit + (nl ? 1 : 0);
        int skip = m->scroll[UI_ANSWER] > 0 ? m->scroll[UI_ANSWER] : 0;
        if (*rest && h > 1)
            y = 1 + ui_draw_text(w, 1, h - 1, skip, ui_attr(R_ANSWER), rest);
        else
            y = 1;
    } else if (m->gen_done || m->gen_active) {
        ui_put(w, 0, x, cols - x, ui_attr(R_DIM),
               m->gen_active ? "(thinking …)" : "(no <answer> in this completion)");
        y = 1;
    } else if (!m->prompt) {
        ui_draw_text(w, 0, h, 0, ui_attr(R_DIM), "The final answer shows here.");
    }
    if (after && after[strspn(after, " \n")] && y < h)
        ui_draw_text(w, y, h - y, 0, ui_attr(R_DIM), after);
    free(ans);
    free(after);
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->gen_done && m->verdict == 1)
        snprintf(buf, n, "Answer · right");
    else if (m->gen_done && m->verdict == 0)
        snprintf(buf, n, "Answer · wrong");
    else
        snprintf(buf, n, "Answer");
}

static int key(ui_model *m, int k)
{
    int *s = &m->scroll[UI_ANSWER];
    if (k == UI_KEY_UP || k == UI_KEY_PGUP)
        *s = *s > 0 ? *s - 1 : 0;
    else if (k == UI_KEY_DOWN || k == UI_KEY_PGDN)
        *s = *s < 0 ? 1 : *s + 1;
    else if (k == UI_KEY_HOME)
        *s = 0;
    else
        return 0;
    return 1;
}

static void click(ui_model *m, int y, int x)
{
    (void)m;
    (void)y;
    (void)x;
}

const ui_pane ui_answer_pane = {"Answer", title, draw, key, click, explain};
