/* lua_ui_views.c — the microscope in the workbench, as Lua calls: ui.lens, ui.attention,
 * ui.branch, ui.tree_show, ui.patch and ui.compare compute with the r1 calls (m:lens,
 * m:attention, m:tree, r1.patch, r1.compare) on the generation the screen shows (ui.context)
 * and post the result as a view (ui.view, an EV_VIEW event); the workbench's keys and
 * commands run exactly these calls.  The glue is Lua, kept here as a chunk; ui.view and
 * ui.context are C.  Posting is a no-op without a workbench, so the calls also work headless
 * (they return what they computed). */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "events.h"
#include "lua_r1.h"
#include "lua_ui.h"

static const char *const view_names[] = {"lens", "attn",    "patch",
                                         "compare", "tree", "experts", NULL};

/* Reads the number list field `key` of the table at idx into dst[n] (missing entries: NaN). */
static void read_nums(lua_State *L, int idx, const char *key, float *dst, int n)
{
    lua_getfield(L, idx, key);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        dst[i] = lua_isnumber(L, -1) ? (float)lua_tonumber(L, -1) : NAN;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* ui.view(kind, {rows, cols, vals = {...}, labels = {...}, ints = {...}, nums = {...},
 * text}): posts a microscope view (events.h says what each kind holds). */
static int l_view(lua_State *L)
{
    int kind = luaL_checkoption(L, 1, NULL, view_names);
    luaL_checktype(L, 2, LUA_TTABLE);
    int rows = lua_r1_opt_int_in(L, 2, "rows", 0, 0, 1 << 16);
    int cols = lua_r1_opt_int_in(L, 2, "cols", 0, 0, 1 << 16);
    lua_getfield(L, 2, "labels");
    int nl = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    lua_pop(L, 1);
    if ((size_t)rows * cols > (1u << 22) || nl > (1 << 20))
        return luaL_error(L, "ui.view: too large (%d x %d values, %d labels)", rows, cols, nl);
    if (!ev_sink_active())
        return 0;
    /* read everything into C memory the Lua GC owns, then build the event (nothing raises) */
    float *vals = lua_newuserdatauv(L, sizeof(float) * ((size_t)rows * cols + 1), 0);
    read_nums(L, 2, "vals", vals, rows * cols);
    ev *e = ev_new(EV_VIEW);
    if (!e || ev_alloc_view(e, rows, cols, nl) != 0) {
        ev_free(e);
        return 0;
    }
    e->view = kind;
    memcpy(e->vals, vals, sizeof(float) * (size_t)rows * cols);
    lua_getfield(L, 2, "labels");
    for (int i = 0; i < nl; i++) {
        lua_rawgeti(L, -1, i + 1);
        const char *s = lua_tostring(L, -1); /* numbers become strings; others NULL */
        e->labels[i] = s ? strdup(s) : NULL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "ints");
    for (int i = 0; i < 8 && lua_istable(L, -1); i++) {
        lua_rawgeti(L, -1, i + 1);
        e->ints[i] = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "nums");
    for (int i = 0; i < 4 && lua_istable(L, -1); i++) {
        lua_rawgeti(L, -1, i + 1);
        e->nums[i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "text");
    e->text = lua_isstring(L, -1) ? strdup(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 1);
    ev_post(e);
    return 0;
}

/* ui.context() -> {model, prompt_ids, tokens, task, target} of the last generation shown (row
 * 1 of the last m:generate, m:ask or m:replay while a workbench watches), or nil. */
static int l_context(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "r1lab.context");
    return 1;
}

static const char glue[] =
    "local ui = ...\n"
    "local function context()\n"
    "  local c = ui.context()\n"
    "  if not c then error('nothing to inspect yet: ask a question first (?QUESTION)', 0) end\n"
    "  return c\n"
    "end\n"
    "local function check_index(c, i)\n"
    "  if math.type(i) ~= 'integer' or i < 1 or i > #c.tokens then\n"
    "    error(string.format('token %s is not one of the %d generated tokens', tostring(i),\n"
    "                        #c.tokens), 0)\n"
    "  end\n"
    "end\n"
    "-- the prompt and the first n generated tokens\n"
    "local function ids_upto(c, n)\n"
    "  local ids = {}\n"
    "  for k, t in ipairs(c.prompt_ids) do ids[k] = t end\n"
    "  for k = 1, n do ids[#ids + 1] = c.tokens[k] end\n"
    "  return ids\n"
    "end\n"
    "function ui.show_lens(l, index)\n"
    "  local rows = {}\n"
    "  for _, s in ipairs(l.sites) do rows[#rows + 1] = {s.name, s.top, s.p_next} end\n"
    "  if l.mtp then rows[#rows + 1] = {'MTP', l.mtp.top, l.mtp.p_next} end\n"
    "  local vals, labels = {}, {}\n"
    "  for r, row in ipairs(rows) do\n"
    "    labels[r] = row[1]\n"
    "    for k = 1, 3 do\n"
    "      local c = row[2][k]\n"
    "      vals[(r - 1) * 4 + k] = c and c.p or 0\n"
    "      labels[#rows + (r - 1) * 3 + k] = c and (c.text or tostring(c.token)) or ''\n"
    "    end\n"
    "    vals[(r - 1) * 4 + 4] = row[3] or (0 / 0)\n"
    "  end\n"
    "  ui.view('lens', {rows = #rows, cols = 4, vals = vals, labels = labels,\n"
    "                   ints = {(index or l.pos) - 1}})\n"
    "end\n"
    "-- what each layer would have predicted where generated token i was chosen\n"
    "function ui.lens(i)\n"
    "  local c = context()\n"
    "  check_index(c, i)\n"
    "  local ids = ids_upto(c, i)\n"
    "  local l = c.model:lens(ids, #ids - 1)\n"
    "  ui.show_lens(l, i)\n"
    "  return l\n"
    "end\n"
    "-- where the model looked (layer, head; head nil: the mean of the heads) when it chose\n"
    "-- generated token i: the weights of the query before it over everything before\n"
    "function ui.attention(i, layer, head)\n"
    "  local c = context()\n"
    "  check_index(c, i)\n"
    "  local cfg = c.model:config()\n"
    "  layer = layer or cfg.num_hidden_layers - 1\n"
    "  local a = c.model:attention(ids_upto(c, i - 1), layer)\n"
    "  local H, T = a:shape()[1], a:shape()[2]\n"
    "  if head and (head < 1 or head > H) then\n"
    "    error(string.format('head %d does not exist; expected 1..%d', head, H), 0)\n"
    "  end\n"
    "  local np, vals, prompt_w = #c.prompt_ids, {}, 0\n"
    "  for j = 1, #c.tokens do vals[j] = 0 end\n"
    "  for u = 1, T do\n"
    "    local w = 0\n"
    "    if head then w = a:get(head, T, u)\n"
    "    else for h = 1, H do w = w + a:get(h, T, u) end w = w / H end\n"
    "    if u <= np then prompt_w = prompt_w + w else vals[u - np] = w end\n"
    "  end\n"
    "  local last = cfg.num_hidden_layers - 1 + (cfg.num_nextn_predict_layers > 0 and 1 or 0)\n"
    "  ui.view('attn', {rows = 1, cols = #c.tokens, vals = vals,\n"
    "                   ints = {i - 1, layer, head and head - 1 or -1, H, last},\n"
    "                   nums = {prompt_w}})\n"
    "  return a\n"
    "end\n"
    "function ui.show_tree(t, current)\n"
    "  local vals, labels, r = {}, {}, 0\n"
    "  for n, depth in t:walk() do\n"
    "    local v = n.correct == true and 1 or n.correct == false and 0 or -1\n"
    "    local row = {n.id, n.parent or 0, depth, v, n.at or 0}\n"
    "    for k = 1, 5 do vals[r * 5 + k] = row[k] end\n"
    "    labels[2 * r + 1] = n.answer or ''\n"
    "    labels[2 * r + 2] = n.forced or ''\n"
    "    r = r + 1\n"
    "  end\n"
    "  local node = t.nodes[current]\n"
    "  ui.view('tree', {rows = r, cols = 5, vals = vals, labels = labels,\n"
    "                   ints = {current, node and node.at or 0}})\n"
    "end\n"
    "-- shows node id of the current reasoning tree as the generation on screen\n"
    "function ui.tree_show(id)\n"
    "  local t = ui.tree\n"
    "  if not t then error('no reasoning tree yet: branch at a token first (keys 1-5 in the '\n"
    "                      .. 'Reasoning pane, or :branch TEXT)', 0) end\n"
    "  local n = t.nodes[id]\n"
    "  if not n then error(string.format('the tree has no node %s (it has %d)', tostring(id),\n"
    "                                    #t.nodes), 0) end\n"
    "  ui.node = id\n"
    "  t.model:replay(t.prompt_ids, n.tokens, {task = t.task, target = t.target})\n"
    "  ui.show_tree(t, id)\n"
    "  return n\n"
    "end\n"
    "local function same(a, b)\n"
    "  if #a ~= #b then return false end\n"
    "  for k = 1, #a do if a[k] ~= b[k] then return false end end\n"
    "  return true\n"
    "end\n"
    "-- regenerates from generated token i with `choice` (a token id or text) in its place;\n"
    "-- the screen's generation and its branches form the tree ui.tree\n"
    "function ui.branch(i, choice)\n"
    "  local c = context()\n"
    "  check_index(c, i)\n"
    "  local t, node = ui.tree, ui.node\n"
    "  if not (t and node and t.model == c.model and same(t.prompt_ids, c.prompt_ids)\n"
    "          and same(t.nodes[node].tokens, c.tokens)) then\n"
    "    t = c.model:tree(c.prompt_ids, {tokens = c.tokens, task = c.task, target = c.target,\n"
    "                                    max_tokens = math.max(256, #c.tokens)})\n"
    "    node = 1\n"
    "  end\n"
    "  local n = t:branch(node, i, choice)\n"
    "  ui.tree = t\n"
    "  ui.tree_show(n.id)\n"
    "  return n\n"
    "end\n"
    "function ui.show_patch(p)\n"
    "  local S, P = p.share:shape()[1], p.share:shape()[2]\n"
    "  local vals, labels = {}, {}\n"
    "  for i = 1, S do\n"
    "    labels[i] = p.sites[i]\n"
    "    for j = 1, P do vals[(i - 1) * P + j] = p.share:get(i, j) end\n"
    "  end\n"
    "  for j = 1, P do\n"
    "    labels[S + j] = p.tokens and p.tokens[j] or ''\n"
    "    labels[S + P + j] = p.corrupt_tokens and p.corrupt_tokens[j] or ''\n"
    "  end\n"
    "  ui.view('patch', {rows = S, cols = P, vals = vals, labels = labels,\n"
    "                    nums = {p.lp_clean, p.lp_corrupt}, text = p.answer})\n"
    "end\n"
    "-- activation patching of two questions of the same length (the current model)\n"
    "function ui.patch(clean, corrupt, opts)\n"
    "  local c = ui.context()\n"
    "  local model = c and c.model or m\n"
    "  if not model then error('no model: :load DIR first', 0) end\n"
    "  local o = {model = model, clean = clean, corrupt = corrupt,\n"
    "             on_progress = function(d, t)\n"
    "               print(string.format('patching: %d of %d rows of the map', d, t))\n"
    "             end}\n"
    "  for k, v in pairs(opts or {}) do o[k] = v end\n"
    "  local p = r1.patch(o)\n"
    "  ui.show_patch(p)\n"
    "  return p\n"
    "end\n"
    "function ui.show_compare(r, name_a, name_b)\n"
    "  local L, vals = 0, {}\n"
    "  for l in pairs(r.routing) do L = math.max(L, l + 1) end\n"
    "  for l = 0, L - 1 do vals[l + 1] = r.routing[l] or (0 / 0) end\n"
    "  local ta, tb = r.a.text or '', r.b.text or ''\n"
    "  local off = 0\n"
    "  while off < #ta and off < #tb and ta:byte(off + 1) == tb:byte(off + 1) do\n"
    "    off = off + 1\n"
    "  end\n"
    "  if ta == tb then off = -1 end\n"
    "  ui.view('compare', {rows = 1, cols = L, vals = vals,\n"
    "                      labels = {name_a, name_b, ta, tb, r.a.answer or '', r.b.answer or ''},\n"
    "                      ints = {r.diverge and r.diverge - 1 or -1, off, off, -1, -1}})\n"
    "end\n"
    "-- expert analytics (r1.experts) on the current model, shown by token class\n"
    "function ui.experts(opts)\n"
    "  local c = ui.context()\n"
    "  local o = {model = c and c.model or m}\n"
    "  if not o.model then error('no model: :load DIR first', 0) end\n"
    "  for k, v in pairs(opts or {}) do o[k] = v end\n"
    "  local a = r1.experts(o)\n"
    "  local names = {'all', 'digit', 'operator', 'word_en', 'word_es', 'tag', 'space', 'other'}\n"
    "  local nm, E = #a.layers, #a.layers[1].load\n"
    "  local vals, labels = {}, {}\n"
    "  for ci, name in ipairs(names) do\n"
    "    labels[ci] = name\n"
    "    labels[#names + ci] = tostring(name == 'all' and a.tokens or a.classes[name].tokens)\n"
    "    for j = 1, nm do\n"
    "      local row = name == 'all' and a.layers[j].load or a.classes[name].layers[j]\n"
    "      for e = 1, E do vals[((ci - 1) * nm + j - 1) * E + e] = row[e] end\n"
    "    end\n"
    "  end\n"
    "  for j = 1, nm do\n"
    "    labels[2 * #names + 2 * j - 1] = 'L' .. a.layers[j].layer\n"
    "    labels[2 * #names + 2 * j] = string.format('%.2f', a.layers[j].maxvio)\n"
    "  end\n"
    "  ui.view('experts', {rows = #names * nm, cols = E, vals = vals, labels = labels,\n"
    "                      ints = {#names, nm}})\n"
    "  return a\n"
    "end\n"
    "-- the same question through the current model and another checkpoint (a folder or a\n"
    "-- model; name: its label on screen)\n"
    "function ui.compare(other, prompt, name)\n"
    "  local c = ui.context()\n"
    "  local a = c and c.model or m\n"
    "  if not a then error('no model: :load DIR first', 0) end\n"
    "  local name_b = name or (type(other) == 'string' and other\n"
    "                 or tostring(other):match(', ([^,]+)%)$') or tostring(other))\n"
    "  local name_a = tostring(a):match(', ([^,]+)%)$') or tostring(a)\n"
    "  local b = type(other) == 'string' and r1.load(other) or other\n"
    "  prompt = prompt or (c and c.prompt_ids)\n"
    "  if not prompt then error('ask a question first, or give the prompt', 0) end\n"
    "  local r = r1.compare{a = a, b = b, prompt = prompt}\n"
    "  ui.show_compare(r, name_a, name_b)\n"
    "  return r\n"
    "end\n";

void lua_ui_views_open(lua_State *L)
{
    lua_pushcfunction(L, l_view);
    lua_setfield(L, -2, "view");
    lua_pushcfunction(L, l_context);
    lua_setfield(L, -2, "context");
    if (luaL_loadbuffer(L, glue, sizeof glue - 1, "=ui") != LUA_OK) {
        lua_pop(L, 1); /* cannot happen with the chunk above */
        return;
    }
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        lua_pop(L, 1);
}
