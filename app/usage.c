/* usage.c — what r1lab says about itself: one table of subcommands (synopsis, one line of
 * purpose, the options), from which come `r1lab --help`, every `r1lab COMMAND --help`, and the
 * manual page (`r1lab --man`, which the build installs as r1lab(1)) together with the
 * training stages' settings tables and the workbench's help screen.  So the three never
 * disagree. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "paths.h"
#include "r1.h"
#include "ui.h"
#include "usage.h"

static const usage_cmd cmds[] = {
    {"run", "r1lab run FILE [ARG ...]", "run a Lua script headless",
     "FILE is a Lua 5.4 script; `arg` holds FILE and the ARGs, and `require \"r1\"` the API\n"
     "(scripts/README.md). Ctrl-C stops it at the next step or token with a traceback; an\n"
     "error exits 1 with the traceback.\n"},
    {"init", "r1lab init --config FILE.json|tiny|small --out DIR [--seed N] [--dtype f32|bf16]",
     "write a randomly initialised checkpoint",
     "--config FILE.json|tiny|small  a deepseek_v3 config.json or a preset\n"
     "--out DIR                      the model folder to write (created)\n"
     "--seed N                       the initialisation's seed (default 1)\n"
     "--dtype f32|bf16               the weights' storage (default f32)\n"},
    {"forward",
     "r1lab forward --model DIR --tokens \"1 2 3;4 5 6\" --out OUT.safetensors "
     "[--mtp-lambda X] [--grads GRADS.safetensors]",
     "logits, MTP logits, loss, routing (and gradients)",
     "--model DIR                  the model folder\n"
     "--tokens \"IDS;IDS\"           rows of token ids, rows separated by ';', of equal length\n"
     "--out OUT.safetensors        logits, MTP logits, losses and each MoE layer's routing\n"
     "--mtp-lambda X               the MTP loss's weight (default 0.3)\n"
     "--grads GRADS.safetensors    also the gradient of every parameter\n"},
    {"generate",
     "r1lab generate --model DIR (--prompt TEXT | --tokens \"1 2 3\") [--max-tokens N] "
     "[--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--speculative] "
     "[--weights fp32|bf16|fp8] [--trace FILE.jsonl]",
     "stream a completion with its routing",
     "--model DIR              the model folder (with its tokenizer for --prompt)\n"
     "--prompt TEXT            a question, wrapped in the chat format\n"
     "--tokens \"1 2 3\"         raw token ids instead\n"
     "--max-tokens N           new tokens at most (default 128)\n"
     "--temperature T          0 is greedy (the default)\n"
     "--top-k K, --top-p P, --min-p P   sampling filters\n"
     "--seed S                 the sampler's seed\n"
     "--speculative            draft with the MTP module, verify with the main model\n"
     "--weights fp32|bf16|fp8  the decoder's weight copy\n"
     "--trace FILE.jsonl       every token with its probability and experts\n"},
    {"train",
     "r1lab train --stage pretrain|sft|grpo|reject|distill --model DIR|tiny|small --out DIR "
     "[--SETTING VALUE ...] | --out DIR|FILE.jsonl --resume",
     "a stage of the R1 recipe",
     "--stage S        pretrain, sft, grpo, reject (rejection sampling) or distill\n"
     "--model DIR      the starting model folder, or a preset (tiny, small) for pretraining\n"
     "--out DIR        the run folder: the model, metrics.jsonl and checkpoint/ (reject: a\n"
     "                 FILE.jsonl of kept samples)\n"
     "--teacher DIR, --data FILE.jsonl   distill: the teacher and its samples\n"
     "--resume         continue a stopped run exactly (give only --out)\n"
     "--threads N, --log-every N\n"
     "--SETTING VALUE  any of the stage's settings (r1lab train --stage S --help lists them)\n"
     "Under mpirun -np N, every stage runs data-parallel over the N ranks (rank 0 writes\n"
     "the run folder, or reject's file).\n"},
    {"eval",
     "r1lab eval --model DIR [--tasks add:1-4,...] [--n N] [--above N] [--trained ...]",
     "accuracy, format and language on held-out problems",
     "--model DIR      the model folder\n"
     "--SETTING VALUE  the evaluation's settings (r1lab eval --help lists them)\n"},
    {"report", "r1lab report RUN_DIR [-o FILE.html|-] | r1lab report RUN_DIR --csv [-o FILE.csv|-]",
     "a run folder as one self-contained HTML page (or its metrics as CSV)",
     "RUN_DIR          a run folder (metrics.jsonl, and groups.jsonl for GRPO)\n"
     "-o FILE          where to write (default RUN_DIR/report.html or RUN_DIR/metrics.csv;\n"
     "                 - is standard output)\n"
     "--csv            the metrics as CSV: a step column, one column per number\n"},
    {"export", "r1lab export --gguf OUT.gguf --model DIR [--dtype f32|bf16|f16] [--mtp yes|no]",
     "write the model as a GGUF file for llama.cpp (architecture deepseek2)",
     "--gguf OUT.gguf          the file to write\n"
     "--model DIR              the model folder (with its tokenizer)\n"
     "--dtype f32|bf16|f16     the matrices' storage (norms stay f32)\n"
     "--mtp yes|no             the MTP layers too (yes, the default), or the main model\n"
     "                         alone, for llama.cpp builds that refuse nextn tensors\n"},
    {NULL, NULL, NULL, NULL},
};

const usage_cmd *usage_find(const char *name)
{
    for (const usage_cmd *c = cmds; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

const usage_cmd *usage_all(void)
{
    return cmds;
}

int usage_asks_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* s folded at spaces to lines of at most width columns, each after `indent` spaces */
static void fold(FILE *f, const char *s, int indent, int width)
{
    int col = 0;
    while (*s) {
        size_t w = strcspn(s, " ");
        if (col > 0 && col + 1 + (int)w > width) {
            fprintf(f, "\n%*s", indent + 4, "");
            col = 4;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, s);
        col += (int)w;
        s += w;
        while (*s == ' ')
            s++;
    }
}

void usage_print_cmd(FILE *f, const usage_cmd *c)
{
    fputs("usage: ", f);
    fold(f, c->synopsis, 3, 90);
    fprintf(f, "\n\n%s.\n\n%s", c->summary, c->options);
}

void usage_print(FILE *f)
{
    fputs("usage: r1lab [COMMAND] [OPTIONS]\n\n"
          "  r1lab [--theme NAME] [--notebook FILE] [--demo [FILE]] [--plain]\n"
          "      the workbench on a terminal (the plain Lua REPL with --plain or when stdin\n"
          "      is not a terminal); --demo plays the welcome notebook (or FILE) cell by cell\n",
          f);
    for (const usage_cmd *c = cmds; c->name; c++) {
        fputs("  ", f);
        fold(f, c->synopsis, 2, 92);
        fprintf(f, "\n      %s (r1lab %s --help)\n", c->summary, c->name);
    }
    fprintf(f, "  r1lab --version\n      the version and the machine (CPU, kernels, threads)\n"
               "  r1lab --man\n      the manual page (roff; installed as r1lab(1))\n"
               "  r1lab --help\n      this text\n\ndata directory: %s\n",
            paths_datadir());
}

/* ------------------------------------------------------------------ the manual page */

/* text as roff: backslashes and hyphens escaped, a leading dot or quote protected, and every
 * non-ASCII character (UTF-8) as groff's \[uXXXX], so that plain troff reads it too */
static void roff(FILE *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && u[i]; i++) {
        unsigned char c = u[i];
        int bol = i == 0 || u[i - 1] == '\n';
        if (bol && (c == '.' || c == '\''))
            fputs("\\&", f);
        if (c >= 0x80) {
            int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            unsigned cp = c & (0x3f >> (len - 1));
            for (int k = 1; k < len && i + 1 < n && (u[i + 1] & 0xc0) == 0x80; k++)
                cp = cp << 6 | (u[++i] & 0x3f);
            fprintf(f, "\\[u%04X]", cp);
        } else if (c == '\\') {
            fputs("\\e", f);
        } else if (c == '-') {
            fputs("\\-", f);
        } else {
            fputc(c, f);
        }
    }
}

static void roff_str(FILE *f, const char *s)
{
    roff(f, s, strlen(s));
}

/* lines of text kept as they are (options lists, settings tables, keys) */
static void roff_verbatim(FILE *f, const char *s)
{
    fputs(".nf\n", f);
    roff_str(f, s);
    if (*s && s[strlen(s) - 1] != '\n')
        fputc('\n', f);
    fputs(".fi\n", f);
}

void usage_man(FILE *f)
{
    fprintf(f, ".\\\" r1lab(1), written by `r1lab --man` from the program's own tables\n"
               ".TH R1LAB 1 \"\" \"r1lab %s\" \"User Commands\"\n", PACKAGE_VERSION);
    fputs(".SH NAME\nr1lab \\- a terminal workbench for small DeepSeek\\-style reasoning models\n"
          ".SH SYNOPSIS\n.B r1lab\n[\\fB\\-\\-theme\\fR \\fINAME\\fR] [\\fB\\-\\-notebook\\fR "
          "\\fIFILE\\fR] [\\fB\\-\\-demo\\fR [\\fIFILE\\fR]] [\\fB\\-\\-plain\\fR]\n.br\n",
          f);
    for (const usage_cmd *c = cmds; c->name; c++) {
        fputs(".B r1lab\n", f);
        roff_str(f, c->synopsis + strlen("r1lab "));
        fputs("\n.br\n", f);
    }
    fputs(".B r1lab\n\\-\\-version | \\-\\-help | \\-\\-man\n", f);
    fputs(".SH DESCRIPTION\n", f);
    roff_str(f,
             "r1lab holds the DeepSeek-V3 / DeepSeek-R1 recipe in miniature: a mixture-of-experts "
             "model with Multi-head Latent Attention, Multi-Token Prediction and FP8 mixed "
             "precision; pretraining, cold-start SFT, GRPO with rule rewards, rejection "
             "sampling, a second RL stage and distillation. It shows a model thinking (the "
             "reasoning, the answer, the experts each token went to, the GRPO group rewards) in "
             "a terminal workbench driven by Lua 5.4, and runs every stage from the command "
             "line. Models are Hugging Face deepseek_v3 folders (config.json, "
             "model.safetensors, tokenizer.json).\n");
    fputs(".PP\nWithout a command r1lab opens the workbench on the built-in model (the plain "
          "Lua REPL with \\fB\\-\\-plain\\fR or when standard input is not a terminal).\n",
          f);
    fputs(".SH COMMANDS\n", f);
    for (const usage_cmd *c = cmds; c->name; c++) {
        fprintf(f, ".SS %s\n", c->name);
        roff_str(f, c->summary);
        fputs(".\n.PP\n", f);
        roff_verbatim(f, c->options);
    }
    fputs(".SH TRAINING SETTINGS\nEach stage's settings are one table shared by the command "
          "line (\\fB\\-\\-name\\-with\\-dashes\\fR \\fIVALUE\\fR), Lua "
          "(\\fBr1.grpo{name_with_underscores = value}\\fR) and the checkpoints; a misspelt name "
          "is refused with a suggestion.\n",
          f);
    static const char *const stages[] = {"pretrain", "sft", "grpo", "reject", "distill", NULL};
    for (int i = 0; stages[i]; i++) {
        char *buf = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&buf, &n);
        if (!m)
            continue;
        cmd_train_settings_help(m, stages[i]);
        fclose(m);
        fprintf(f, ".SS train \\-\\-stage %s\n", stages[i]);
        roff_verbatim(f, buf ? buf : "");
        free(buf);
    }
    fputs(".SH WORKBENCH\nThe workbench's help screen (F1), as it is:\n", f);
    int nh = ui_help_lines();
    fputs(".nf\n", f);
    for (int i = 0; i < nh; i++) {
        const char *s = ui_help_line(i);
        if (s[0] == '#') {
            fputs(".fi\n.SS ", f);
            roff_str(f, s + 1);
            fputs("\n.nf\n", f);
        } else {
            roff_str(f, s);
            fputc('\n', f);
        }
    }
    fputs(".fi\n", f);
    fputs(".SH ENVIRONMENT\n.TP\n.B R1_ISA\namx, avx512bf16, avx2 or portable: a lower kernel "
          "path than the CPU's best (r1lab \\-\\-version lists them).\n.TP\n"
          ".B OPENBLAS_CORETYPE\nOpenBLAS's kernels (Haswell, SkylakeX, ...); where OpenBLAS "
          "runs fp32 products (the avx2 and portable paths) results depend on them to the last "
          "bits.\n.TP\n.B R1LAB_DATADIR\nwhere the built-in model, scripts "
          "and themes are (default: the installed data directory).\n.TP\n.B R1LAB_THREADS\n"
          "engine threads (default: the cores, shared among the ranks of an MPI job on this "
          "machine).\n.TP\n.B R1LAB_EVENTS\n1: r1lab run writes its training reports on "
          "stdout as marked lines (set by r1.launch and :mpirun for rank 0).\n.TP\n"
          ".B R1LAB_MPIRUN\nthe launcher r1.launch and :mpirun start (default: mpirun).\n"
          ".TP\n.B NO_COLOR\nno "
          "colour on the screen.\n.TP\n.BR XDG_CONFIG_HOME \", \" XDG_STATE_HOME\nthemes are "
          "looked for in $XDG_CONFIG_HOME/r1lab/themes; the input history is kept in "
          "$XDG_STATE_HOME/r1lab/history (default ~/.local/state/r1lab/history).\n",
          f);
    fputs(".SH FILES\n.TP\n.I DIR/config.json, DIR/model.safetensors, DIR/tokenizer.json\na "
          "model folder (also tokenizer_config.json and generation_config.json, as Hugging "
          "Face writes them).\n.TP\n.I OUT/metrics.jsonl, OUT/checkpoint/\na training run: one "
          "JSON object per step, and what \\fB\\-\\-resume\\fR continues from.\n",
          f);
    fputs(".SH EXIT STATUS\n0 on success, 1 on a failure (one line says what), 2 for a usage "
          "error (a misspelt option is named), 130 after Ctrl\\-C stopped a run (its checkpoint "
          "is kept).\n",
          f);
    fputs(".SH EXAMPLES\n.nf\nr1lab\nr1lab generate \\-\\-model DIR \\-\\-prompt \"What is "
          "457+389?\"\nr1lab train \\-\\-stage grpo \\-\\-model sft \\-\\-out rl \\-\\-tasks "
          "add:4 \\-\\-steps 20\nr1lab train \\-\\-out rl \\-\\-resume\nr1lab run "
          "scripts/train_builtin.lua\n.fi\n",
          f);
    fputs(".SH SEE ALSO\nREADME.md and scripts/README.md in the data directory; "
          "\\fBlua\\fR(1), \\fBllama\\-cli\\fR(1).\n",
          f);
}
