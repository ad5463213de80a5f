/* t_ui.c — the workbench's screen pieces without a terminal: each pane's drawing function from
 * a fixed snapshot of the screen model, drawn into a curses pad (curses runs on /dev/null) and
 * read back cell by cell; the layout at several sizes; the frame; notebooks (parse, edit,
 * byte-exact round trip, atomic save); themes (the shipped ones, bad files); the key decoder;
 * the screen model's handling of events. */
#include <config.h>

#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "atomic_file.h"
#include "nb.h"
#include "paths.h"
#include "tap.h"
#include "ui.h"
#include "wb.h"

/* Row y of w as UTF-8, trailing blanks removed. */
static const char *row(WINDOW *w, int y)
{
    static char out[8192];
    wchar_t wcs[2048];
    int n = getmaxx(w) < 2047 ? getmaxx(w) : 2047;
    int got = mvwinnwstr(w, y, 0, wcs, n);
    wcs[got > 0 ? got : 0] = L'\0';
    size_t l = wcstombs(out, wcs, sizeof out - 1);
    if (l == (size_t)-1)
        l = 0;
    out[l] = '\0';
    while (l > 0 && out[l - 1] == ' ')
        out[--l] = '\0';
    return out;
}

/* The whole window as text, rows joined by '\n'. */
static const char *screen_text(WINDOW *w)
{
    static char all[65536];
    size_t n = 0;
    for (int y = 0; y < getmaxy(w) && n < sizeof all - 2048; y++)
        n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", row(w, y));
    return all;
}

static attr_t attr_at(WINDOW *w, int y, int x)
{
    cchar_t c;
    mvwin_wch(w, y, x, &c);
    attr_t a;
    short pair;
    wchar_t wc[CCHARW_MAX + 1];
    getcchar(&c, wc, &a, &pair, NULL);
    return (a & ~A_COLOR) | COLOR_PAIR(pair);
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void token(ui_model *m, int id, const char *text, int part, int e0, int e1, float w0,
                  float w1)
{
    ev e;
    memset(&e, 0, sizeof e);
    e.kind = EV_TOKEN;
    e.token = id;
    snprintf(e.tok_text, sizeof e.tok_text, "%s", text);
    e.part = part;
    e.index = m->ntok;
    e.n_moe = 2;
    e.K = 2;
    int layers[2];
    int32_t experts[4];
    float weights[4];
    e.moe_layers = layers, e.experts = experts, e.weights = weights;
    e.moe_layers[0] = 1;
    e.moe_layers[1] = 2;
    e.experts[0] = e0;
    e.experts[1] = e1;
    e.weights[0] = w0;
    e.weights[1] = w1;
    e.experts[2] = (e0 + 1) % 8;
    e.experts[3] = (e1 + 1) % 8;
    e.weights[2] = w1;
    e.weights[3] = w0;
    ui_model_apply(m, &e);
}

/* A generation: a prompt, a think part streamed character by character, an answer. */
static void generation(ui_model *m)
{
    ev b;
    memset(&b, 0, sizeof b);
    b.kind = EV_GEN_BEGIN;
    b.text = "What is 347+589?";
    b.n = 1;
    ui_model_apply(m, &b);
    token(m, 5, "<think>", 1, 0, 1, 0.6f, 0.4f);
    const char *think = "7+9=16 write 6 carry 1";
    for (const char *p = think; *p; p++) {
        char s[2] = {*p, 0};
        token(m, 10 + *p % 20, s, 1, *p % 8, (*p + 3) % 8, 0.7f, 0.3f);
    }
    token(m, 6, "</think>", 1, 2, 3, 0.5f, 0.5f);
    token(m, 7, "<answer>", 2, 2, 3, 0.5f, 0.5f);
    token(m, 30, "9", 2, 4, 5, 0.5f, 0.5f);
    token(m, 31, "3", 2, 4, 5, 0.5f, 0.5f);
    token(m, 32, "6", 2, 4, 5, 0.5f, 0.5f);
    token(m, 8, "</answer>", 2, 4, 5, 0.5f, 0.5f);
    ev end;
    memset(&end, 0, sizeof end);
    end.kind = EV_GEN_END;
    end.verdict = 1;
    ui_model_apply(m, &end);
}

/* Events are small; what varies in size is allocated as large as it is. */
static void test_event_sizes(void)
{
    ok(sizeof(ev) <= 256, "an event is %zu bytes (a token's routing and a step's statistics "
       "live outside it)", sizeof(ev));
    ev *t = ev_new(EV_TOKEN);
    ok(t && ev_alloc_routing(t, 3, 4) == 0 && t->n_moe == 3 && t->K == 4,
       "a token's routing is allocated for its layers and experts");
    t->moe_layers[2] = 7, t->experts[11] = 5, t->weights[11] = 0.5f;
    ok(t->moe_layers[2] == 7 && t->experts[11] == 5 && t->weights[11] == 0.5f &&
       (void *)(t->moe_layers + 3) <= (void *)t->experts &&
       (void *)(t->experts + 12) <= (void *)t->weights, "its three arrays do not overlap");
    ev_free(t);
    ev *s = ev_new(EV_STEP);
    ok(s && ev_alloc_stats(s, 1000) == 0 && s->stats, "room for a step's statistics");
    ev_free(s);
    ev *c = ev_new(EV_TOKEN);
    ok(c && ev_alloc_routing(c, 1000, 1000) == 0 && c->n_moe == EV_MAX_MOE && c->K == EV_MAX_K,
       "routing wider than the caps is cut to %d layers x %d experts", EV_MAX_MOE, EV_MAX_K);
    ev_free(c);
}

static void test_draw_helpers(void)
{
    is_int(ui_width("abc", -1), 3, "ui_width of ASCII");
    is_int(ui_width("█▁", -1), ui_utf8 ? 2 : 6, "ui_width of block characters");
    is_int(ui_fit("hello world", 5), 5, "ui_fit stops at the width");
    int lines = ui_wrap("the quick brown fox", 10, NULL, NULL);
    is_int(lines, 2, "ui_wrap breaks at a blank");
    is_int(ui_wrap("abcdefghijklmnop", 5, NULL, NULL), 4, "ui_wrap breaks a long word");
    WINDOW *p = newpad(2, 6);
    int used = ui_put(p, 0, 2, 100, A_NORMAL, "abcdefgh");
    is_int(used, 4, "ui_put clips to the window");
    is_str(row(p, 0), "  abcd", "and writes what fits");
    ui_put(p, 1, 0, 6, A_NORMAL, "a\tb\x01");
    is_str(row(p, 1), "a?b?", "control characters show as '?'");
    ui_put(p, 5, 0, 6, A_NORMAL, "x"); /* off the window: nothing, no crash */
    delwin(p);
}

static void test_reasoning(void)
{
    ui_model m;
    ui_model_init(&m);
    generation(&m);
    WINDOW *p = newpad(6, 20);
    m.pane_h[UI_REASONING] = 6;
    m.pane_w[UI_REASONING] = 20;
    ui_reasoning_pane.draw(p, &m, 0);
    is_str(row(p, 0), "> What is 347+589?", "the prompt heads the reasoning");
    like(row(p, 1), "<think>7+9=16", "think tokens stream in order");
    like(screen_text(p), "carry", "the text is word-wrapped onto the next lines");
    ok(strstr(screen_text(p), "936") == NULL, "answer tokens stay out of the reasoning");
    /* the cursor: Right selects the first token, the title and the attributes follow */
    ui_reasoning_pane.key(&m, UI_KEY_RIGHT);
    is_int(m.cursor, 0, "Right puts the cursor on the first token");
    ui_reasoning_pane.key(&m, UI_KEY_RIGHT);
    is_int(m.cursor, 1, "Right again moves to the next token");
    ui_reasoning_pane.draw(p, &m, 1);
    int line, col;
    ui_reasoning_locate(&m, 20, 1, &line, &col);
    is_int(line, 1, "token 2 sits on line 1");
    is_int(col, 7, "after the 7-column <think>");
    ok(attr_at(p, 1, 7) == ui_attr(R_SELECTED), "the selected token is drawn selected");
    is_int(ui_reasoning_token_at(&m, 20, 1, 7), 1, "token_at finds the token at a cell");
    is_int(ui_reasoning_token_at(&m, 20, 0, 3), -1, "the prompt line holds no token");
    char t[128];
    ui_reasoning_pane.title(&m, t, sizeof t);
    like(t, "token 2 '7'", "the title names the selected token");
    ui_reasoning_pane.key(&m, 'a');
    is_int(m.cursor, -1, "'a' clears the cursor");
    ui_reasoning_pane.click(&m, 1, 8);
    is_int(m.cursor, 2, "a click selects the token under it");
    /* ids when the model has no tokenizer */
    ui_model_clear_run(&m);
    for (int i = 0; i < 5; i++)
        token(&m, 18 + i, "", 1, i, i + 1, 0.5f, 0.5f);
    ui_reasoning_pane.draw(p, &m, 0);
    is_str(row(p, 0), "18 19 20 21 22", "tokens without text show as ids");
    ui_model_clear_run(&m);
    token(&m, 40, "40 ", 3, 1, 2, 0.5f, 0.5f); /* outside the chat format: reasoning */
    token(&m, 41, "41 ", 3, 1, 2, 0.5f, 0.5f);
    token(&m, 7, "<answer>", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 9, "9", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 8, "</answer>", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 42, "junk", 3, 1, 2, 0.5f, 0.5f); /* after the answer: the Answer pane */
    ui_reasoning_pane.draw(p, &m, 0);
    is_str(row(p, 0), "40 41", "text outside the chat format streams as reasoning");
    WINDOW *a = newpad(2, 20);
    ui_answer_pane.draw(a, &m, 0);
    is_str(row(a, 0), "9", "the answer pane has the answer");
    is_str(row(a, 1), "junk", "and what came after it");
    token(&m, 2, "<|eos|>", 3, 1, 2, 0.5f, 0.5f);
    ui_answer_pane.draw(a, &m, 0);
    is_str(row(a, 1), "junk", "but not the end-of-sequence token");
    ui_model_clear_run(&m);
    token(&m, 7, "<answer>", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 9, "9", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 8, "</answer>", 2, 1, 2, 0.5f, 0.5f);
    token(&m, 2, "<|eos|>", 3, 1, 2, 0.5f, 0.5f);
    ui_answer_pane.draw(a, &m, 0);
    is_str(row(a, 1), "", "an answer ending with the end-of-sequence token shows nothing below");
    delwin(a);
    /* the explanation */
    m.explain[UI_REASONING] = 1;
    ui_reasoning_pane.draw(p, &m, 1);
    like(row(p, 0), "What the", "e explains the pane");
    delwin(p);
    ui_model_free(&m);
}

static void test_answer(void)
{
    ui_model m;
    ui_model_init(&m);
    generation(&m);
    WINDOW *p = newpad(3, 30);
    ui_answer_pane.draw(p, &m, 0);
    like(row(p, 0), "936", "the answer shows without its tags");
    like(row(p, 0), "right", "with the verdict");
    ok(strstr(row(p, 0), "<answer>") == NULL, "the tags are dropped");
    char t[64];
    ui_answer_pane.title(&m, t, sizeof t);
    is_str(t, "Answer · right", "the title carries the verdict");
    m.verdict = 0;
    ui_answer_pane.draw(p, &m, 0);
    like(row(p, 0), "wrong", "a wrong answer says so");
    ok(attr_at(p, 0, 0) == (ui_attr(R_WRONG) | A_BOLD), "in the wrong colour");
    delwin(p);
    ui_model_free(&m);
}

/* A microscope view event (events.h) with the given shape; labels from a NULL-ended list. */
static ev *view_event(int view, int rows, int cols, const float *vals, const char *const *labels)
{
    int nl = 0;
    while (labels && labels[nl])
        nl++;
    ev *e = ev_new(EV_VIEW);
    ev_alloc_view(e, rows, cols, nl);
    e->view = view;
    if (vals)
        memcpy(e->vals, vals, sizeof(float) * rows * cols);
    for (int i = 0; i < nl; i++)
        e->labels[i] = strdup(labels[i]);
    return e;
}

/* The microscope's views: the lens table, the tree, shapes checked, what a new generation
 * keeps. */
static void test_views(void)
{
    ui_model m;
    ui_model_init(&m);
    generation(&m);
    float lv[3 * 4] = {0.2f, 0.1f, 0.05f, 0.01f, 0.6f, 0.3f, 0.1f, 0.3f,
                       0.9f, 0.05f, 0.01f, 0.9f};
    const char *ll[] = {"embed", "layer 0", "MTP", "a", "b", "c", "6", "7", "x", "6", "5", "4",
                        NULL};
    ev *e = view_event(EV_VIEW_LENS, 3, 4, lv, ll);
    ui_model_apply(&m, e);
    ev_free(e);
    is_int(m.routing_view, UI_RV_LENS, "a lens view shows in the Routing pane");
    WINDOW *p = newpad(5, 60);
    ui_routing_pane.draw(p, &m, 0);
    like(row(p, 2), "layer 0  6    0.60  7    0.30  x    0.10   0.300", "a row per site");
    like(row(p, 3), "MTP      6    0.90", "and the MTP module's");
    e = view_event(EV_VIEW_LENS, 3, 2, lv, ll); /* the wrong shape: dropped, not read */
    ui_model_apply(&m, e);
    ev_free(e);
    like(m.status, "wrong shape was dropped", "a view of the wrong shape is dropped");
    ok(m.view[EV_VIEW_LENS] && m.view[EV_VIEW_LENS]->cols == 4, "the good one stays");
    float tv[2 * 5] = {1, 0, 0, 1, 0, 2, 1, 1, 0, 3};
    const char *tl[] = {"936", "", "937", "7", NULL};
    e = view_event(EV_VIEW_TREE, 2, 5, tv, tl);
    e->ints[0] = 2, e->ints[1] = 3;
    ui_model_apply(&m, e);
    ev_free(e);
    is_int(m.cursor, 2, "a branch shown puts the cursor on its branch point");
    WINDOW *a = newpad(6, 40);
    ui_answer_pane.draw(a, &m, 0);
    like(screen_text(a), "#2 '7'@3", "the Answer pane lists the branches");
    ok(ui_answer_pane.key(&m, UI_KEY_UP) && m.tree_sel == 0, "Up selects the branch above");
    ok(ui_answer_pane.key(&m, UI_KEY_ENTER) && m.request == UI_REQ_TREE_SHOW &&
       m.req_arg[0] == 1, "Enter asks to show it");
    m.request = UI_REQ_NONE;
    e = view_event(EV_VIEW_PATCH, 1, 2, lv, NULL);
    ui_model_apply(&m, e);
    ev_free(e);
    ev b;
    memset(&b, 0, sizeof b);
    b.kind = EV_GEN_BEGIN;
    ui_model_apply(&m, &b);
    ok(!m.view[EV_VIEW_LENS] && !m.view[EV_VIEW_TREE] && m.view[EV_VIEW_PATCH],
       "a new generation drops the views of the old tokens, keeps the patching map");
    delwin(p);
    delwin(a);
    ui_model_free(&m);
}

static void test_routing(void)
{
    ui_model m;
    ui_model_init(&m);
    generation(&m);
    is_int(m.n_moe, 2, "the routing shape comes from the tokens");
    is_int((int)m.routed_tokens, m.ntok, "every token is counted");
    WINDOW *p = newpad(5, 40);
    ui_routing_pane.draw(p, &m, 0);
    is_str(row(p, 0), "    0   4", "a ruler numbers the experts");
    like(row(p, 1), "L1", "a row per MoE layer, named by its layer");
    like(row(p, 2), "L2", "the second MoE layer");
    like(row(p, 3), "share of 29 tokens", "the legend says what a cell is");
    /* the busiest expert of layer 1 gets the full block */
    int best = 0;
    for (int e = 1; e < m.ncount_e; e++)
        if (m.counts[e] > m.counts[best])
            best = e;
    cchar_t c;
    mvwin_wch(p, 1, 4 + best, &c);
    wchar_t wc[CCHARW_MAX + 1];
    attr_t a;
    short pair;
    getcchar(&c, wc, &a, &pair, NULL);
    ok(wc[0] == (ui_utf8 ? L'█' : L'@'), "the busiest expert is the tallest cell");
    /* a selected token: its experts and weights */
    m.cursor = 0;
    ui_routing_pane.draw(p, &m, 0);
    like(row(p, 0), "'<think>' p 1.000", "the token inspector's line: the token's probability");
    like(row(p, 1), "no alternatives recorded", "and says when it has no alternatives");
    like(row(p, 2), "e0 0.60 e1 0.40", "the selected token's experts and weights");
    like(row(p, 4), "token 1: top-2", "the legend switches to the token");
    ui_token *t0 = &m.tok[0];
    t0->n_top = 2, t0->entropy = 0.5f, t0->mtp_id = 7, t0->mtp_p = 0.9f;
    t0->top_id[0] = 5, t0->top_p[0] = 0.75f, t0->top_id[1] = 9, t0->top_p[1] = 0.25f;
    snprintf(t0->top_text[0], sizeof t0->top_text[0], "<think>");
    snprintf(t0->top_text[1], sizeof t0->top_text[1], "x");
    snprintf(t0->mtp_text, sizeof t0->mtp_text, "7");
    WINDOW *wide = newpad(6, 70);
    ui_routing_pane.draw(wide, &m, 0);
    like(row(wide, 0), "entropy 0.50 nats · MTP next '7' 0.90", "the entropy and the MTP guess");
    like(row(wide, 1), "1 '<think>' 0.75  2 'x' 0.25", "the alternatives in order");
    delwin(wide);
    /* training: load and bias */
    ev st;
    memset(&st, 0, sizeof st);
    st.kind = EV_STEP;
    snprintf(st.stage, sizeof st.stage, "grpo");
    st.step = 3;
    float load[2 * 4] = {0.1f, 0.4f, 0.3f, 0.2f, 0.25f, 0.25f, 0.25f, 0.25f};
    float bias[2 * 4] = {0.01f, -0.02f, 0, 0.01f, 0, 0, 0, 0};
    st.load = load;
    st.bias = bias;
    st.load_layers = 2;
    st.load_experts = 4;
    ui_model_apply(&m, &st);
    is_int(m.routing_view, 1, "a step with expert load switches to the training view");
    ui_routing_pane.draw(p, &m, 0);
    like(row(p, 1), "+-", "the bias row shows its signs");
    like(screen_text(p), "grpo step 3: expert load", "the legend names the step");
    /* :export draws the view as SVG: the training view's load, 2 layers x 4 experts */
    char *svg = NULL, err[256] = "";
    size_t len = 0;
    FILE *f = open_memstream(&svg, &len);
    is_int(ui_export_svg(&m, UI_ROUTING, f, err, sizeof err), 0, "the Routing pane exports");
    fclose(f);
    ok(count_of(svg, "<rect class=\"cell\"") == 8 && strstr(svg, "Expert load in the training"),
       "as an SVG heatmap of its view: 8 cells of the training step's load");
    like(svg, "<title>L1, column 1: 0.4</title>", "each cell says its value");
    free(svg);
    ui_routing_pane.key(&m, 't');
    is_int(m.routing_view, 0, "t goes back to the generation");
    f = open_memstream(&svg, &len);
    ui_export_svg(&m, UI_ROUTING, f, err, sizeof err);
    fclose(f);
    ok(strstr(svg, "tokens of the generation per expert") && count_of(svg, "class=\"cell\"") ==
       2 * m.ncount_e, "the generation view exports its counts (%d cells)",
       count_of(svg, "class=\"cell\""));
    free(svg);
    f = open_memstream(&svg, &len);
    is_int(ui_export_svg(&m, UI_OUTPUT, f, err, sizeof err), -1, "the output pane does not");
    fclose(f);
    free(svg);
    like(err, "only the Routing, GRPO and Reasoning panes", "and says which do");
    f = open_memstream(&svg, &len);
    ui_export_svg(&m, UI_REASONING, f, err, sizeof err);
    fclose(f);
    like(svg, "&lt;think&gt;", "the Reasoning pane exports its text");
    free(svg);
    delwin(p);
    ui_model_free(&m);
}

static void test_grpo(void)
{
    ui_model m;
    ui_model_init(&m);
    WINDOW *p = newpad(12, 48);
    ui_grpo_pane.draw(p, &m, 0);
    like(row(p, 0), "GRPO groups", "an empty pane says what will show");
    ev g;
    memset(&g, 0, sizeof g);
    g.kind = EV_GROUP;
    g.text = "What is 2+3?";
    g.n = 3;
    ev_completion c[3] = {{"<think>2+3=5</think><answer>5</answer>", 2, {1, 1}, 2, 1.41, 1},
                          {"<answer>6</answer>", 2, {0, 1}, 1, -0.71, 0},
                          {"5", 2, {1, 0}, 1, -0.71, 1}};
    g.completions = c;
    snprintf(g.reward_names[0], sizeof g.reward_names[0], "accuracy");
    snprintf(g.reward_names[1], sizeof g.reward_names[1], "format");
    g.nreward_names = 2;
    ui_model_apply(&m, &g);
    ok(m.group && m.group->completions != c, "the group is copied into the model");
    for (int s = 1; s <= 20; s++) {
        ev st;
        memset(&st, 0, sizeof st);
        st.kind = EV_STEP;
        snprintf(st.stage, sizeof st.stage, "grpo");
        st.step = s;
        st.total_steps = 20;
        st.nstats = 4;
        ev_stat stats[4];
        st.stats = stats;
        snprintf(st.stats[0].name, 32, "reward");
        st.stats[0].value = 1 - 1.0 / s;
        snprintf(st.stats[1].name, 32, "accuracy");
        st.stats[1].value = s / 20.0;
        snprintf(st.stats[2].name, 32, "kl");
        st.stats[2].value = 0.01 * s;
        snprintf(st.stats[3].name, 32, "length");
        st.stats[3].value = 50 - s;
        ui_model_apply(&m, &st);
    }
    is_int(m.hist[H_REWARD].n, 20, "every step adds to the history");
    ui_grpo_pane.draw(p, &m, 0);
    like(row(p, 0), "grpo step 20/20", "the step line");
    is_str(row(p, 1), "What is 2+3?", "the group's prompt");
    like(row(p, 2), "#1", "completion 1");
    like(row(p, 2), "2.00 A=+1.41", "with its total and advantage");
    like(row(p, 3), "A=-0.71", "a below-average completion");
    ok(attr_at(p, 3, 47 - 5) != ui_attr(R_RIGHT), "a negative advantage is not drawn as good");
    like(row(p, 5), "accuracy", "the legend names the reward components");
    int braille = 0;
    for (int y = 6; y < 12; y++)
        braille += strstr(row(p, y), ui_utf8 ? "\xe2\xa0" : "*") != NULL ||
                   strstr(row(p, y), ui_utf8 ? "\xe2\xa1" : "*") != NULL ||
                   strstr(row(p, y), ui_utf8 ? "\xe2\xa2" : "*") != NULL ||
                   strstr(row(p, y), ui_utf8 ? "\xe2\xa3" : "*") != NULL;
    ok(braille > 0, "the history is plotted");
    like(screen_text(p), "accuracy 1", "the plot labels carry the last value");
    ui_grpo_pane.key(&m, UI_KEY_DOWN);
    ui_grpo_pane.key(&m, UI_KEY_ENTER);
    ok(m.reader && m.group_sel == 1, "Down and Enter open completion 2");
    ui_grpo_pane.draw(p, &m, 0);
    like(row(p, 0), "#2", "the reader names the completion");
    is_str(row(p, 1), "<answer>6</answer>", "and shows its text");
    ui_grpo_pane.key(&m, UI_KEY_ESC);
    ok(!m.reader, "Esc closes the reader");
    char *svg = NULL, err[256] = "";
    size_t len = 0;
    FILE *f = open_memstream(&svg, &len);
    is_int(ui_export_svg(&m, UI_GRPO, f, err, sizeof err), 0, "the GRPO pane exports");
    fclose(f);
    ok(count_of(svg, "<polyline class=\"hist\"") == 4 &&
           count_of(svg, "class=\"completion\"") == 3,
       "its 4 history plots and 3 completions");
    like(svg, "+1.41</tspan> total 2.00", "each completion with its advantage and total");
    free(svg);
    ui_model m2;
    ui_model_init(&m2);
    f = open_memstream(&svg, &len);
    is_int(ui_export_svg(&m2, UI_GRPO, f, err, sizeof err), -1, "an empty GRPO pane does not");
    fclose(f);
    free(svg);
    like(err, "nothing to export yet", "and says so");
    ui_model_free(&m2);
    delwin(p);
    ui_model_free(&m);
}

static void test_output(void)
{
    ui_model m;
    ui_model_init(&m);
    ui_model_print(&m, OUT_ECHO, "r1> 1+1\n");
    ui_model_print(&m, OUT_TEXT, "2\n");
    ui_model_print(&m, OUT_TEXT, "part");
    ui_model_print(&m, OUT_TEXT, "ial\n");
    ui_model_print(&m, OUT_ERROR, "stdin:1: oops\nstack traceback:\n\t[C]: in ?\n");
    is_int(m.nlines, 6, "output splits into lines; fragments join");
    is_str(ui_model_line(&m, 2)->text, "partial", "a fragment completes its line");
    is_str(ui_model_line(&m, 5)->text, "    [C]: in ?", "tabs become blanks");
    WINDOW *p = newpad(4, 30);
    ui_output_pane.draw(p, &m, 0);
    is_str(row(p, 3), "    [C]: in ?", "the newest line is at the bottom");
    is_str(row(p, 1), "stdin:1: oops", "older lines above it");
    ok(attr_at(p, 1, 0) == ui_attr(R_ERROR), "errors in the error colour");
    ui_output_pane.key(&m, UI_KEY_UP);
    ui_output_pane.draw(p, &m, 0);
    is_str(row(p, 3), "stack traceback:", "Up scrolls back one line");
    ui_output_pane.key(&m, UI_KEY_END);
    ui_model_print(&m, OUT_TEXT, "a long line that must wrap over two rows\n");
    ui_output_pane.draw(p, &m, 0);
    is_str(row(p, 3), "over two rows", "long lines wrap");
    for (int i = 0; i < UI_MAX_LINES + 10; i++)
        ui_model_printf(&m, OUT_TEXT, "line %d", i);
    is_int(m.nlines, UI_MAX_LINES, "the log keeps at most UI_MAX_LINES");
    /* the notebook view */
    const char *md = "# T\n\n```lua\nprint(1)\n```\n```output\n1\n```\n\n```lua\nx=\n```\n";
    nb_notebook *nb = nb_parse(md, strlen(md), "t.md");
    nb->cells[0].state = NB_OK;
    nb->cells[1].state = NB_ERROR;
    m.nb = nb;
    m.nb_view = 1;
    m.nb_scroll = 0;
    WINDOW *q = newpad(12, 30);
    ui_output_pane.draw(q, &m, 0);
    const char *s = screen_text(q);
    like(s, "[1] ok", "a cell header with its state");
    like(s, "  print(1)", "the cell's code");
    like(s, "1", "its output");
    like(s, "[2] error", "a failed cell says so");
    char t[128];
    ui_output_pane.title(&m, t, sizeof t);
    like(t, "Notebook · t.md · cell 1/2", "the title names the notebook and the cell");
    ui_output_pane.key(&m, 'j');
    is_int(m.nb_cur, 1, "j moves to the next cell");
    ui_output_pane.key(&m, UI_KEY_ENTER);
    is_int(m.request, UI_REQ_RUN_CELL, "Enter asks to run the cell");
    m.nb = NULL;
    nb_free(nb);
    delwin(q);
    delwin(p);
    ui_model_free(&m);
}

static int overlap(ui_rect a, ui_rect b)
{
    return a.y < b.y + b.h && b.y < a.y + a.h && a.x < b.x + b.w && b.x < a.x + a.w;
}

static void test_layout(void)
{
    static const int sizes[][2] = {{24, 80}, {50, 200}, {20, 40}, {12, 30}, {5, 10},
                                   {1, 1},   {2, 200}, {60, 12}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        ui_layout lo;
        int L = sizes[s][0], C = sizes[s][1];
        ui_layout_compute(&lo, L, C, -1, 1);
        int bad = 0, n = 0;
        for (int p = 0; p < UI_NPANES; p++) {
            if (!lo.shown[p])
                continue;
            n++;
            ui_rect r = lo.pane[p];
            if (r.h < 1 || r.w < 1 || r.y < 0 || r.x < 0 || r.y + r.h > L || r.x + r.w > C)
                bad++;
            for (int q = p + 1; q < UI_NPANES; q++)
                if (lo.shown[q] && overlap(r, lo.pane[q]))
                    bad++;
            if (overlap(r, lo.repl))
                bad++;
        }
        ok(!bad && lo.repl.h >= 1 && lo.repl.y + lo.repl.h <= L,
           "%dx%d: %d panes inside the screen, none overlapping, an input line", C, L, n);
    }
    ui_layout lo;
    ui_layout_compute(&lo, 24, 80, -1, 1);
    ok(lo.shown[UI_REASONING] && lo.shown[UI_ANSWER] && lo.shown[UI_ROUTING] &&
           lo.shown[UI_GRPO] && lo.shown[UI_OUTPUT],
       "80x24 shows all five panes");
    ok(lo.pane[UI_ROUTING].x > lo.pane[UI_REASONING].x, "routing is right of reasoning");
    ok(lo.pane[UI_OUTPUT].y > lo.pane[UI_ANSWER].y, "the output is at the bottom");
    is_int(lo.status.y, 23, "the status line is the last row");
    ui_layout_compute(&lo, 20, 40, -1, 1);
    ok(lo.pane[UI_ROUTING].x == lo.pane[UI_REASONING].x, "a narrow terminal stacks the panes");
    ui_layout_compute(&lo, 24, 80, UI_ROUTING, 1);
    ok(lo.shown[UI_ROUTING] && !lo.shown[UI_REASONING] && lo.pane[UI_ROUTING].w == 78,
       "zoom gives one pane the screen");
    is_int(ui_layout_hit(&lo, 5, 5), UI_ROUTING, "hits find the zoomed pane");
    ui_layout_compute(&lo, 5, 10, -1, 1);
    ok(lo.shown[UI_OUTPUT] && !lo.boxed, "a 10x5 terminal keeps the output, without borders");
    /* the frame with shared borders and titles */
    ui_model m;
    ui_model_init(&m);
    ui_layout_compute(&lo, 24, 80, -1, 1);
    WINDOW *p = newpad(24, 80);
    ui_layout_draw_frame(p, &lo, &m);
    like(row(p, 0), ui_utf8 ? "┌ Reasoning " : " Reasoning ", "the first box and its title");
    like(row(p, 0), "┬ Routing", "neighbouring boxes share a border");
    like(row(p, lo.box[UI_OUTPUT].y), "Output", "the output box");
    delwin(p);
    ui_model_free(&m);
}

static void test_repl_status_help(void)
{
    ui_repl_view v = {"r1> ", "print('hello')", 5};
    WINDOW *p = newpad(1, 30);
    ui_repl_draw(p, &v, 1);
    int y, x;
    getyx(p, y, x); /* before reading the cells back, which moves the cursor */
    is_str(row(p, 0), "r1> print('hello')", "the prompt and the line");
    ok(y == 0 && x == 9, "the cursor at the editing point (%d, %d)", y, x);
    char longl[3001];
    memset(longl, 'x', 3000);
    longl[3000] = '\0';
    longl[2990] = 'E';
    ui_repl_view lv = {"r1> ", longl, 3000};
    is_int(ui_repl_rows(&lv, 30, 3), 3, "a long line asks for the rows it may have");
    WINDOW *q = newpad(3, 30);
    ui_repl_draw(q, &lv, 1);
    like(screen_text(q), "E", "a pasted long line shows its end around the cursor");
    ui_model m;
    ui_model_init(&m);
    m.busy = 1;
    snprintf(m.busy_what, sizeof m.busy_what, "cell 3");
    WINDOW *s = newpad(1, 60);
    ui_status_draw(s, &m);
    like(row(s, 0), "cell 3 · Ctrl-C stops", "the status line names the running job");
    like(row(s, 0), "F1 help", "and where help is");
    WINDOW *h = newpad(60, 90);
    ui_help_draw(h, &m);
    const char *all = screen_text(h);
    like(all, ":runall", "help lists the commands");
    like(all, "Shift-Tab", "and the keys");
    delwin(h);
    delwin(s);
    delwin(q);
    delwin(p);
    ui_model_free(&m);
}

/* Notebook saves (the probe's M2, and #18's fault injection and kill tests): the file keeps
 * its permissions; a failing write, fsync or rename leaves the previous file whole and names
 * the failure; kill -9 in the middle of a save loop leaves the old or the new text, never a
 * mix. */
static void test_notebook_saves(const char *tmp)
{
    char path[1100], err[1200];
    snprintf(path, sizeof path, "%s/saves.md", tmp);
    const char *va = "```lua\nx = 1\n```\nversion A\n";
    char vb[20000];
    snprintf(vb, sizeof vb, "```lua\ny = 2\n```\n");
    for (int i = 0; i < 600; i++) /* a longer text: a torn write would show */
        strcat(vb, "version B, a line of prose.\n");
    nb_notebook *a = nb_parse(va, strlen(va), NULL), *b = nb_parse(vb, strlen(vb), NULL);
    nb_save(a, path, err, sizeof err);
    chmod(path, 0600);
    nb_save(b, path, err, sizeof err);
    struct stat sb;
    stat(path, &sb);
    is_int((int)(sb.st_mode & 0777), 0600, "a 0600 notebook stays 0600 when saved");
    nb_save(a, path, err, sizeof err);
    static const char *const ops[] = {"open", "write", "fsync", "rename"};
    int intact = 0, named = 0;
    for (int o = 0; o < 4; o++) {
        char spec[32];
        snprintf(spec, sizeof spec, "%s:1", ops[o]);
        r1__fault_set(spec);
        int rc = nb_save(b, path, err, sizeof err);
        r1__fault_set(NULL);
        named += rc != 0 && strstr(err, "saves.md") != NULL;
        nb_notebook *back = nb_load(path, err, sizeof err);
        char *text = back ? nb_serialize(back, NULL) : NULL;
        intact += text && !strcmp(text, va);
        free(text);
        nb_free(back);
    }
    ok(named == 4 && intact == 4, "a save whose open, write, fsync or rename fails is named "
       "and leaves the previous notebook whole (%d, %d of 4)", named, intact);
    int whole = 0, runs = 10;
    for (int r = 0; r < runs; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0;; i++)
                nb_save(i % 2 ? b : a, path, err, sizeof err);
        }
        usleep(5000 + (unsigned)(rand() % 50000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        FILE *f = fopen(path, "r");
        static char got[40000];
        size_t k = f ? fread(got, 1, sizeof got - 1, f) : 0;
        if (f)
            fclose(f);
        got[k] = 0;
        whole += !strcmp(got, va) || !strcmp(got, vb);
    }
    is_int(whole, runs, "kill -9 during a notebook save loop: always the old or the new text");
    /* the probe's L6: a FIFO blocked the open, /dev/zero read until memory ran out */
    char fifo[1100];
    snprintf(fifo, sizeof fifo, "%s/fifo.md", tmp);
    mkfifo(fifo, 0600);
    ok(!nb_load(fifo, err, sizeof err) && strstr(err, "not a regular file"),
       "a FIFO as a notebook is refused at once");
    ok(!nb_load("/dev/zero", err, sizeof err) && strstr(err, "not a regular file"),
       "so is /dev/zero");
    char big[1100];
    snprintf(big, sizeof big, "%s/big.md", tmp);
    FILE *bf = fopen(big, "w");
    fseek(bf, NB_MAX_BYTES + 1, SEEK_SET);
    fputc('x', bf);
    fclose(bf);
    ok(!nb_load(big, err, sizeof err) && strstr(err, "more than a notebook's limit of 16 MiB"),
       "a notebook above 16 MiB is refused with the limit");
    nb_free(a), nb_free(b);
}

static void test_notebook(const char *tmp)
{
    const char *md = "# Title\n\nSome prose.\n\n```lua\nprint(1)\n```\n\n```output\n1\n```\n"
                     "More prose\n```python\nnot a cell\n```\n````lua\nx = 1\n````\ntail";
    nb_notebook *nb = nb_parse(md, strlen(md), NULL);
    ok(nb != NULL, "a notebook parses");
    is_int(nb->ncells, 2, "two lua cells (other fences are prose)");
    is_str(nb->cells[0].src, "print(1)\n", "cell 1's code");
    is_str(nb->cells[0].output, "1\n", "cell 1's output block");
    is_str(nb->cells[1].src, "x = 1\n", "a longer fence");
    size_t len;
    char *back = nb_serialize(nb, &len);
    ok(len == strlen(md) && memcmp(back, md, len) == 0, "an unchanged notebook round-trips "
                                                         "byte for byte");
    free(back);
    nb_set_output(nb, 1, "```\nfenced\n");
    back = nb_serialize(nb, NULL);
    like(back, "````output\n```\nfenced\n````\n", "output holding a fence gets a longer fence");
    nb_notebook *again = nb_parse(back, strlen(back), NULL);
    is_str(again->cells[1].output, "```\nfenced\n", "and reads back unchanged");
    nb_free(again);
    free(back);
    /* the probe's H2: output appended without a final newline (an error message) glued the
     * closing fence to it; the next open then read the prose and the next cell as output */
    {
        const char *two = "```lua\nx = = 1\n```\n\nProse A.\n\n```lua\nprint(\"second\")\n```\n";
        nb_notebook *t2 = nb_parse(two, strlen(two), NULL);
        nb_append_output(t2, 0, "cell 1:1: unexpected symbol near '='");
        char *saved = nb_serialize(t2, NULL);
        nb_notebook *re = nb_parse(saved, strlen(saved), NULL);
        char *saved2 = re ? nb_serialize(re, NULL) : NULL;
        ok(re && re->ncells == 2 && strstr(saved, "near '='\n```") &&
           strstr(saved2, "Prose A.") && strstr(saved2, "print(\"second\")") &&
           !strcmp(saved, saved2), "output without a final newline: the fence stands on its "
           "own line, and an open + save keeps the prose and the next cell");
        free(saved), free(saved2);
        nb_free(re), nb_free(t2);
    }
    nb_set_output(nb, 0, NULL);
    ok(nb->cells[0].out_open == NULL, "an empty output removes the block");
    nb_set_src(nb, 0, "print(2)");
    is_str(nb->cells[0].src, "print(2)\n", "edited code gets its newline");
    ok(nb->dirty, "edits mark the notebook dirty");
    char path[1024], err[1200];
    snprintf(path, sizeof path, "%s/nb.md", tmp);
    ok(nb_save(nb, path, err, sizeof err) == 0, "saving works");
    ok(!nb->dirty && nb->path && !strcmp(nb->path, path), "and records the path");
    nb_notebook *r = nb_load(path, err, sizeof err);
    ok(r && r->ncells == 2 && !strcmp(r->cells[0].src, "print(2)\n"), "the saved file reloads");
    char *a = nb_serialize(nb, NULL), *b = r ? nb_serialize(r, NULL) : NULL;
    ok(a && b && !strcmp(a, b), "saved and reloaded are the same text");
    free(a);
    free(b);
    nb_free(r);
    char tmpname[1200];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    ok(access(tmpname, F_OK) != 0, "no temporary file is left behind");
    snprintf(path, sizeof path, "%s/no/such/dir/x.md", tmp);
    ok(nb_save(nb, path, err, sizeof err) != 0, "saving into a missing folder fails");
    like(err, "no/such/dir/x.md", "with the file named");
    nb_free(nb);
    ok(nb_load("/nonexistent/x.md", err, sizeof err) == NULL, "a missing file is refused");
    like(err, "/nonexistent/x.md", "naming it");
    nb = nb_new(NULL);
    nb_add_cell(nb, "a = 1");
    nb_add_cell(nb, "b = 2");
    is_int(nb->ncells, 2, "cells can be added to a new notebook");
    back = nb_serialize(nb, NULL);
    nb_notebook *c = nb_parse(back, strlen(back), NULL);
    ok(c->ncells == 2 && !strcmp(c->cells[1].src, "b = 2\n"), "and read back");
    nb_free(c);
    free(back);
    nb_free(nb);
    /* the shipped welcome notebook */
    char wpath[1200];
    nb = nb_load(paths_data(wpath, sizeof wpath, "scripts/welcome.md"), err, sizeof err);
    ok(nb && nb->ncells >= 5, "the welcome notebook has its cells");
    int grpo = 0;
    for (int i = 0; nb && i < nb->ncells; i++)
        grpo += strstr(nb->cells[i].src, "r1.grpo{") != NULL;
    ok(grpo >= 1, "and runs GRPO through r1.grpo{...}");
    nb_free(nb);
    test_notebook_saves(tmp);
}

static void test_themes(const char *tmp)
{
    const char *names[] = {"default", "light", "high-contrast", "mono"};
    char err[1500];
    for (int i = 0; i < 4; i++) {
        ui_theme t;
        int rc = ui_theme_load(&t, names[i], 256, err, sizeof err);
        ok(rc == 0 && !strcmp(t.name, names[i]) && t.nheat >= 4, "theme %s loads (%s)",
           names[i], err);
        rc = ui_theme_load(&t, names[i], 8, err, sizeof err);
        ok(rc == 0, "theme %s degrades to 8 colours", names[i]);
    }
    ui_theme t;
    ui_theme_load(&t, "default", 0, err, sizeof err);
    is_str(t.name, "mono", "without colours every theme is mono");
    ok(t.attr[R_SELECTED] & A_REVERSE, "mono marks the selection by reverse video");
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.lua", tmp);
    FILE *f = fopen(path, "w");
    fputs("return { think = 'purpel' }\n", f);
    fclose(f);
    int rc = ui_theme_load(&t, path, 256, err, sizeof err);
    ok(rc != 0, "a bad colour is refused");
    like(err, "bad.lua", "the message names the file");
    like(err, "field 'think'", "and the field");
    like(err, "purpel", "and the value");
    is_str(t.name, "default", "and the default theme is used");
    f = fopen(path, "w");
    fputs("return { thinking = 'red' }\n", f);
    fclose(f);
    ui_theme_load(&t, path, 256, err, sizeof err);
    like(err, "unknown field 'thinking'", "an unknown role is named");
    f = fopen(path, "w");
    fputs("return { heat = {'red', {fg = 'blue', blink = true}} }\n", f);
    fclose(f);
    ui_theme_load(&t, path, 256, err, sizeof err);
    like(err, "field 'heat', entry 2", "a bad list entry is located");
    f = fopen(path, "w");
    fputs("return {\n", f);
    fclose(f);
    ui_theme_load(&t, path, 256, err, sizeof err);
    like(err, "bad.lua:", "a syntax error names the file and line");
    rc = ui_theme_load(&t, "nosuchtheme", 256, err, sizeof err);
    ok(rc != 0 && strstr(err, "nosuchtheme"), "a missing theme is named");
    /* the probe's M6: a theme runs on the UI thread, so a loop or a runaway table must end */
    f = fopen(path, "w");
    fputs("while true do end\n", f);
    fclose(f);
    rc = ui_theme_load(&t, path, 256, err, sizeof err);
    ok(rc != 0 && strstr(err, "runs too long") && strstr(err, "bad.lua"),
       "a theme that loops forever is stopped and named (%s)", err);
    is_str(t.name, "default", "and the default theme is used");
    f = fopen(path, "w");
    fputs("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end return t\n", f);
    fclose(f);
    rc = ui_theme_load(&t, path, 256, err, sizeof err);
    ok(rc != 0 && strstr(err, "more than 8 MB"), "a theme that eats memory is stopped (%s)",
       err);
    char fifo[1100];
    snprintf(fifo, sizeof fifo, "%s/fifo.lua", tmp);
    mkfifo(fifo, 0600);
    rc = ui_theme_load(&t, fifo, 256, err, sizeof err);
    ok(rc != 0 && strstr(err, "not a regular file"), "a FIFO as a theme is refused, not read");
    rc = ui_theme_load(&t, "/dev/zero", 256, err, sizeof err);
    ok(rc != 0 && strstr(err, "not a regular file"), "so is /dev/zero");
    ui_theme_load(&t, "mono", 0, err, sizeof err);
    ui_theme_apply(&t);
}

static void test_keys(void)
{
    wb_key k;
    const unsigned char up[] = "\033[A", pg[] = "\033[5~", f1[] = "\033OP", bt[] = "\033[Z";
    is_int(wb_key_decode(up, 3, 0, &k), 3, "an arrow is 3 bytes");
    is_int(k.key, UI_KEY_UP, "ESC [ A is Up");
    wb_key_decode(pg, 4, 0, &k);
    is_int(k.key, UI_KEY_PGUP, "ESC [ 5 ~ is PgUp");
    wb_key_decode(f1, 3, 0, &k);
    is_int(k.key, UI_KEY_F1, "ESC O P is F1");
    wb_key_decode(bt, 3, 0, &k);
    is_int(k.key, UI_KEY_BTAB, "ESC [ Z is Shift-Tab");
    is_int(wb_key_decode(up, 2, 0, &k), 0, "half a sequence waits for the rest");
    is_int(wb_key_decode(up, 1, 1, &k), 1, "a lone ESC is Esc once no more comes");
    is_int(k.key, UI_KEY_ESC, "the Esc key");
    const unsigned char mouse[] = "\033[<0;12;5M";
    is_int(wb_key_decode(mouse, (int)strlen((const char *)mouse), 0, &k), 10, "an SGR mouse report");
    ok(k.key == UI_KEY_MOUSE && k.mx == 11 && k.my == 4 && k.mpress && k.mbutton == 0,
       "decodes to a left press at (4, 11)");
    const unsigned char utf[] = "é";
    wb_key_decode(utf, 2, 0, &k);
    ok(k.key == 0xe9 && k.len == 2, "UTF-8 characters are one key");
    const unsigned char alt[] = "\033b";
    wb_key_decode(alt, 2, 0, &k);
    ok(k.key == UI_KEY_OTHER && k.len == 2, "Alt-b goes to readline whole");
    const unsigned char cr[] = "\r";
    wb_key_decode(cr, 1, 0, &k);
    is_int(k.key, UI_KEY_ENTER, "CR is Enter");
}

int main(void)
{
    if (setlocale(LC_ALL, "C.UTF-8") || setlocale(LC_ALL, "C.utf8"))
        ui_utf8 = 1;
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    SCREEN *scr = newterm("xterm-256color", out, in);
    if (!scr) {
        printf("1..0 # SKIP no terminfo entry for xterm-256color\n");
        return 0;
    }
    set_term(scr);
    test_event_sizes();
    char tmp[] = "/tmp/t_ui.XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char err[256];
    ui_theme t;
    ui_theme_load(&t, "mono", 0, err, sizeof err); /* attributes only: comparable anywhere */
    ui_theme_apply(&t);
    test_draw_helpers();
    test_reasoning();
    test_answer();
    test_routing();
    test_views();
    test_grpo();
    test_output();
    test_layout();
    test_repl_status_help();
    test_notebook(tmp);
    test_themes(tmp);
    test_keys();
    endwin();
    delscreen(scr);
    fclose(out);
    fclose(in);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        diag("could not remove %s", tmp);
    return done_testing();
}
