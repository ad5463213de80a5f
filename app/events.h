/* events.h — the queue from the worker thread (Lua + engine) to the UI thread.
 *
 * The worker never touches the terminal: bindings and the Lua host post events here, the UI
 * thread drains them between frames.  When no sink is active (headless `r1lab run`, the plain
 * REPL) posting is a cheap no-op and events are freed at once.  Thread-safe; never fails (an
 * event that cannot be allocated is dropped).  Every string an event carries is owned by it. */
#ifndef R1_APP_EVENTS_H
#define R1_APP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EV_MAX_MOE 32 /* MoE layers per token the events carry */
#define EV_MAX_K 16   /* experts per token */
#define EV_MAX_STATS 48 /* named statistics per step */

typedef enum {
    EV_PRINT,     /* text: output of print/io.write or a message */
    EV_GEN_BEGIN, /* text: the prompt (decoded); row count in n */
    EV_TOKEN,     /* one generated token with its routing */
    EV_GEN_END,   /* text: the completion of row 0; verdict: 1 right, 0 wrong, -1 unknown */
    EV_STEP,      /* a training step: stage, step, named statistics, expert load */
    EV_GROUP,     /* a GRPO group: prompt, completions, rewards, advantages */
    EV_JOB_DONE,  /* the worker finished the current job: ok = 1, or 0 with text = error */
    EV_VIEW,      /* a microscope view: the logit lens, attention, patching, comparison, tree */
} ev_kind;

/* The microscope's views (EV_VIEW), each a small table: a matrix of values, strings, and a few
 * numbers.  What each holds:
 *   LENS     rows = sites (+ "MTP"), cols = 4: p of the top 3, then p of the next token
 *            (NaN when unknown); labels: row names, then rows x 3 candidate texts;
 *            ints[0] the token index (0-based among the generated tokens)
 *   ATTN     rows = 1, cols = the generated tokens: the query's weights over them; ints[0]
 *            the query's token index, [1] layer, [2] head (-1: mean of the heads), [3] heads,
 *            [4] the last layer index; nums[0] the weight on the prompt
 *   PATCH    rows = sites, cols = prompt positions: the share that returns; labels: site
 *            names, then the clean prompt's token texts, then the corrupted prompt's;
 *            nums[0] lp_clean, [1] lp_corrupt; text: the answer scored
 *   COMPARE  rows = 1, cols = main layers: the share of tokens whose experts changed (NaN:
 *            dense); labels: name a, name b, text a, text b, answer a, answer b; ints[0] the
 *            first differing generated token (0-based, -1: none), [1] its byte offset in
 *            text a, [2] in text b, [3]/[4] verdicts of a/b (1, 0, -1 unknown)
 *   TREE     rows = nodes, cols = 5: id, parent (0: root), depth, verdict (1, 0, -1), at;
 *            labels: per node its answer and its forced text (2 per node); ints[0] the node
 *            shown, [1] its branch point (1-based token index; 0: the root)
 *   EXPERTS  rows = classes x MoE layers (class-major), cols = experts: each class's share of
 *            a layer's routed slots per expert (class 0 is every token); labels: the class
 *            names, then per class its token count, then per MoE layer "L<layer>" and its
 *            MaxVio; ints[0] classes, [1] MoE layers */
enum { EV_VIEW_LENS, EV_VIEW_ATTN, EV_VIEW_PATCH, EV_VIEW_COMPARE, EV_VIEW_TREE, EV_VIEW_EXPERTS,
       EV_NVIEWS };

typedef struct {
    char name[32];
    double value;
} ev_stat;

typedef struct {
    char *text;          /* the completion */
    int nrewards;
    double rewards[8];   /* per reward function, in the group's reward_names order */
    double total;
    double advantage;
    int correct;         /* accuracy verdict, -1 unknown */
} ev_completion;

/* An event: a header and the part of its kind, a union (a token, a step and a group share
 * their memory), ~250 bytes.  What varies in size is allocated as large as it is: a token's
 * routing (ev_alloc_routing), a step's statistics (ev_alloc_stats) and expert load, a group's
 * completions.  Read only the fields of e->kind. */
typedef struct ev {
    ev_kind kind;
    char *text;          /* EV_PRINT, EV_GEN_BEGIN (prompt), EV_GEN_END, EV_JOB_DONE error,
                          * EV_GROUP prompt */
    int n;               /* EV_GEN_BEGIN rows; EV_GROUP completions; EV_PRINT: 1 when the text
                          * comes from a background job (launch.h), not the running cell */
    union {
        int ok;          /* EV_JOB_DONE */
        int verdict;     /* EV_GEN_END */
        struct {         /* EV_TOKEN */
            int row, index, pos;
            int32_t token;
            char tok_text[16]; /* the token's text ("<think>", "7", "\n") */
            float logprob;
            int part;          /* 0 prompt, 1 think, 2 answer, 3 other (after </answer>) */
            /* the token inspector: alternatives (n_top of them, at most 5), the entropy
             * (NaN: not recorded), the MTP module's prediction for the next token (-1) */
            int n_top;
            int32_t top_id[5];
            float top_p[5];
            char top_text[5][12];
            float entropy;
            int32_t mtp_id;
            float mtp_p;
            char mtp_text[12];
            int n_moe, K;      /* at most EV_MAX_MOE, EV_MAX_K */
            int *moe_layers;   /* [n_moe]; owned, one block with the two below */
            int32_t *experts;  /* [n_moe, K] */
            float *weights;    /* [n_moe, K] */
        };
        struct {         /* EV_STEP */
            char stage[16];    /* "pretrain", "sft", "grpo", ... */
            int step, total_steps;
            int nstats;        /* at most EV_MAX_STATS */
            ev_stat *stats;    /* [nstats], owned */
            int load_layers, load_experts; /* expert load [layers, experts] (share of tokens) */
            float *load;       /* owned; may be NULL */
            float *bias;       /* owned; the balancing bias, same shape; may be NULL */
        };
        struct {         /* EV_VIEW */
            int view;          /* EV_VIEW_... */
            int rows, cols;
            float *vals;       /* [rows, cols], owned */
            int nlabels;
            char **labels;     /* [nlabels] owned strings (entries may be NULL) */
            int ints[8];
            double nums[4];
        };
        struct {         /* EV_GROUP */
            char reward_names[8][24];
            int nreward_names;
            ev_completion *completions; /* [n], owned */
        };
    };
} ev;


/* Turns the sink on (the workbench) or off.  Returns the read end of a pipe that becomes
 * readable when events are waiting (for poll()), or -1 when turned off. */
int ev_sink(int on);
int ev_sink_active(void);

/* A zeroed event of the given kind (NULL when out of memory). */
ev *ev_new(ev_kind kind);
/* Sets e's n_moe and K (capped at EV_MAX_MOE, EV_MAX_K) and allocates its routing arrays,
 * zeroed; 0, or -1 when out of memory (then e has no routing). */
int ev_alloc_routing(ev *e, int n_moe, int K);
/* Allocates room for n statistics (capped at EV_MAX_STATS), nstats left 0; 0 or -1. */
int ev_alloc_stats(ev *e, int n);
/* Allocates an EV_VIEW's matrix (zeroed) and label slots (NULL); 0 or -1. */
int ev_alloc_view(ev *e, int rows, int cols, int nlabels);
/* A deep copy of an event (EV_VIEW only; NULL otherwise or when out of memory). */
ev *ev_copy_view(const ev *e);
/* Posts e (ownership passes to the queue; freed at once when no sink is active). */
void ev_post(ev *e);
/* Convenience: posts an EV_PRINT with a copy of text (len bytes). */
void ev_print(const char *text, size_t len);
/* The next event, or NULL when the queue is empty.  The caller frees it with ev_free. */
ev *ev_take(void);
void ev_free(ev *e);

#endif
