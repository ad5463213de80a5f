/* cmd.h — r1lab's subcommands; each takes the arguments after its name and returns the
 * process exit status (0 ok, 1 failure, 2 usage error), printing one line on failure. */
#ifndef R1_APP_CMD_H
#define R1_APP_CMD_H

#include <stdio.h>

int cmd_init(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_export(int argc, char **argv); /* r1lab export --gguf: cmd_export.c */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
/* What `r1lab train --stage STAGE --help` lists after the usage: the stage's settings with
 * their ranges and defaults (the manual page prints it too). */
void cmd_train_settings_help(FILE *f, const char *stage);
/* One line naming what a run's last bits depend on (r1_machine: CPU, kernels, threads), as
 * under every r1lab train header and in r1lab --version; checkpoints record the same. */
void cmd_print_machine(void);

#endif
