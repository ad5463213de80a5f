/* lua_r1.h — the `r1` Lua module over libr1: shared declarations of the binding files
 * app/lua_*.c (their layers: the top comment of lua_init.c).  Conventions (Lua's own): one metatable per userdata type with __index, __gc,
 * __close and __tostring; "box first" (push the userdata, then allocate, so that an error
 * never leaks C memory); errors raised with luaL_error(L, "%s", msg) only after every C
 * resource is owned by a userdata; callbacks into Lua run under lua_pcall so that an error
 * never unwinds through engine frames. */
#ifndef R1_APP_LUA_R1_H
#define R1_APP_LUA_R1_H

#include <lauxlib.h>
#include <lua.h>

#include "r1_generate.h"
#include "r1_model.h"
#include "r1_rewards.h"
#include "r1_settings.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

#define LUA_R1_MODEL "r1.model"
#define LUA_R1_TENSOR "r1.tensor"
#define LUA_R1_TOKENIZER "r1.tokenizer"
#define LUA_R1_TASK "r1.task"

/* Opens the module: the table with every function and the userdata metatables. */
int luaopen_r1(lua_State *L);

/* ---- tensors (lua_tensor.c) */
typedef struct {
    int ndim;
    int64_t shape[4];
    size_t n;
    int is_int;    /* data holds int32 instead of float */
    void *data;    /* malloc'd; NULL once closed */
} lua_tensor;

/* Pushes a new tensor of the given shape (zeroed) and returns it.  Raises on out of memory. */
lua_tensor *lua_tensor_push(lua_State *L, int ndim, const int64_t *shape, int is_int);
lua_tensor *lua_tensor_check(lua_State *L, int idx);
void lua_tensor_open(lua_State *L);

/* ---- tokenizer (lua_tokenizer.c); tasks and rewards (lua_tasks.c) */
typedef struct {
    r1_tokenizer *t;
} lua_tokenizer;

lua_tokenizer *lua_tokenizer_check(lua_State *L, int idx);
lua_tokenizer *lua_tokenizer_push(lua_State *L);
/* Encodes s (chat: as the generation prompt) into a userdata buffer left on the stack. */
int32_t *lua_r1_encode(lua_State *L, const r1_tokenizer *t, const char *s, int chat, int *n);
void lua_r1_push_decoded(lua_State *L, const r1_tokenizer *t, const int32_t *ids, int n);
void lua_r1_push_sample(lua_State *L, const r1_task_sample *s);
void lua_r1_reward_sample(lua_State *L, int idx, r1_reward_sample *s);
const r1_task *lua_task_ptr(lua_State *L, int idx);
void lua_tokenizer_open(lua_State *L); /* adds r1.tokenizer to the module on top */
void lua_tasks_open(lua_State *L);     /* adds r1.tasks and r1.rewards */
void lua_grpo_open(lua_State *L);  /* adds r1.grpo */
void lua_stages_open(lua_State *L); /* adds r1.reject_sample (and the other stages) */
void lua_sft_open(lua_State *L);    /* adds r1.pretrain and r1.sft */

/* ---- models (lua_model.c) */
typedef struct {
    r1_model *m;
    r1_tokenizer *tok; /* owned; NULL when the model has no tokenizer */
    char dir[1024];    /* where it was loaded from ("" for a fresh model) */
    const char *busy;  /* the work using it right now ("r1.grpo", ...), NULL when idle */
} lua_model;

lua_model *lua_model_check(lua_State *L, int idx);
/* lua_model_check, and raises "... is in use by r1.grpo" when the model is working: what a
 * callback (a reward, on_step, on_token) must not do with the model that calls it (close it,
 * train or run it, switch its FP8 mode), since the engine holds its buffers mid-step. */
lua_model *lua_model_idle(lua_State *L, int idx, const char *what);
/* Marks u as used by `by` (a string literal) for the engine call that follows, and clears it;
 * between the two nothing may raise (engine calls do not: their callbacks are protected). */
void lua_model_hold(lua_model *u, const char *by);
void lua_model_drop(lua_model *u);
void lua_model_open(lua_State *L);
/* m:generate and m:ask (lua_generate.c), added to the model methods: after lua_model_open. */
void lua_generate_open(lua_State *L);
/* Pushes {token = id, text = (with a tokenizer), p = p}: one candidate token (lua_generate.c). */
void lua_r1_push_candidate(lua_State *L, const r1_tokenizer *tok, int32_t id, double p);
/* m:lens, m:attention, r1.patch, r1.compare (lua_inspect.c): after lua_generate_open, with
 * the module table on top. */
void lua_inspect_open(lua_State *L);
/* m:tree, r1.tree_load and the tree methods (lua_tree.c); the module table on top. */
void lua_tree_open(lua_State *L);
/* r1.experts (lua_experts.c); the module table on top. */
void lua_experts_open(lua_State *L);

/* ---- option tables (lua_aux.c): field `key` of the table at idx, or def when absent/nil;
 * a present field of the wrong type raises "bad option 'key' (number expected, got ...)". */
lua_Integer lua_r1_opt_int(lua_State *L, int idx, const char *key, lua_Integer def);
/* The same, for an int option that must lie in lo..hi ("bad option 'K' (an integer in
 * LO..HI expected, got V)" otherwise). */
int lua_r1_opt_int_in(lua_State *L, int idx, const char *key, int def, int lo, int hi);
lua_Number lua_r1_opt_num(lua_State *L, int idx, const char *key, lua_Number def);
int lua_r1_opt_bool(lua_State *L, int idx, const char *key, int def);
const char *lua_r1_opt_str(lua_State *L, int idx, const char *key, const char *def);
/* Pushes the function field `key` (returns 1) or nothing (returns 0). */
int lua_r1_opt_fn(lua_State *L, int idx, const char *key);

/* A task entry of a task list: "add" (difficulty dflt, or the task's training difficulty when
 * dflt is 0), "add:4" or "add:2-4" (a range).  Fills *task, *lo and *hi; raises a Lua error
 * that starts with who and names tasks[i] on an unknown task, a malformed spec or a difficulty
 * outside the task's range. */
void lua_r1_task_spec(lua_State *L, const char *who, int i, const char *spec, int dflt,
                      const r1_task **task, int *lo, int *hi);

/* Sets the fields of struct s named in the option table at idx through the stage's settings
 * table t (numbers, booleans, strings, and lists of strings for list settings such as tasks):
 * a key neither in t nor in extra (a NULL-terminated list of the caller's own keys) raises
 * "unknown option 'KEY' for WHERE (did you mean 'NAME'?)"; a value of the wrong type or out of
 * range raises naming the key and the range; a deprecated spelling works with a notice on
 * stderr. */
void lua_r1_read_settings(lua_State *L, int idx, const r1_settings_table *t, void *s,
                          const char *where, const char *const *extra);

/* ---- protected callbacks (lua_aux.c): the one way the binding calls Lua from inside an
 * engine callback.  push(L, ud) pushes the arguments and returns how many; it runs inside
 * the protected call, so an error while building them (out of memory, a Ctrl-C hook) never
 * unwinds through engine frames. */

/* The message handler: the error message (or its __tostring) with a traceback. */
int lua_r1_traceback(lua_State *L);

/* Calls the function at stack index fn with the nargs values on top of the stack (popped)
 * and then push's arguments, under lua_pcall with lua_r1_traceback; returns the Lua status,
 * with nres results or the message on top.  push runs in a C function's own frame: it must
 * not use the caller's stack indices (pass such values as the nargs). */
int lua_r1_pcall_with(lua_State *L, int fn, int nargs, int (*push)(lua_State *L, void *ud),
                      void *ud, int nres);

/* Runs push protected and leaves its nres values on the stack (to build a result table). */
int lua_r1_protect(lua_State *L, int (*push)(lua_State *L, void *ud), void *ud, int nres);

/* The callbacks whose false return stops the work (on_step, on_token, on_progress): 1 when
 * the function returned false, 0 otherwise, -1 on an error, whose message (with its
 * traceback) is then in the registry at *err_ref.  An error while r1_interrupted() (the
 * Ctrl-C hook raising inside the callback) is a stop, 1, not a failure. */
int lua_r1_callback(lua_State *L, int fn, int (*push)(lua_State *L, void *ud), void *ud,
                    int *err_ref);

/* Tells the collector about bytes that the engine allocated for a new userdata (a model): Lua
 * sees only the small userdata, so without this, models dropped in a loop pile up before a
 * collection.  A collection step as if Lua had allocated them (LUA_GCSTEP). */
void lua_r1_gc_hint(lua_State *L, size_t bytes);

/* ---- the observer (lua_aux.c): what the binding reports while it works, for whoever shows
 * it.  The stand-alone module has none, so it links no screen code; the workbench sets one
 * (wb_observe.c) that turns the reports into its screen events.  Every pointer is borrowed
 * for the call.  The calls come from the thread that runs Lua. */
typedef struct {
    const char *stage; /* "pretrain", "sft", "grpo", "reject", "distill", or a script's own */
    int step, total;
    int nstats;
    const char *const *names; /* [nstats] */
    const double *values;     /* [nstats] */
    int load_layers, load_experts;
    const float *load, *bias; /* [load_layers, load_experts] expert load and balancing bias,
                               * or NULL */
} lua_r1_step;

typedef struct {
    int step;            /* the training step the group belongs to (0: none) */
    const char *prompt;  /* may be NULL */
    int G;
    const char *const *texts;    /* [G] completions (entries may be NULL) */
    int nrewards;
    const char *const *names;    /* [nrewards] */
    const double *rewards;       /* [G, nrewards] */
    const double *totals, *adv;  /* [G] */
    const int *correct;          /* [G] accuracy verdicts, -1 unknown; may be NULL */
} lua_r1_group;

typedef struct {
    /* generation: all three, or all three NULL (an observer of training alone) */
    void (*gen_begin)(const char *prompt, int rows);
    /* one token; text its text (or NULL), part 1 think, 2 answer, 3 other */
    void (*token)(const r1_token_event *te, const char *text, int part,
                  const r1_tokenizer *tok); /* tok (may be NULL): for the alternatives' texts */
    void (*gen_end)(const char *completion, int verdict); /* completion may be NULL */
    void (*step)(const lua_r1_step *s);
    void (*group)(const lua_r1_group *g);
} lua_r1_observer;

/* Sets the process's observer (NULL: none; o borrowed for as long as it is set). */
void lua_r1_set_observer(const lua_r1_observer *o);
/* The observer, or NULL when nobody watches (then skip building reports). */
const lua_r1_observer *lua_r1_observer_get(void);
/* The observer when it watches generation, else NULL. */
const lua_r1_observer *lua_r1_observer_watches_generation(void);

/* Raises the error kept in the registry at ref (by lua_r1_callback), releasing the ref. */
int lua_r1_raise_ref(lua_State *L, int ref);

/* Reads a table of integers (1-based sequence) into a new userdata buffer that it pushes on
 * the stack (so the Lua GC owns it and an error leaks nothing); returns the buffer, *n gets
 * the length.  Raises "bad argument #arg (...)" on a non-integer entry. */
int32_t *lua_r1_ids(lua_State *L, int idx, int arg, int *n);

#endif
