/* lua_ui.h — the Lua side of the workbench: the global `ui` table (ui.step, ui.group,
 * ui.active) that posts training steps and GRPO groups to the screen from any Lua loop, the
 * print/io.write redirection of the worker's state to the output pane, and the bridge that
 * makes m:generate stream its tokens to the panes.  Posting is a no-op when no workbench is
 * showing (headless `r1lab run`), so scripts run the same both ways. */
#ifndef R1_APP_LUA_UI_H
#define R1_APP_LUA_UI_H

#include <lua.h>

/* Sets the global `ui`. */
void lua_ui_open(lua_State *L);

/* Replaces print and io.write in L with versions that post their text as EV_PRINT events. */
void lua_ui_redirect_output(lua_State *L);

/* When the model binding does not post generation events itself (it has no m:ask yet),
 * wraps the model's generate method so that it posts EV_GEN_BEGIN, one EV_TOKEN per token
 * with its routing, and EV_GEN_END, and still calls the caller's on_token.  Returns 1 when
 * the bridge was installed. */
int lua_ui_bridge_generate(lua_State *L);

#endif
