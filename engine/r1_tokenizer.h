/* r1_tokenizer.h — the built-in character-level tokenizer and the chat format.
 *
 * r1lab's models read characters: every printable ASCII character (32..126) and the newline is
 * one token, and so is each special token below.  The vocabulary has 128 ids:
 *
 *   id        token            id        token
 *   0         <|pad|>          5         <think>
 *   1         <|bos|>          6         </think>
 *   2         <|eos|>          7         <answer>
 *   3         <|user|>         8         </answer>
 *   4         <|assistant|>    9         "\n"
 *   10..104   ' ' (32) .. '~' (126): id = character - 22
 *   105..127  <|reserved_0|> .. <|reserved_22|>  (special, never produced by encode of text
 *                                                 that does not spell them)
 *
 * The chat format (DESIGN.md):
 *   <|bos|><|user|>PROMPT<|assistant|><think>REASONING</think><answer>ANSWER</answer><|eos|>
 * A generation prompt stops after <think>; the model writes the rest.
 *
 * On disk the tokenizer is a Hugging Face tokenizer.json: a WordLevel model whose vocab maps each
 * character and special token to its id, the special tokens also listed in "added_tokens" with
 * "special": true, no normalizer, a Split pre-tokenizer that isolates every character and a Fuse
 * decoder, so that the HF `tokenizers` library reads the same ids (checked by hand with
 * tokenizers 0.23.2 on 460 task texts: same ids, same decoded text, and the same refusal of a
 * tab: HF's WordLevel needs an unknown token, and the file names "<|unk|>", which is absent
 * from the vocabulary on purpose).  The loader accepts the files r1_tokenizer_save writes and
 * character-level WordLevel files like them; it is not a general HF tokenizer loader (BPE
 * merges, normalizers and multi-character words are refused).
 *
 * Ownership: r1_tokenizer_new_builtin / r1_tokenizer_load return a handle the caller frees with
 * r1_tokenizer_free (NULL is a no-op).  A tokenizer is immutable after creation, so one handle
 * may be shared by threads.  Strings it returns are borrowed until r1_tokenizer_free.
 *
 * Errors: R1_EINVAL for text with no token (the message names the byte position and the
 * character) and for ids outside the vocabulary; R1_ENOTFOUND / R1_EIO for files that cannot be
 * opened; R1_EFORMAT / R1_EUNSUPPORTED for bad tokenizer.json files (the message names the file
 * and the field); R1_ENOMEM. */
#ifndef R1_TOKENIZER_H
#define R1_TOKENIZER_H

#include "r1.h"

/* The ids of the built-in vocabulary.  R1_TOK_PAD .. R1_TOK_ANSWER_END double as the names of
 * the special tokens in r1_tokenizer_special_id, whatever ids a loaded file gives them. */
enum {
    R1_TOK_PAD = 0,
    R1_TOK_BOS = 1,
    R1_TOK_EOS = 2,
    R1_TOK_USER = 3,
    R1_TOK_ASSISTANT = 4,
    R1_TOK_THINK = 5,
    R1_TOK_THINK_END = 6,
    R1_TOK_ANSWER = 7,
    R1_TOK_ANSWER_END = 8,
    R1_TOK_NSPECIAL = 9, /* the number of named special tokens */
    R1_TOK_NEWLINE = 9,
    R1_TOK_ASCII_FIRST = 10, /* ' ' (32); character c has id c - 22 */
    R1_TOK_RESERVED_FIRST = 105,
    R1_TOK_VOCAB = 128 /* the built-in vocabulary size (the tiny preset's vocab_size) */
};

/* The texts of the special tokens, as they appear in prompts and completions. */
#define R1_TEXT_PAD "<|pad|>"
#define R1_TEXT_BOS "<|bos|>"
#define R1_TEXT_EOS "<|eos|>"
#define R1_TEXT_USER "<|user|>"
#define R1_TEXT_ASSISTANT "<|assistant|>"
#define R1_TEXT_THINK "<think>"
#define R1_TEXT_THINK_END "</think>"
#define R1_TEXT_ANSWER "<answer>"
#define R1_TEXT_ANSWER_END "</answer>"

typedef struct r1_tokenizer r1_tokenizer;

/* The built-in tokenizer described above.  NULL only when out of memory. */
r1_tokenizer *r1_tokenizer_new_builtin(void);

void r1_tokenizer_free(r1_tokenizer *t);

/* Loads a tokenizer.json.  path is the file, or a folder holding "tokenizer.json".  The file
 * must be a WordLevel model whose ids are exactly 0 .. N-1 (no duplicates, none out of range),
 * every token either one printable ASCII character or newline, or a special token listed in
 * "added_tokens"; the nine named special tokens must all be present; "normalizer" must be null.
 * Errors name the file and the field: R1_ENOTFOUND / R1_EIO (cannot open), R1_EFORMAT (bad JSON,
 * a wrong type, a missing or duplicate token, an id out of range), R1_EUNSUPPORTED (another
 * model type, a normalizer, a multi-character non-special token).  *out is the caller's. */
r1_status r1_tokenizer_load(r1_tokenizer **out, const char *path, r1_error *err);

/* Writes t as a HF tokenizer.json.  path is a file name ending in ".json", or a folder (created
 * if missing, one level) that receives "tokenizer.json".  Written to a temporary name, flushed
 * and renamed.  R1_EIO naming the path when it cannot be written. */
r1_status r1_tokenizer_save(const r1_tokenizer *t, const char *path, r1_error *err);

int r1_tokenizer_vocab_size(const r1_tokenizer *t);

/* R1_EFORMAT, naming path, when t has more tokens than a model of vocab_size ids can emit or
 * read: not that model's tokenizer.  (Fewer is fine: Hugging Face models pad their vocabulary
 * beyond the tokenizer's.) */
r1_status r1_tokenizer_check_vocab(const r1_tokenizer *t, int vocab_size, const char *path,
                                   r1_error *err);

/* The id of a named special token (which: R1_TOK_PAD .. R1_TOK_ANSWER_END), or -1 for another
 * value of which. */
int r1_tokenizer_special_id(const r1_tokenizer *t, int which);

/* The text of token id (borrowed until r1_tokenizer_free), or NULL when id is out of range. */
const char *r1_tokenizer_token(const r1_tokenizer *t, int id);

/* 1 when id is a special token (the named ones and the reserved ones), else 0. */
int r1_tokenizer_is_special(const r1_tokenizer *t, int id);

/* Encodes the NUL-terminated text.  Special-token texts ("<think>", "<|eos|>", ...) become their
 * single tokens wherever they occur; every other byte must be a character of the vocabulary.
 * Never more ids than bytes.  Writes at most cap ids to ids (ids may be NULL with cap 0 to count)
 * and the number of tokens to *n.  R1_EINVAL when a byte has no token (the message gives its
 * position and the character, e.g. "byte 12: '\t' (0x09) has no token"), or when cap is too
 * small (*n then holds the number needed). */
r1_status r1_tokenizer_encode(const r1_tokenizer *t, const char *text, int32_t *ids, int cap,
                              int *n, r1_error *err);

/* Decodes n ids into a NUL-terminated string in *out, which the caller frees with free().
 * Special tokens are written as their texts.  R1_EINVAL naming the position of an id outside
 * [0, vocab size); R1_ENOMEM.  *out is NULL on failure. */
r1_status r1_tokenizer_decode(const r1_tokenizer *t, const int32_t *ids, int n, char **out,
                              r1_error *err);

/* ------------------------------------------------------------------ the chat format */

/* The chat format as a Jinja template (Hugging Face's apply_chat_template, llama.cpp and
 * Ollama's importer read it): what tokenizer_config.json's "chat_template" and a GGUF's
 * tokenizer.chat_template hold.  A static string. */
const char *r1_tokenizer_chat_template(void);

/* Encodes the generation prompt "<|bos|><|user|>PROMPT<|assistant|><think>".  Same buffer rules
 * as r1_tokenizer_encode (at most strlen(prompt) + 5 ids). */
r1_status r1_tokenizer_encode_prompt(const r1_tokenizer *t, const char *prompt, int32_t *ids,
                                     int cap, int *n, r1_error *err);

/* Encodes the full training sequence
 *   <|bos|><|user|>PROMPT<|assistant|><think>REASONING</think><answer>ANSWER</answer><|eos|>
 * (at most strlen of the three texts + 9 ids).  *assistant_start receives the number of prompt
 * tokens: ids[0 .. assistant_start) are exactly what r1_tokenizer_encode_prompt gives, ending
 * with <|assistant|><think>, and ids[assistant_start .. n) are what the model must generate
 * (the reasoning through <|eos|>), the tokens SFT trains on. */
r1_status r1_tokenizer_encode_chat(const r1_tokenizer *t, const char *prompt, const char *reasoning,
                                   const char *answer, int32_t *ids, int cap, int *n,
                                   int *assistant_start, r1_error *err);

#endif
