#!/bin/sh
# t_unix.sh — r1lab's Unix manners: `r1lab COMMAND --help` for every subcommand, the manual
# page (r1lab --man, installed by `make install` as r1lab(1)) and the bash completion, both
# installed into a scratch DESTDIR and used from there.
r1lab="${top_builddir:-.}/app/r1lab"
src="${top_srcdir:-.}"
build="${top_builddir:-.}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; }

# every subcommand answers --help with its usage, exit 0
for c in run init forward generate train eval report export; do
    out=$("$r1lab" $c --help 2>&1)
    [ $? -eq 0 ] && [ "$(has "$out" "usage: r1lab $c")" = 0 ]
    ok $? "r1lab $c --help: its usage ($(echo "$out" | sed -n 3p))"
done
out=$("$r1lab" train --stage grpo --help 2>&1)
ok $(has "$out" "--rollout-dtype") "train --stage grpo --help lists the stage's settings"
out=$("$r1lab" --help 2>&1)
ok $(has "$out" "(r1lab generate --help)") "r1lab --help points at each command's --help"

# the manual page: valid roff, every command, the settings and the workbench's keys
"$r1lab" --man > "$tmp/r1lab.1"
ok $? "r1lab --man writes the manual page"
warn=$(groff -man -ww -z "$tmp/r1lab.1" 2>&1)
[ -z "$warn" ]
ok $? "groff reads it without a warning${warn:+: $warn}"
page=$(MANWIDTH=100 man -l "$tmp/r1lab.1" 2>/dev/null)
for want in "r1lab - a terminal workbench" "COMMANDS" "   generate" "   export" \
            "train --stage grpo" "--routing-replay" "WORKBENCH" "logit lens at the cursor" \
            "EXIT STATUS" "R1_ISA"; do
    [ "$(has "$page" "$want")" = 0 ] || { echo "# the page lacks: $want"; false; } || break
done
ok $? "man renders it: commands, each stage's settings, the workbench keys, the environment"

# make install puts both where man and bash-completion look
dest="$tmp/dest"
make -s -C "$build" install-man install-dist_bashcompDATA DESTDIR="$dest" prefix=/usr \
    >"$tmp/install.log" 2>&1
ok $? "make install-man install-dist_bashcompDATA (DESTDIR): $(tail -1 "$tmp/install.log")"
[ -f "$dest/usr/share/man/man1/r1lab.1" ] && \
    [ "$(man -M "$dest/usr/share/man" -w r1lab 2>/dev/null)" = "$dest/usr/share/man/man1/r1lab.1" ]
ok $? "man finds r1lab(1) where make install put it"
comp="$dest/usr/share/bash-completion/completions/r1lab"
[ -f "$comp" ]
ok $? "the completion is in bash-completion's folder"

# the completion, as bash runs it
complete_line() { # the words of a command line, the last being completed
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _r1lab
             printf "%s\n" "${COMPREPLY[@]}"' sh "$comp" "$@" | sort | tr '\n' ' '
}
ok $(has "$(complete_line "$r1lab" tr)" "train ") "subcommands: tr -> train"
ok $(has "$(complete_line "$r1lab" train --stage g)" "grpo ") "stages: --stage g -> grpo"
ok $(has "$(complete_line "$r1lab" train --stage grpo --rollout)" "--rollout-dtype ") \
    "a stage's settings, read from the program: --rollout -> --rollout-dtype"
ok $(has "$(complete_line "$r1lab" generate --spec)" "--speculative ") \
    "a command's options: --spec -> --speculative"
mkdir -p "$tmp/models/mine" && touch "$tmp/models/mine/config.json"
got=$(complete_line "$r1lab" train --model "$tmp/models/m")
ok $(has "$got" "$tmp/models/mine ") "model folders: --model .../m -> .../mine"
ok $(has "$(complete_line "$r1lab" train --model t)" "tiny ") "presets for a new model: tiny"
ok $(has "$(complete_line "$r1lab" export --dtype "")" "f16 ") "export's dtypes include f16"

echo "1..$n"
