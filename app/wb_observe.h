/* wb_observe.h — the workbench's observer of the Lua binding (see wb_observe.c). */
#ifndef R1_APP_WB_OBSERVE_H
#define R1_APP_WB_OBSERVE_H

#include "lua_r1.h"

/* Sets / clears the observer that turns the binding's reports into screen events. */
void wb_observe_start(void);
void wb_observe_stop(void);
/* The observer itself (for :mpirun's relayed reports; its calls are thread-safe). */
const lua_r1_observer *wb_observer(void);

#endif
