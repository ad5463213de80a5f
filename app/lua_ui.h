/* lua_ui.h — the Lua side of the workbench: the global `ui` table (ui.step, ui.group,
 * ui.active) that posts training steps and GRPO groups to the screen from any Lua loop, and the
 * print/io.write redirection of the worker's state to the output pane.  (Generation and the
 * trainers post their own events from the r1 binding.)  Posting is a no-op when no workbench is
 * showing (headless `r1lab run`), so scripts run the same both ways. */
#ifndef R1_APP_LUA_UI_H
#define R1_APP_LUA_UI_H

#include <lua.h>

/* Sets the global `ui`. */
void lua_ui_open(lua_State *L);

/* Adds the microscope's calls (lua_ui_views.c) to the ui table on top of the stack. */
void lua_ui_views_open(lua_State *L);

/* Replaces print and io.write in L with versions that post their text as EV_PRINT events. */
void lua_ui_redirect_output(lua_State *L);

#endif
