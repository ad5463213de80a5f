/* main.c — the r1lab command line: subcommands for people and tests, the REPL by default.
 * Every failure prints one line naming what went wrong and exits non-zero. */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "lua_host.h"
#include "paths.h"
#include "r1.h"
#include "repl_plain.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: r1lab [COMMAND] [OPTIONS]\n"
            "\n"
            "  r1lab                 the REPL (Lua 5.4)\n"
            "  r1lab run FILE [ARG]  run a Lua script headless\n"
            "  r1lab init --config FILE.json|tiny|small --out DIR [--seed N] [--dtype f32|bf16]\n"
            "                        write a randomly initialised checkpoint\n"
            "  r1lab forward --model DIR --tokens \"1 2 3;4 5 6\" --out OUT.safetensors\n"
            "                [--mtp-lambda X] [--grads GRADS.safetensors]\n"
            "                        logits, MTP logits, loss, routing (and gradients)\n"
            "  r1lab generate --model DIR (--prompt TEXT | --tokens \"1 2 3\") [--max-tokens N]\n"
            "                 [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
            "                 [--speculative] [--weights fp32|bf16] [--trace FILE.jsonl]\n"
            "                        stream a completion with its routing\n"
            "  r1lab train --stage pretrain|sft --model DIR|tiny|small --out DIR [--steps N]\n"
            "              [--tasks add:1-3,mul:1-2,...] [--seed S] [--batch B] [--seq-len T]\n"
            "              [--lr X] [--eval-every N] [--ckpt-every N] ... | --out DIR --resume\n"
            "                        pretraining / cold-start SFT (r1lab train --help)\n"
            "  r1lab --version       print the version\n"
            "  r1lab --help          this text\n"
            "\n"
            "data directory: %s\n",
            paths_datadir());
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
    int rc = lua_host_run_file(L, argv[0], argc - 1, argv + 1);
    lua_close(L);
    return rc;
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

int main(int argc, char **argv)
{
    r1_set_threads(0);
    if (argc < 2)
        return cmd_repl();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("r1lab %s (libr1 %s)\n", PACKAGE_VERSION, r1_version());
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
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "--plain"))
        return cmd_repl();
    fprintf(stderr, "r1lab: unknown command '%s' (try r1lab --help)\n", cmd);
    return 2;
}
