/* relay.h — the binding's training reports (lua_r1_observer: steps and GRPO groups) as lines
 * of text, so that a process can watch another one's training through a pipe: rank 0 of an
 * MPI job started by r1.launch or :mpirun writes them on its stdout (which mpirun forwards from
 * any machine), and the workbench reads them back and shows them in its panes.
 *
 * A record is one line: RELAY_MARK (an ASCII record separator and "r1ev ") then a JSON object,
 *   {"ev":"step","stage":S,"step":N,"total":N,"stats":{NAME:VALUE,...},"load":[[...]],
 *    "bias":[[...]]}     (NaN statistics as null; load and bias optional)
 *   {"ev":"group","step":N,"prompt":S,"names":[...],"texts":[...],"rewards":[[...]],
 *    "totals":[...],"adv":[...],"correct":[...]}
 * Any other line is the program's own output. */
#ifndef R1_APP_RELAY_H
#define R1_APP_RELAY_H

#include <stddef.h>
#include <stdio.h>

#include "lua_r1.h"

#define RELAY_ENV "R1LAB_EVENTS" /* set (to 1) in a process whose reports should be relayed */
#define RELAY_MARK "\x1er1ev "

/* Sets the binding's observer to one that writes every step and group report to out as a
 * record line (flushed at once).  Generation is not relayed. */
void relay_emit_start(FILE *out);

/* If line (len bytes, without its newline) is a record, hands it to o (NULL: dropped) and
 * returns 1; a damaged record returns -1 (o not called); other text returns 0. */
int relay_line(const char *line, size_t len, const lua_r1_observer *o);

#endif
