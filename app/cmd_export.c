/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cmd_export.c — `r1lab export`: a model folder as a file other programs run.
 *
 *   r1lab export --gguf OUT.gguf --model DIR [--dtype f32|bf16|f16] [--mtp yes|no]
 *
 * writes the model and its tokenizer as a llama.cpp `deepseek2` GGUF (r1_gguf.h), which
 * llama.cpp's tools and Ollama load.  `r1lab export --help` comes from usage.c's table.  A
 * misspelt option is named with the option it resembles; failures print one line and return 1
 * (2 for usage errors). */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "r1_gguf.h"
#include "r1_settings.h"

static const char *const known[] = {"--gguf", "--model", "--dtype", "--mtp", NULL};

static void unknown_option(const char *a)
{
    const char *best = NULL;
    int bd = 3;
    for (const char *const *k = known; *k; k++) {
        int d = r1_settings_distance(a, *k);
        if (d < bd)
            bd = d, best = *k;
    }
    if (best)
        fprintf(stderr, "r1lab export: unknown option '%s' (did you mean %s?)\n", a, best);
    else
        fprintf(stderr, "r1lab export: unknown option '%s' (r1lab export --help lists them)\n",
                a);
}

/* general.name: the model folder's last component ("models/builtin/" -> "builtin"). */
static void folder_name(const char *dir, char *out, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(out, cap, "%.*s", (int)(n - start), dir + start);
}

int cmd_export(int argc, char **argv)
{
    const char *gguf = NULL, *model = NULL, *dt = "f32", *mtp = "yes";
    for (int i = 0; i < argc; i += 2) {
        int k = 0;
        while (known[k] && strcmp(argv[i], known[k]))
            k++;
        if (!known[k]) {
            unknown_option(argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "r1lab export: option %s needs a value\n", argv[i]);
            return 2;
        }
        *(k == 0 ? &gguf : k == 1 ? &model : k == 2 ? &dt : &mtp) = argv[i + 1];
    }
    if (!gguf || !model) {
        fprintf(stderr, "usage: r1lab export --gguf OUT.gguf --model DIR [--dtype f32|bf16|f16]"
                        " [--mtp yes|no]\n");
        return 2;
    }
    r1_gguf_opts o = r1_gguf_defaults();
    if (!strcmp(dt, "bf16"))
        o.dtype = R1_DT_BF16;
    else if (!strcmp(dt, "f16"))
        o.dtype = R1_DT_F16;
    else if (strcmp(dt, "f32") != 0) {
        fprintf(stderr, "r1lab export: --dtype expects f32, bf16 or f16, got '%s'\n", dt);
        return 2;
    }
    if (strcmp(mtp, "yes") && strcmp(mtp, "no")) {
        fprintf(stderr, "r1lab export: --mtp expects yes or no, got '%s'\n", mtp);
        return 2;
    }
    o.mtp = !strcmp(mtp, "yes");
    char name[256], path[4200];
    folder_name(model, name, sizeof name);
    o.name = name;
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_status s = r1_model_load(&m, model, &err);
    if (s == R1_OK && *r1_model_notice(m))
        fprintf(stderr, "r1lab: notice: %s\n", r1_model_notice(m));
    snprintf(path, sizeof path, "%s/tokenizer.json", model);
    if (s == R1_OK && access(path, F_OK) != 0)
        s = r1_error_set(&err, R1_ENOTFOUND,
                         "%s: not found: a GGUF carries the model's vocabulary, so the folder "
                         "needs its tokenizer",
                         path);
    if (s == R1_OK && (s = r1_tokenizer_load(&tok, path, &err)) == R1_OK)
        s = r1_tokenizer_check_vocab(tok, r1_model_config(m)->vocab_size, path, &err);
    if (s == R1_OK)
        s = r1_gguf_save(m, tok, gguf, &o, &err);
    struct stat sb;
    if (s == R1_OK)
        printf("wrote %s: deepseek2, %zu parameters, %s, %.2f MiB\n", gguf, r1_model_numel(m),
               dt, stat(gguf, &sb) == 0 ? sb.st_size / 1048576.0 : 0.0);
    else
        fprintf(stderr, "r1lab export: %s\n", err.msg);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return s == R1_OK ? 0 : 1;
}
