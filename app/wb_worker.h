/* wb_worker.h — the workbench's worker thread: it owns the lua_State (and through it every
 * model and the engine) and runs the jobs the UI thread queues — REPL chunks, notebook cells,
 * questions, model loads — one at a time, in order, each under lua_pcall with a traceback.
 * It never touches the terminal: print/io.write, generation tokens, training steps and the end
 * of each job reach the UI as events (events.h); EV_JOB_DONE carries the job id in `n`.
 *
 * Thread contract: every function here is called from the UI thread, except
 * wb_worker_interrupt, which is also safe in a signal handler. */
#ifndef R1_APP_WB_WORKER_H
#define R1_APP_WB_WORKER_H

#include <lua.h>
#include <stddef.h>

typedef struct wb_worker wb_worker;

typedef enum {
    WB_JOB_LUA,  /* text: a Lua chunk; expressions print their values */
    WB_JOB_ASK,  /* text: a question for ask(text) or m:ask(text) */
    WB_JOB_LOAD, /* text: a model folder to load into the global m */
} wb_job_kind;

/* Creates the Lua state (lua_host_new, print and io.write to the output pane, the globals r1
 * and ui) and starts the thread.  builtin (copied; may be NULL) is the built-in model's
 * folder, named by :ask when no model is loaded.  The event sink must be on.  NULL with a
 * message on error. */
wb_worker *wb_worker_start(const char *builtin, char *err, size_t n);

/* Queues a job (text is copied; name is the chunk name, e.g. "=cell 3").  Returns its id
 * (> 0), or -1 when out of memory. */
int wb_worker_submit(wb_worker *w, wb_job_kind kind, const char *text, const char *name);

/* Drops the jobs not started yet whose ids are among which[0..nwhich) (every job not
 * started yet when which is NULL); writes up to max of the dropped ids to ids and returns how
 * many it wrote.  A job already taken by the thread is never dropped: interrupt it. */
int wb_worker_cancel_pending(wb_worker *w, const int *which, int nwhich, int *ids, int max);

/* The id of the running job, or 0. */
int wb_worker_running(wb_worker *w);

/* Stops the running job at its next token, step or Lua instruction (async-signal-safe). */
void wb_worker_interrupt(wb_worker *w);

/* The Lua state when the worker is idle (locked for the caller: release it with
 * wb_worker_unlock), or NULL while a job runs (after waiting at most 50 ms for it to end).
 * For Tab completion. */
lua_State *wb_worker_try_lock(wb_worker *w);
void wb_worker_unlock(wb_worker *w);

/* Stops the thread: drops pending jobs, interrupts the running one and waits up to
 * timeout_ms for it.  Closes the Lua state and frees w when the thread ended (returns 0); when
 * it did not (a job stuck in C), leaves both alone and returns -1. */
int wb_worker_stop(wb_worker *w, int timeout_ms);

#endif
