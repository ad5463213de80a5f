/* lua_launch.h — r1.launch, the program's own addition to the r1 module (lua_launch.c). */
#ifndef R1_APP_LUA_LAUNCH_H
#define R1_APP_LUA_LAUNCH_H

#include <lua.h>

/* Adds r1.launch to the global r1 table (after luaopen_r1) and the job type. */
void lua_launch_open(lua_State *L);

#endif
