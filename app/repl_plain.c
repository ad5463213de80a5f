/* repl_plain.c — the line REPL over the Lua host (see repl_plain.h).  Ctrl-C while a chunk
 * runs stops that chunk; Ctrl-C at the prompt clears the line.  Nothing is lost: the state
 * keeps every variable across errors. */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lua_host.h"
#include "repl_plain.h"

static lua_State *running;

static void on_sigint(int sig)
{
    (void)sig;
    if (running)
        lua_host_interrupt(running);
}

/* A line of any length (a fixed buffer split long lines into separate chunks: the probe's
 * L7); NULL at the end of the input. */
static char *read_plain(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

int repl_plain_run(lua_State *L)
{
    int tty = isatty(0) && isatty(1);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (tty)
        printf("r1lab %s: a Lua 5.4 REPL. Type Lua; :quit or Ctrl-D leaves.\n", PACKAGE_VERSION);
    int status = 0;
    for (;;) {
        char *line = tty ? readline("r1> ") : read_plain();
        if (!line)
            break;
        const char *p = line + strspn(line, " \t");
        if (strcmp(p, ":quit") == 0 || strcmp(p, ":q") == 0) {
            free(line);
            break;
        }
        if (*p) {
            if (tty)
                add_history(line);
            running = L;
            status = lua_host_run_line(L, p);
            running = NULL;
        }
        free(line);
    }
    if (tty)
        putchar('\n');
    return tty ? 0 : status;
}
