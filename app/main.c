/* main.c — the r1lab command line: subcommands for people and tests, the REPL by default.
 * Every failure prints one line naming what went wrong and exits non-zero. */
#include <config.h>

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "launch.h"
#include "lua_host.h"
#include "paths.h"
#include "r1.h"
#include "relay.h"
#include "repl_plain.h"
#include "usage.h"
#include "wb.h"
#include "world.h"

/* Ctrl-C in `r1lab run`: the engine stops at its next step or token and Lua raises
 * "interrupted" at its next instruction (lua_sethook may be called from a signal handler), so
 * a training run ends through its checkpoint and the script's traceback is printed.  A second
 * Ctrl-C kills (SA_RESETHAND). */
static lua_State *run_L;
static volatile sig_atomic_t run_interrupted;

static void run_on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
    if (run_L)
        lua_host_interrupt(run_L);
}

static int cmd_run(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "r1lab run: expected a script file\n");
        return 2;
    }
    lua_State *L = lua_host_new();
    if (!L) {
        fprintf(stderr, "r1lab: out of memory\n");
        return 1;
    }
    run_L = L;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = run_on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    const char *relay = getenv(RELAY_ENV);
    if (relay && *relay && strcmp(relay, "0")) /* started by r1.launch or :mpirun */
        relay_emit_start(stdout);
    int rc = lua_host_run_file(L, argv[0], argc - 1, argv + 1);
    sigaction(SIGINT, &old, NULL);
    run_L = NULL;
    lua_close(L);
    return rc && run_interrupted ? 130 : rc;
}

static int cmd_repl(void)
{
    lua_State *L = lua_host_new();
    if (!L) {
        fprintf(stderr, "r1lab: out of memory\n");
        return 1;
    }
    int rc = repl_plain_run(L);
    lua_close(L);
    return rc;
}

/* r1lab [--theme NAME] [--notebook FILE] [--demo [FILE]] [--plain] */
static int cmd_workbench(int argc, char **argv)
{
    wb_opts o = {0};
    int plain = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--theme") || !strcmp(a, "--notebook")) && i + 1 < argc) {
            *(a[2] == 't' ? &o.theme : &o.notebook) = argv[++i];
        } else if (!strcmp(a, "--demo")) { /* --demo [FILE]: FILE is the notebook to play */
            o.demo = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                o.notebook = argv[++i];
        } else if (!strcmp(a, "--plain")) {
            plain = 1;
        } else {
            fprintf(stderr, "r1lab: %s '%s' (try r1lab --help)\n",
                    a[0] == '-' && (!strcmp(a, "--theme") || !strcmp(a, "--notebook"))
                        ? "missing value for" : "unknown command or option",
                    a);
            return 2;
        }
    }
    if (plain || !isatty(0) || !isatty(1))
        return cmd_repl();
    int rc = wb_run(&o);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "r1lab: cannot drive this terminal (TERM=%s); here is the plain REPL\n",
            getenv("TERM") ? getenv("TERM") : "");
    return cmd_repl();
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    /* Training and generation free and allocate buffers of the same sizes at every step (a
     * GRPO step's decoder and its caches, the objective's logit gradients).  By default glibc
     * maps the larger ones fresh and trims what is freed, so every step faulted them in and
     * zeroed them again: page faults were about a tenth of a GRPO step in perf.  Freed memory
     * is kept for reuse instead (up to 256 MB of it); only blocks past 32 MB, allocated once
     * and kept, are mapped on their own.  Sampling of a tiny GRPO step: 0.31-0.36 -> 0.28 s. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    /* under mpirun: join the job first (MPI may read its own arguments); ranks other than 0
     * print nothing to stdout (rank 0 reports the run) but keep stderr, and each takes its
     * share of the cores */
    char werr[256];
    if (world_init(&argc, &argv, werr, sizeof werr)) {
        fprintf(stderr, "r1lab: %s\n", werr);
        return 1;
    }
    if (world_rank() > 0 && !freopen("/dev/null", "w", stdout))
        fprintf(stderr, "r1lab: rank %d: cannot quiet stdout\n", world_rank());
    int rc = run_command(argc, argv);
    launch_stop_all(); /* MPI jobs started by r1.launch or :mpirun and still running */
    world_finish(rc);
    return rc;
}

static int run_command(int argc, char **argv)
{
    int misspelt = 0;
    const char *isa_msg = r1_isa_env_error(&misspelt);
    if (isa_msg) { /* a misspelt R1_ISA would quietly measure the wrong kernels */
        fprintf(stderr, "r1lab: %s\n", isa_msg);
        if (misspelt)
            return 2;
    }
    r1_set_threads(0);
    if (world_local_size() > 1) { /* the ranks on this machine share its cores */
        int per = r1_threads() / world_local_size();
        r1_set_threads(per > 0 ? per : 1);
    }
    const char *nth = getenv("R1LAB_THREADS"); /* r1.launch{threads = N} */
    if (nth && *nth) {
        char *end;
        long t = strtol(nth, &end, 10);
        if (*end || t < 1 || t > 1024) {
            fprintf(stderr, "r1lab: R1LAB_THREADS=%s: expected a thread count, 1 to 1024\n", nth);
            return 2;
        }
        r1_set_threads((int)t);
    }
    /* OpenBLAS's work buffers now, while the address space is free: under ulimit -v it would
     * spin forever if it could not get them later (r1_blas_reserve) */
    r1_error rerr = {0};
    if (r1_blas_reserve(&rerr) != R1_OK) {
        fprintf(stderr, "r1lab: %s\n", rerr.msg);
        return 1;
    }
    if (argc < 2)
        return cmd_workbench(0, NULL);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_print(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--man")) {
        usage_man(stdout);
        return 0;
    }
    /* COMMAND --help (train and eval list their settings themselves; a script's own
     * arguments after `run FILE` are the script's) */
    const usage_cmd *uc = usage_find(cmd);
    if (uc && strcmp(cmd, "train") && strcmp(cmd, "eval") &&
        (strcmp(cmd, "run") ? usage_asks_help(argc - 2, argv + 2)
                            : usage_asks_help(argc > 2 ? 1 : 0, argv + 2))) {
        usage_print_cmd(stdout, uc);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("r1lab %s (libr1 %s)\n", PACKAGE_VERSION, r1_version());
        cmd_print_machine();
        char paths[256];
        r1_isa_describe(paths, sizeof paths);
        printf("kernel paths: %s (R1_ISA=NAME chooses a lower one)\n", paths);
        printf("fp32 products: %s\n",
               !strcmp(r1_isa_fp32_gemm(), "r1lab")
                   ? "r1lab's GEMM (each row's bits its own, whatever the batch)"
                   : "OpenBLAS sgemm (a row's last bits can depend on the rows beside it)");
        world_describe(paths, sizeof paths);
        printf("mpi: %s\n", paths);
        return 0;
    }
    if (!strcmp(cmd, "init"))
        return cmd_init(argc - 2, argv + 2);
    if (!strcmp(cmd, "forward"))
        return cmd_forward(argc - 2, argv + 2);
    if (!strcmp(cmd, "generate"))
        return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "export"))
        return cmd_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 2, argv + 2);
    if (cmd[0] == '-')
        return cmd_workbench(argc - 1, argv + 1);
    fprintf(stderr, "r1lab: unknown command '%s' (try r1lab --help)\n", cmd);
    return 2;
}
