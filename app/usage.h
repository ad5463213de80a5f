/* usage.h — r1lab's subcommands described once (usage.c): `r1lab --help`, each
 * `r1lab COMMAND --help` and the manual page come from this table. */
#ifndef R1_APP_USAGE_H
#define R1_APP_USAGE_H

#include <stdio.h>

typedef struct {
    const char *name;     /* "generate" */
    const char *synopsis; /* "r1lab generate --model DIR ..." (one line, folded on output) */
    const char *summary;  /* what it does, one line without a full stop */
    const char *options;  /* one option a line, '\n'-terminated */
} usage_cmd;

const usage_cmd *usage_find(const char *name); /* NULL when there is no such command */
const usage_cmd *usage_all(void);              /* the table, ended by a NULL name */
int usage_asks_help(int argc, char **argv);    /* --help or -h among the arguments */
void usage_print_cmd(FILE *f, const usage_cmd *c);
void usage_print(FILE *f); /* r1lab --help */
void usage_man(FILE *f);   /* r1lab --man: the manual page in roff */

#endif
