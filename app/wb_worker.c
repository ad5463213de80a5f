/* wb_worker.c — the worker thread and its job queue (see wb_worker.h).  A mutex guards the
 * queue; a second mutex is held while a job runs, so that the UI can borrow the idle Lua
 * state for Tab completion without ever waiting on a running job. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "events.h"
#include "lua_host.h"
#include "lua_ui.h"
#include "wb_observe.h"
#include "wb_worker.h"

typedef struct job {
    int id;
    wb_job_kind kind;
    char *text, *name;
    struct job *next;
} job;

struct wb_worker {
    lua_State *L;
    pthread_t thread;
    pthread_mutex_t mu;       /* the queue, quit */
    pthread_cond_t cv;
    pthread_mutex_t state_mu; /* held while a job uses L */
    job *head, *tail;
    int next_id;
    int quit;
    atomic_int running;       /* id of the running job, 0 when idle */
    atomic_int finished;      /* the thread has returned */
};

/* The Lua side of :ask and :load (run as chunks with the text as their argument). */
static const char ask_chunk[] =
    "local text, builtin = ...\n"
    "if type(ask) == 'function' then\n"
    "  local r = ask(text)\n"
    "  if r ~= nil then print(r) end\n"
    "  return\n"
    "end\n"
    "if m == nil then\n"
    "  error('no model loaded, so nothing to ask: ' ..\n"
    "        (builtin and (':load ' .. builtin .. ' loads the built-in model, ') or '') ..\n"
    "        ':load DIR loads a Hugging Face deepseek_v3 folder, m = r1.init(\"tiny\") makes '\n"
    "        .. 'an untrained one (or define a function ask(text))', 0)\n"
    "elseif m.ask == nil then\n"
    "  error('this build has no m:ask yet; try m:generate(ids)', 0)\n"
    "end\n"
    "local a, res = m:ask(text)\n"
    "if type(res) == 'table' and res.answer == nil then\n"
    "  print('(no <answer> in the completion: its text is in the Reasoning pane)')\n"
    "elseif a ~= nil then print('answer: ' .. tostring(a)) end\n";
static const char load_chunk[] =
    "local dir = ...\n"
    "local ok, model = pcall(r1.load, dir)\n"
    "if not ok then error(model, 0) end\n"
    "m = model\n"
    "print('loaded ' .. tostring(m) .. ' into m')\n";

/* How the REPL shows values: like print, but tables show their contents (two levels, a few
 * items each) instead of their address. */
static const char show_chunk[] =
    "local function short(v, depth)\n"
    "  local t = type(v)\n"
    "  if t == 'string' then\n"
    "    if depth == 0 then return v end\n"
    "    return (string.format('%q', v):gsub('\\\\\\n', '\\\\n'))\n"
    "  end\n"
    "  local mt = getmetatable(v)\n"
    "  if t ~= 'table' or (type(mt) == 'table' and mt.__tostring) then return tostring(v) end\n"
    "  if depth > 1 then return next(v) == nil and '{}' or '{...}' end\n"
    "  local parts, len = {}, #v\n"
    "  local shown = depth == 0 and 10 or 6\n"
    "  for i = 1, math.min(len, shown) do parts[#parts + 1] = short(v[i], depth + 1) end\n"
    "  if len > shown then parts[#parts + 1] = '... (' .. len .. ' items)' end\n"
    "  local keys = {}\n"
    "  for k in pairs(v) do\n"
    "    if not (math.type(k) == 'integer' and k >= 1 and k <= len) then keys[#keys + 1] = k end\n"
    "  end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  for i, k in ipairs(keys) do\n"
    "    if i > 12 then parts[#parts + 1] = '...'; break end\n"
    "    local ks = type(k) == 'string' and k:match('^[%a_][%w_]*$') and k\n"
    "               or '[' .. short(k, depth + 1) .. ']'\n"
    "    parts[#parts + 1] = ks .. ' = ' .. short(v[k], depth + 1)\n"
    "  end\n"
    "  return '{' .. table.concat(parts, ', ') .. '}'\n"
    "end\n"
    "return function(...)\n"
    "  local out = {}\n"
    "  for i = 1, select('#', ...) do out[i] = short((select(i, ...)), 0) end\n"
    "  print(table.concat(out, '\\t'))\n"
    "end\n";

static void free_job(job *j)
{
    if (j) {
        free(j->text);
        free(j->name);
        free(j);
    }
}

static void done(int id, int ok, const char *msg)
{
    ev *e = ev_new(EV_JOB_DONE);
    if (!e)
        return;
    e->n = id;
    e->ok = ok;
    e->text = msg ? strdup(msg) : NULL;
    ev_post(e);
}

/* Runs one job on L; returns the Lua status with the error message on top when not LUA_OK. */
static int run(lua_State *L, const job *j)
{
    int top = lua_gettop(L), st, inc;
    switch (j->kind) {
    case WB_JOB_LUA:
        st = lua_host_load_line(L, j->text, j->name, &inc);
        if (st == LUA_OK)
            st = lua_host_call(L, 0, LUA_MULTRET);
        if (st == LUA_OK && lua_gettop(L) > top &&
            !lua_checkstack(L, LUA_MINSTACK)) { /* a call returns up to ~1M values */
            lua_settop(L, top);
            lua_pushliteral(L, "too many results to show");
            st = LUA_ERRRUN;
        }
        if (st == LUA_OK && lua_gettop(L) > top) { /* show the values, as lua.c does */
            int n = lua_gettop(L) - top;
            lua_getfield(L, LUA_REGISTRYINDEX, "r1lab.show");
            lua_insert(L, top + 1);
            st = lua_host_call(L, n, 0);
        }
        break;
    default:
        st = luaL_loadbuffer(L, j->kind == WB_JOB_ASK ? ask_chunk : load_chunk,
                             strlen(j->kind == WB_JOB_ASK ? ask_chunk : load_chunk),
                             j->kind == WB_JOB_ASK ? "=:ask" : "=:load");
        if (st == LUA_OK) {
            lua_pushstring(L, j->text);
            lua_getfield(L, LUA_REGISTRYINDEX, "r1lab.builtin");
            st = lua_host_call(L, 2, 0);
        }
        break;
    }
    if (st != LUA_OK) {
        lua_insert(L, top + 1);
        lua_settop(L, top + 1);
    } else {
        lua_settop(L, top);
    }
    return st;
}

static void *loop(void *arg)
{
    wb_worker *w = arg;
    /* A little nicer than the UI thread, and so are the engine's pool threads, which this
     * thread creates on first use and which inherit it: keys and frames keep their turn on
     * a machine whose cores all train. */
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0)
        setpriority(PRIO_PROCESS, (id_t)gettid(), nice_now + 4 < 19 ? nice_now + 4 : 19);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->quit && !w->head)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_lock(&w->state_mu);
        atomic_store(&w->running, j->id);
        pthread_mutex_unlock(&w->mu);

        int st = run(w->L, j);
        if (st == LUA_OK) {
            done(j->id, 1, NULL);
        } else {
            const char *msg = lua_tostring(w->L, -1);
            done(j->id, 0, msg ? msg : "(error object is not a string)");
            lua_pop(w->L, 1);
        }
        lua_gc(w->L, LUA_GCSTEP, 0);
        atomic_store(&w->running, 0);
        pthread_mutex_unlock(&w->state_mu);
        free_job(j);
    }
    atomic_store(&w->finished, 1);
    return NULL;
}

wb_worker *wb_worker_start(const char *builtin, char *err, size_t n)
{
    wb_worker *w = calloc(1, sizeof *w);
    if (!w || !(w->L = lua_host_new())) {
        snprintf(err, n, "out of memory");
        free(w);
        return NULL;
    }
    lua_State *L = w->L;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "r1");
    lua_setglobal(L, "r1"); /* cells use r1.* without a require */
    lua_pop(L, 1);
    lua_ui_redirect_output(L);
    wb_observe_start(); /* generation and training reach the panes */
    if (luaL_loadbuffer(L, show_chunk, sizeof show_chunk - 1, "=show") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK) {
        lua_pop(L, 1); /* cannot happen with the chunk above; print will do */
        lua_getglobal(L, "print");
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "r1lab.show");
    if (builtin) {
        lua_pushstring(L, builtin);
        lua_setfield(L, LUA_REGISTRYINDEX, "r1lab.builtin");
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->state_mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->next_id = 1;
    /* the worker must not take the UI's signals */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, loop, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, n, "cannot start the worker thread: %s", strerror(rc));
        lua_close(L);
        pthread_mutex_destroy(&w->mu);
        pthread_mutex_destroy(&w->state_mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

int wb_worker_submit(wb_worker *w, wb_job_kind kind, const char *text, const char *name)
{
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->text = strdup(text)) || !(j->name = strdup(name ? name : "=stdin"))) {
        free_job(j);
        return -1;
    }
    j->kind = kind;
    pthread_mutex_lock(&w->mu);
    int id = j->id = w->next_id++; /* j belongs to the worker once the lock is released */
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return id;
}

static int wanted(int id, const int *which, int nwhich)
{
    if (!which)
        return 1;
    for (int i = 0; i < nwhich; i++)
        if (which[i] == id)
            return 1;
    return 0;
}

int wb_worker_cancel_pending(wb_worker *w, const int *which, int nwhich, int *ids, int max)
{
    job *dropped = NULL;
    pthread_mutex_lock(&w->mu);
    job **link = &w->head;
    w->tail = NULL;
    while (*link) {
        job *j = *link;
        if (wanted(j->id, which, nwhich)) {
            *link = j->next;
            j->next = dropped;
            dropped = j;
        } else {
            w->tail = j;
            link = &j->next;
        }
    }
    pthread_mutex_unlock(&w->mu);
    int n = 0; /* dropped is newest first: report oldest first */
    for (job *j = dropped; j; j = j->next)
        n++;
    int k = n < max ? n : max;
    int i = n;
    while (dropped) {
        job *next = dropped->next;
        i--;
        if (i < k)
            ids[i] = dropped->id;
        free_job(dropped);
        dropped = next;
    }
    return k;
}

int wb_worker_running(wb_worker *w)
{
    return atomic_load(&w->running);
}

void wb_worker_interrupt(wb_worker *w)
{
    if (w && atomic_load(&w->running))
        lua_host_interrupt(w->L);
}

lua_State *wb_worker_try_lock(wb_worker *w)
{
    /* a job that is just ending gets 50 ms to let go; a running one is not waited for */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&w->state_mu, &ts) == 0 ? w->L : NULL;
}

void wb_worker_unlock(wb_worker *w)
{
    pthread_mutex_unlock(&w->state_mu);
}

int wb_worker_stop(wb_worker *w, int timeout_ms)
{
    if (!w)
        return 0;
    int ids[1];
    wb_worker_cancel_pending(w, NULL, 0, ids, 1);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int waited = 0; !atomic_load(&w->finished); waited += 10) {
        if (waited >= timeout_ms)
            return -1;
        wb_worker_interrupt(w);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_join(w->thread, NULL);
    wb_observe_stop();
    lua_close(w->L);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->state_mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return 0;
}
