/* lua_init.c — the top of the Lua binding: luaopen_r1 builds the module table of
 * `require "r1"` from every binding file, as Lua's own linit.c opens the standard libraries,
 * and holds the module functions that belong to no engine module (r1.version,
 * r1.set_threads, r1.machine, r1.cpu, r1.save_tensors, r1.world).
 *
 * How the binding is arranged (a note the house style asks for, since it departs from one line
 * of STYLE.md): three layers, each calling only the ones below it.
 *   lua_init.c   registration (this file)
 *   lua_model.c, lua_generate.c, lua_tensor.c, lua_tokenizer.c, lua_tasks.c, lua_grpo.c,
 *   lua_sft.c, lua_stages.c, lua_ui.c
 *                one engine module each; lua_generate.c adds its methods to the model
 *                metatable that lua_model.c made, so the two do not call each other
 *   lua_aux.c    options, settings tables, task specs, ids, protected callbacks
 * STYLE.md says only the Lua host calls lua_pcall; here the binding calls it too, through one
 * helper (lua_r1_pcall_with in lua_aux.c), because an engine callback must never let a Lua
 * error unwind through engine frames: the arguments are built inside the protected call and
 * the error keeps its traceback.
 *
 * How reports flow: the engine's run loops report through one r1_observer (r1_observer.h:
 * step, group, token, eval); each binding fills one in that calls the script's callbacks
 * (on_step, on_group, on_token, on_progress) and forwards to the process's lua_r1_observer
 * (lua_r1.h), which adds what only the binding knows (decoded text, the answer's verdict) and
 * which the workbench sets (wb_observe.c).  The stand-alone module sets none. */
#include <config.h>

#include "lua_r1.h"
#include "r1_safetensors.h"
#include "world.h"

static int l_save_tensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    /* check everything first, then own the writer only while nothing can raise */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "bad argument #2 (tensor names must be strings)");
        lua_tensor_check(L, -1);
        lua_pop(L, 1);
        n++;
    }
    r1_st_writer *w = r1_st_writer_new();
    if (!w)
        return luaL_error(L, "out of memory");
    r1_error err = {0};
    r1_status s = R1_OK;
    lua_pushnil(L);
    while (s == R1_OK && lua_next(L, 2)) {
        lua_tensor *t = lua_touserdata(L, -1);
        r1_dtype dt = t->is_int ? R1_DT_I32 : R1_DT_F32;
        s = r1_st_writer_add(w, lua_tostring(L, -2), dt, dt, t->data, t->ndim, t->shape, &err);
        lua_pop(L, 1);
    }
    if (s == R1_OK)
        s = r1_st_writer_write(w, path, &err);
    else
        lua_pop(L, 1); /* the key lua_next left */
    r1_st_writer_free(w);
    if (s != R1_OK)
        return luaL_error(L, "%s", err.msg);
    lua_pushinteger(L, n);
    return 1;
}

static int l_version(lua_State *L)
{
    lua_pushstring(L, r1_version());
    return 1;
}

/* r1.set_threads(n): threads for OpenBLAS and the engine (0: every core) */
static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 256, 1, "expected 0..256");
    r1_set_threads((int)n);
    lua_pushinteger(L, r1_threads());
    return 1;
}

/* r1.machine() -> {cpu, isa, blas, kernels, threads}: what a run's last bits depend on */
static int l_machine(lua_State *L)
{
    r1_machine mc;
    r1_machine_get(&mc);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, mc.cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushstring(L, mc.isa);
    lua_setfield(L, -2, "isa");
    lua_pushstring(L, mc.blas);
    lua_setfield(L, -2, "blas");
    lua_pushstring(L, mc.kernels);
    lua_setfield(L, -2, "kernels");
    lua_pushinteger(L, mc.threads);
    lua_setfield(L, -2, "threads");
    return 1;
}

/* r1.cpu([path]) -> {active = "avx512bf16", best = ..., paths = {amx = "not in this CPU",
 * avx512bf16 = "in use", avx2 = "available", portable = "available"}, fp32 = "r1lab"}: the
 * engine's kernel paths (r1.h) and who runs fp32 products on the active one ("r1lab" or
 * "OpenBLAS").  With a path name, uses it from now on (a lower one than the best, for
 * comparisons); an unknown or unavailable one raises an error naming why. */
static int l_cpu(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        static const char *const names[] = {"portable", "avx2", "avx512bf16", "amx", NULL};
        r1_error err = {0};
        if (r1_isa_set((r1_isa)luaL_checkoption(L, 1, NULL, names), &err) != R1_OK)
            return luaL_error(L, "r1.cpu: %s", err.msg);
    }
    r1_isa now = r1_isa_active(), best = r1_isa_best();
    lua_createtable(L, 0, 4);
    lua_pushstring(L, r1_isa_name(now));
    lua_setfield(L, -2, "active");
    lua_pushstring(L, r1_isa_fp32_gemm());
    lua_setfield(L, -2, "fp32");
    lua_pushstring(L, r1_isa_name(best));
    lua_setfield(L, -2, "best");
    lua_createtable(L, 0, R1_ISA_COUNT);
    for (int i = 0; i < R1_ISA_COUNT; i++) {
        lua_pushstring(L, r1_isa_state((r1_isa)i));
        lua_setfield(L, -2, r1_isa_name((r1_isa)i));
    }
    lua_setfield(L, -2, "paths");
    return 1;
}

/* r1.world() -> {rank, size, comm_seconds, comm_bytes}: this process's place in an mpirun job
 * ({0, 1} alone) and what its collective operations have cost so far */
static int l_world(lua_State *L)
{
    double secs;
    unsigned long long bytes;
    r1_comm_spent(&secs, &bytes);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, world_rank());
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, world_size());
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, secs);
    lua_setfield(L, -2, "comm_seconds");
    lua_pushinteger(L, (lua_Integer)bytes);
    lua_setfield(L, -2, "comm_bytes");
    return 1;
}

static const luaL_Reg funcs[] = {{"save_tensors", l_save_tensors},
                                 {"world", l_world},
                                 {"machine", l_machine},
                                 {"cpu", l_cpu},
                                 {"version", l_version},
                                 {"set_threads", l_set_threads},
                                 {NULL, NULL}};

int luaopen_r1(lua_State *L)
{
    luaL_newlib(L, funcs);
    lua_tensor_open(L);
    lua_model_open(L);
    lua_generate_open(L);
    lua_inspect_open(L);
    lua_tree_open(L);
    lua_experts_open(L);
    lua_tokenizer_open(L);
    lua_tasks_open(L);
    lua_grpo_open(L);
    lua_stages_open(L);
    lua_sft_open(L);
    return 1;
}
